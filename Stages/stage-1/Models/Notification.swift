import Common
import Foundation
import Storage

struct NotificationRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "notifications"
    var id: String
    var userId: String
    var kind: API.NotificationKind
    var orderId: String?
    var channel: String
    var recipient: String
    var subject: String
    var createdAt: Date

    var api: API.Notification {
        API.Notification(id: id, kind: kind, orderId: orderId, to: recipient, subject: subject, createdAt: createdAt)
    }
}
