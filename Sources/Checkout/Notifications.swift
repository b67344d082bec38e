import Common
import Foundation
import GRDB
import Storage

/// Whom a notification goes to.
public struct Recipient: Sendable, Hashable {
    public let userId: String
    public let email: String
    public let name: String
    public init(userId: String, email: String, name: String) { self.userId = userId; self.email = email; self.name = name }
}

/// Records the emails the shop would send. It runs inside the caller's
/// transaction: the notification exists if and only if the change it
/// announces was committed.
public struct Notifications: Sendable {
    let db: any DatabaseWriter

    public init(db: any DatabaseWriter) { self.db = db }

    /// Idempotent: the unique index (user, kind, order) makes a second
    /// record of the same notification a no-op.
    public func record(_ kind: API.NotificationKind, to recipient: Recipient, orderId: String?, in db: Database) throws {
        let record = NotificationRecord(
            id: ID.make(ID.notification), userId: recipient.userId, kind: kind, orderId: orderId, channel: "email",
            recipient: recipient.email,
            subject: NotificationText.subject(kind, orderId: orderId, userName: recipient.name),
            createdAt: Timestamp.now())
        try record.insertOnce(db)
    }

    /// The welcome email, in its own transaction (stage 2 on: the account
    /// was created by another service).
    public func recordWelcome(_ user: API.User) async throws {
        try await db.write { db in
            try record(.welcome, to: Recipient(userId: user.id, email: user.email, name: user.name), orderId: nil, in: db)
        }
    }

    public func list(userId: String) async throws -> [API.Notification] {
        try await db.read { db in
            try NotificationRecord
                .filter(Column("userId") == userId)
                .order(Column("createdAt").desc, Column("rowid").desc)
                .fetchAll(db).map(\.api)
        }
    }

    public func count(userId: String) async throws -> Int {
        try await db.read { db in try NotificationRecord.filter(Column("userId") == userId).fetchCount(db) }
    }
}
