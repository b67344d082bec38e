import Common
import Foundation
import GRDB
import Storage

struct NotificationRecord: FetchableRecord, TableRecord {
    static let databaseTableName = "notifications"
    var id: String
    var userId: String
    var kind: API.NotificationKind
    var orderId: String?
    var channel: String
    var recipient: String
    var subject: String
    var createdAt: Date

    init(id: String, userId: String, kind: API.NotificationKind, orderId: String?, channel: String, recipient: String, subject: String, createdAt: Date) {
        self.id = id; self.userId = userId; self.kind = kind; self.orderId = orderId; self.channel = channel
        self.recipient = recipient; self.subject = subject; self.createdAt = createdAt
    }

    init(row: Row) throws {
        id = row["id"]; userId = row["userId"]; kind = row["kind"]; orderId = row["orderId"]; channel = row["channel"]
        recipient = row["recipient"]; subject = row["subject"]; createdAt = Date(databaseMilliseconds: row["createdAt"])
    }

    /// `OR IGNORE` with the unique index (user, kind, order): exactly one
    /// notification of a kind per order, however often it is recorded.
    func insertOnce(_ db: Database) throws {
        try db.run(cached: """
            INSERT OR IGNORE INTO notifications (id, userId, kind, orderId, channel, recipient, subject, createdAt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [id, userId, kind, orderId, channel, recipient, subject, createdAt.databaseMilliseconds])
    }

    var api: API.Notification {
        API.Notification(id: id, kind: kind, orderId: orderId, to: recipient, subject: subject, createdAt: createdAt)
    }
}
