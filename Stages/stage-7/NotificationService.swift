import Auth
import Checkout
import Common
import Events
import Foundation
import GRDB
import Hummingbird
import Jobs
import Logging
import Mail
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// The emails, as a service of its own. An event that announces something
/// to a customer (`UserRegistered`, `OrderConfirmed`, `OrderCancelled`,
/// `OrderShipped`) does not make the notification record at once: it adds
/// an `emails` job (through the outbox, in the message's transaction). The
/// job's worker renders the email, delivers it into the Maildir under the
/// service's data folder (`mail/`, which any mail reader opens), and only
/// then records the notification that `GET /notifications` shows: a
/// notification listed is an email sent.
///
/// Exactly one email of a kind per order: the job's id is the business key
/// (`email:order_confirmed:<orderId>`), so an event redelivered adds no
/// second job; the Maildir file is named after the same key, so a job that
/// runs twice (its worker died after delivering) finds the email there; and
/// the unique index on notifications makes the record once.
///
/// It keeps who placed each order from `OrderCreated` (its own copy: the
/// order service is never asked). An outcome that arrives before it (only
/// possible when `OrderCreated` was sent down the retry ladder here) fails
/// as transient and is tried again after it.
enum NotificationService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        let db = try openServiceDatabase(dataDir.appendingPathComponent("notifications.sqlite"), migrations: migrations)
        let notifications = Notifications(db: db)
        let relay = messaging.relay(for: db)
        let maildir = Maildir(root: dataDir.appendingPathComponent("mail"))
        try maildir.prepare()

        /// Every order event has the order's id; the recipient is our own copy.
        struct AboutAnOrder: Decodable { var orderId: String }
        func about(_ kind: API.NotificationKind) -> ServiceMessaging.EventHandler {
            { event, message in
                let order = try event.decode(AboutAnOrder.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT userId, email, name FROM recipients WHERE orderId = ?"), arguments: [order.orderId]) else {
                        throw MessageFailure.transient("OrderCreated for \(order.orderId) has not been seen here yet")
                    }
                    return [try .email(EmailJob(kind: kind, orderId: order.orderId, userId: row["userId"], to: row["email"], name: row["name"]))]
                }
            }
        }
        let consumer = messaging.consumer("notification", events: [
            .on(UserRegistered.self) { event, message in
                let user = try event.decode(UserRegistered.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    [try .email(EmailJob(kind: .welcome, orderId: nil, userId: user.userId, to: user.email, name: user.name))]
                }
            },
            .on(OrderCreated.self) { event, message in
                let order = try event.decode(OrderCreated.self)
                try await Inbox.once(message, db: db, relay: nil) { db in
                    try db.run(cached: "INSERT OR IGNORE INTO recipients (orderId, userId, email, name) VALUES (?, ?, ?, ?)",
                               [order.orderId, order.customer.userId, order.customer.email, order.customer.name])
                    return []
                }
            },
            .on(OrderConfirmed.self, about(.orderConfirmed)),
            .on(OrderCancelled.self, about(.orderCancelled)),
            .on(OrderShipped.self, about(.orderShipped)),
        ])

        // Sending: deliver, then record. A crash between the two leaves the
        // email delivered and the job active; the job runs again (its lock
        // expires), finds the email in the Maildir, and records it.
        let sender = messaging.jobs.worker(WorkQueue.emails, concurrency: 4, payload: EmailJob.self) { email, job in
            let delivery = try maildir.deliver(EmailText.render(email, at: Date()).rendered(), key: email.key)
            try await db.write { db in
                try notifications.record(email.kind, to: Recipient(userId: email.userId, email: email.to, name: email.name), orderId: email.orderId, in: db)
            }
            return JobOutcome(outcome: delivery.isNew ? "delivered" : "delivered before; recorded")
        }

        let router = ShopServerRunner.makeRouter()
        router.addNotificationRoutes(notifications, auth: auth)
        router.addServiceHealth(stage: ThisStage.number, name: "notification", db: db, messaging: messaging)
        return (router, [messaging.client, relay, consumer, sender, messaging.emailRateLimit()] + messaging.housekeeping(for: db))
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
