import Common
import Foundation
import Storage

struct NotificationRecord: FetchableRecord, PersistableRecord {
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

    func encode(to container: inout PersistenceContainer) throws {
        container["id"] = id; container["userId"] = userId; container["kind"] = kind; container["orderId"] = orderId
        container["channel"] = channel; container["recipient"] = recipient; container["subject"] = subject
        container["createdAt"] = createdAt.databaseMilliseconds
    }

    var api: API.Notification {
        API.Notification(id: id, kind: kind, orderId: orderId, to: recipient, subject: subject, createdAt: createdAt)
    }
}
