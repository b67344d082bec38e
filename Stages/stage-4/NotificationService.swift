import Auth
import Checkout
import Common
import Foundation
import GRDB
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
enum NotificationService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        let db = try openServiceDatabase(dataDir.appendingPathComponent("notifications.sqlite"), migrations: migrations)
        let notifications = Notifications(db: db)

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
        router.addServiceHealth(stage: ThisStage.number, name: "notification", db: db, messaging: messaging)
        return (router, [messaging.client, consumer, messaging.pruner(for: db)])
    }

    /// The monolith's notifications table, and who placed each order (from
    /// `order.created`), so that later messages need carry only the order id.
    static let migrations = [
        Migration("notifications v1", sql: """
            CREATE TABLE notifications (
                id TEXT PRIMARY KEY,
                userId TEXT NOT NULL,
                kind TEXT NOT NULL,
                orderId TEXT,
                channel TEXT NOT NULL,
                recipient TEXT NOT NULL,
                subject TEXT NOT NULL,
                createdAt INTEGER NOT NULL
            );
            -- Exactly one notification of a kind per order (per user for welcome).
            CREATE UNIQUE INDEX one_notification_per_kind ON notifications(userId, kind, ifnull(orderId, ''));
            CREATE TABLE recipients (
                orderId TEXT PRIMARY KEY,
                userId TEXT NOT NULL,
                email TEXT NOT NULL,
                name TEXT NOT NULL
            ) WITHOUT ROWID;
            """),
    ]
}
