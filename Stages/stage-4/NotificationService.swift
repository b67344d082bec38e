import Auth
import Checkout
import Common
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// The emails, as a service of its own: it records one for each message
/// that announces something to a customer. The unique index (user, kind,
/// order) and the inbox both make a redelivered message harmless; the
/// contract's "exactly one notification of a kind per order" rests on them.
///
/// It keeps who placed each order from `order.created` (its own copy: the
/// order service is never asked). An outcome that arrives before it (only
/// possible when `order.created` was sent down the retry ladder here) fails
/// as transient and is tried again after it.
enum NotificationApp {
    static func build(stage: Int, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let settings = try ShopSettings.load(dataDir: dataDir, logger: logger)
        let auth = Authenticator(signer: settings.signer)
        let db = try openServiceDatabase(dataDir.appendingPathComponent("notifications.sqlite"), tables: CheckoutSchema.notifications + """
            CREATE TABLE recipients (
                orderId TEXT PRIMARY KEY,
                userId TEXT NOT NULL,
                email TEXT NOT NULL,
                name TEXT NOT NULL
            ) WITHOUT ROWID;
            """, name: "notifications v1")
        let notifications = NotificationService(db: db)

        func about(_ kind: API.NotificationKind) -> MessageConsumer.Handler {
            { message in
                let order = try message.decodeChecked(OrderOutcome.self)
                try await Inbox.once(message, db: db, relay: nil) { db in
                    guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT userId, email, name FROM recipients WHERE orderId = ?"), arguments: [order.orderId]) else {
                        throw MessageFailure.transient("order.created for \(order.orderId) has not been seen here yet")
                    }
                    try notifications.record(kind, to: Recipient(userId: row["userId"], email: row["email"], name: row["name"]), orderId: order.orderId, in: db)
                    return []
                }
            }
        }
        let consumer = messaging.consumer("notification", handlers: [
            Topic.userRegistered: { message in
                let user = try message.decodeChecked(UserRegistered.self).user
                try await Inbox.once(message, db: db, relay: nil) { db in
                    try notifications.record(.welcome, to: Recipient(userId: user.id, email: user.email, name: user.name), orderId: nil, in: db)
                    return []
                }
            },
            Topic.orderCreated: { message in
                let order = try message.decodeChecked(OrderCreated.self)
                try await Inbox.once(message, db: db, relay: nil) { db in
                    try db.run(cached: "INSERT OR IGNORE INTO recipients (orderId, userId, email, name) VALUES (?, ?, ?, ?)",
                               [order.orderId, order.customer.userId, order.customer.email, order.customer.name])
                    return []
                }
            },
            Topic.orderConfirmed: about(.orderConfirmed),
            Topic.orderCancelled: about(.orderCancelled),
            Topic.orderShipped: about(.orderShipped),
        ])

        let router = ShopServerRunner.makeRouter()
        router.addNotificationRoutes(notifications, auth: auth)
        router.addServiceHealth(stage: stage, name: "notification", db: db, messaging: messaging)
        return (router, [messaging.client, consumer, messaging.pruner(for: db)])
    }
}
