import Common
import Foundation
import Storage

/// Records the emails the shop would send. In the monolith it runs inside
/// the caller's transaction: the notification exists if and only if the
/// change it announces was committed.
struct NotificationService: Sendable {
    let db: DatabasePool

    /// Idempotent: the unique index (user, kind, order) makes a second
    /// record of the same notification a no-op.
    func record(_ kind: API.NotificationKind, to user: UserRecord, orderId: String?, in db: Database) throws {
        let record = NotificationRecord(
            id: ID.make(ID.notification), userId: user.id, kind: kind, orderId: orderId, channel: "email",
            recipient: user.email,
            subject: NotificationText.subject(kind, orderId: orderId, userName: user.name),
            createdAt: Timestamp.now())
        try record.insert(db, onConflict: .ignore)
    }

    func list(userId: String) async throws -> [API.Notification] {
        try await db.read { db in
            try NotificationRecord
                .filter(Column("userId") == userId)
                .order(Column("createdAt").desc, Column("rowid").desc)
                .fetchAll(db).map(\.api)
        }
    }

    func count(userId: String) async throws -> Int {
        try await db.read { db in try NotificationRecord.filter(Column("userId") == userId).fetchCount(db) }
    }
}
