import Checkout
import Common
import Foundation
import GRDB
import Hummingbird
import Jobs
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// Charges and refunds, as a service of its own. It has no public API: it
/// hears of an order through `order.created`, and answers through
/// `payment.completed` or `payment.failed`.
///
/// A transient error from the card processor is no longer sent down the
/// message's retry ladder: it becomes a job in the `payments` queue, with
/// attempts and exponential backoff (200 ms, 400 ms, 800 ms, 1.6 s). The
/// job carries the attempt count, which is what the simulated processor
/// keys on. When its attempts run out, the job is failed where an
/// administrator sees it (`/admin/jobs/payments?state=failed`) and can retry
/// it; meanwhile the order's deadline (a job of the order service) cancels
/// the order, so no order stays pending for ever.
enum PaymentService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let db = try openServiceDatabase(dataDir.appendingPathComponent("payments.sqlite"), migrations: migrations)
        let payments = Payments(retry: .inline)
        let relay = messaging.relay(for: db)
        let policy = messaging.policy

        /// The answer to the order service, with the payment row, in the
        /// caller's transaction.
        @Sendable func settle(_ attempt: ChargeAttempt, orderId: String, amountCents: Int, attempts: Int, in db: Database) throws -> OutgoingMessage {
            var result = PaymentMessage(orderId: orderId, amountCents: amountCents, attempts: attempts)
            switch attempt {
            case .approved:
                try payments.record(.charge, outcome: .captured, amount: amountCents, attempts: attempts, orderId: orderId, in: db)
                return try OutgoingMessage(Topic.paymentCompleted, result, order: orderId)
            case .declined(let reason):
                try payments.record(.charge, outcome: .declined, amount: 0, attempts: attempts, orderId: orderId, in: db)
                result.amountCents = 0
                result.declineReason = reason.rawValue
                return try OutgoingMessage(Topic.paymentFailed, result, order: orderId)
            case .transientFailure:
                preconditionFailure("a transient failure is not an outcome")
            }
        }

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
                let card = try CardNumber(order.card)
                let attempt = SimulatedCardProcessor.charge(card, attempt: 1)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    guard case .transientFailure = attempt else {
                        return [try settle(attempt, orderId: order.orderId, amountCents: order.totalCents, attempts: 1, in: db)]
                    }
                    // Try again later, as a job. The card stays here, in the
                    // payment service's own database: the job's data is
                    // readable by anyone who can read Redis.
                    try db.run(cached: "INSERT OR IGNORE INTO pending_charges (orderId, card, amountCents, createdAt) VALUES (?, ?, ?, ?)",
                               [order.orderId, card.digits, order.totalCents, Date().databaseMilliseconds])
                    return [try .charge(ChargeJob(orderId: order.orderId, amountCents: order.totalCents, cardLast4: card.last4), policy: policy)]
                }
            },
            // The order was cancelled (its deadline passed, or the customer
            // cancelled): a charge still being retried is given up. Should
            // the job be charging at this very moment, the order service
            // refunds the late capture.
            Topic.orderCancelled: { message in
                let outcome = try message.decodeChecked(OrderOutcome.self)
                try await Inbox.once(message, db: db, relay: nil) { db in
                    try db.run(cached: "DELETE FROM pending_charges WHERE orderId = ?", [outcome.orderId])
                    return []
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

        // The charge's later attempts. The consumer made attempt 1; this
        // job's first run is attempt 2. A run that ends in a transient error
        // throws, and the queue schedules the next one after the backoff.
        let charges = messaging.jobs.worker(WorkQueue.payments, concurrency: 4, payload: ChargeJob.self) { charge, job in
            let attempt = job.attemptsMade + 2
            guard let card = try await db.read({ db in
                try String.fetchOne(db, cached: "SELECT card FROM pending_charges WHERE orderId = ?", [charge.orderId])
            }) else {
                return JobOutcome(outcome: "nothing to charge: settled or cancelled before this attempt")
            }
            let result = SimulatedCardProcessor.charge(try CardNumber(card), attempt: attempt)
            if case .transientFailure = result {
                throw ChargeRetry(attempt: attempt)
            }
            // The pending charge is taken in the same transaction as the
            // payment row and the answer: a job that runs twice (its worker
            // died after the commit) finds nothing to charge the second time.
            let settled: Bool = try await db.write { db in
                guard try db.run(cached: "DELETE FROM pending_charges WHERE orderId = ?", [charge.orderId]) == 1 else { return false }
                try Outbox.add(try settle(result, orderId: charge.orderId, amountCents: charge.amountCents, attempts: attempt, in: db), in: db)
                return true
            }
            if settled { relay.wake() }
            return JobOutcome(outcome: settled ? (result == .approved ? "approved" : "declined") + " on attempt \(attempt)" : "settled by another run")
        }

        let router = ShopServerRunner.makeRouter()
        router.addServiceHealth(stage: ThisStage.number, name: "payment", db: db, messaging: messaging)
        return (router, [messaging.client, relay, consumer, charges] + messaging.housekeeping(for: db))
    }

    /// What a charge job throws on a transient error: its message is the
    /// job's `failedReason`.
    struct ChargeRetry: Error, CustomStringConvertible {
        var attempt: Int
        var description: String { "the card processor had a transient error (attempt \(attempt))" }
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
        // Stage 5: a charge waiting for its next attempt keeps its card here,
        // not in the job (see above). The row goes when the charge is settled
        // or the order cancelled.
        Migration("payments v2: charges to retry", sql: """
            CREATE TABLE pending_charges (
                orderId TEXT PRIMARY KEY,
                card TEXT NOT NULL,
                amountCents INTEGER NOT NULL,
                createdAt INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
    ]
}
