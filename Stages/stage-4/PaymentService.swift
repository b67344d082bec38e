import Checkout
import Common
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// Charges and refunds, as a service of its own. It has no public API: it
/// hears of an order through `order.created`, and answers through
/// `payment.completed` or `payment.failed`.
///
/// A transient error from the card processor is no longer retried in the
/// request: the handler throws, and the message goes down the retry ladder
/// (`payment.retry.1`, 2, 3: 200 ms, 1 s, 5 s), then comes back with its
/// attempt number, which is what the simulated processor keys on.
enum PaymentService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let db = try openServiceDatabase(dataDir.appendingPathComponent("payments.sqlite"), migrations: migrations)
        let payments = Payments(retry: .inline)
        let relay = messaging.relay(for: db)

        let consumer = messaging.consumer("payment", handlers: [
            Topic.orderCreated: { message in
                let order = try message.decodeChecked(OrderCreated.self)
                // Charged already (a duplicate, or a redelivery after a crash
                // between the charge and the ack): the provider is not asked
                // again. A real provider is also given the order id as its
                // idempotency key, for a crash between its answer and our commit.
                let charged = try await db.read { db in
                    try Inbox.seen(message, in: db)
                        || Int.fetchOne(db, cached: "SELECT 1 FROM payments WHERE orderId = ? AND kind = 'charge'", [order.orderId]) != nil
                }
                if charged { return }
                let attempt = SimulatedCardProcessor.charge(try CardNumber(order.card), attempt: message.attempt)
                if case .transientFailure = attempt {
                    throw MessageFailure.transient("the card processor had a transient error (attempt \(message.attempt))")
                }
                try await Inbox.once(message, db: db, relay: relay) { db in
                    var result = PaymentMessage(orderId: order.orderId, amountCents: order.totalCents, attempts: message.attempt)
                    let type: String
                    switch attempt {
                    case .approved:
                        try payments.record(.charge, outcome: .captured, amount: order.totalCents, attempts: message.attempt, orderId: order.orderId, in: db)
                        type = Topic.paymentCompleted
                    case .declined(let reason):
                        try payments.record(.charge, outcome: .declined, amount: 0, attempts: message.attempt, orderId: order.orderId, in: db)
                        result.amountCents = 0
                        result.declineReason = reason.rawValue
                        type = Topic.paymentFailed
                    case .transientFailure:
                        fatalError("handled above")
                    }
                    return [try OutgoingMessage(type, result, order: order.orderId)]
                }
            },
            // The order service's compensation: give the money back.
            Topic.paymentRefund: { message in
                let request = try message.decodeChecked(PaymentMessage.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    try payments.record(.refund, outcome: .refunded, amount: request.amountCents, attempts: 1, orderId: request.orderId, in: db)
                    return [try OutgoingMessage(Topic.paymentRefunded, request, order: request.orderId)]
                }
            },
        ])

        let router = ShopServerRunner.makeRouter()
        router.addServiceHealth(stage: ThisStage.number, name: "payment", db: db, messaging: messaging)
        return (router, [messaging.client, relay, consumer, messaging.pruner(for: db)])
    }

    /// The monolith's payments table, without its foreign key: the orders
    /// are in another service's database now.
    static let migrations = [
        Migration("payments v1", sql: """
            -- One row per money movement. UNIQUE(orderId, kind): an order is
            -- charged at most once and refunded at most once, whatever retries
            -- or redelivers it.
            CREATE TABLE payments (
                id TEXT PRIMARY KEY,
                orderId TEXT NOT NULL,
                kind TEXT NOT NULL,                     -- charge | refund
                outcome TEXT NOT NULL,                  -- captured | declined | refunded
                amountCents INTEGER NOT NULL,
                attempts INTEGER NOT NULL,
                createdAt INTEGER NOT NULL,
                UNIQUE (orderId, kind)
            ) WITHOUT ROWID;
            """),
    ]
}
