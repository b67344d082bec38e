import Checkout
import Common
import Events
import Foundation
import GRDB
import Hummingbird
import Jobs
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// Charges and refunds, as a participant in the choreography. Nobody tells
/// it what to do; it reacts to three facts:
///
/// - `OrderCreated`: an order exists; keep its card and amount, charge nothing yet.
/// - `InventoryReserved`: the units are held; charge now (or, read before
///   its `OrderCreated`, as soon as that is read). Approved →
///   `PaymentCompleted`; declined → `PaymentFailed`; a transient error → a
///   `payments` job with attempts and backoff, as in stage 5.
/// - `OrderCancelled`: forget a charge not made yet; refund one that was
///   (`PaymentRefunded`). Stage 5 waited for the order service's
///   `payment.refund`; here payment undoes its own step.
///
/// Charging only once inventory has reserved is what keeps "out of stock
/// charges nothing" true without anyone coordinating.
enum PaymentService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let db = try openServiceDatabase(dataDir.appendingPathComponent("payments.sqlite"), migrations: migrations)
        let payments = Payments(retry: .inline)
        let relay = messaging.relay(for: db)
        let policy = messaging.policy

        /// Settles a charge that is still pending: the payment row, the card
        /// forgotten, and the event, in one transaction. False (and nothing
        /// written) when it is not pending any more: settled by another run,
        /// or the order was cancelled meanwhile.
        @Sendable func settle(_ attempt: ChargeAttempt, orderId: String, amountCents: Int, attempts: Int, causedBy: String?) async throws -> Bool {
            let settled: Bool = try await db.write { db in
                guard try db.run(cached: "DELETE FROM pending_charges WHERE orderId = ?", [orderId]) == 1 else { return false }
                let event: any DomainEvent
                switch attempt {
                case .approved:
                    try payments.record(.charge, outcome: .captured, amount: amountCents, attempts: attempts, orderId: orderId, in: db)
                    event = PaymentCompleted(orderId: orderId, amountCents: amountCents, attempts: attempts)
                case .declined(let reason):
                    try payments.record(.charge, outcome: .declined, amount: 0, attempts: attempts, orderId: orderId, in: db)
                    event = PaymentFailed(orderId: orderId, reason: reason, attempts: attempts)
                case .transientFailure:
                    preconditionFailure("a transient failure is not an outcome")
                }
                try Outbox.add(try EventLog.catalog.message(event, source: Producer.payment.source, correlationId: orderId, causationId: causedBy), in: db)
                return true
            }
            if settled { relay.wake() }
            return settled
        }

        /// Charges an order once both facts are here: its `OrderCreated`
        /// (the card, the amount) and its `InventoryReserved`. On the log
        /// they come from two topics, read at their own pace, so either may
        /// come first: a reservation read early is kept, and whichever of
        /// the two comes second charges. Called after each of them, also
        /// when the event was handled before (a record read again after a
        /// crash between the two steps finishes the charge).
        @Sendable func chargeIfReady(_ orderId: String) async throws {
            // Read into plain values: what crosses into the closures below must be Sendable.
            let ready: (card: String, amountCents: Int, causedBy: String)? = try await db.read { db in
                guard let pending = try Row.fetchOne(db.cachedStatement(sql: "SELECT card, amountCents FROM pending_charges WHERE orderId = ?"), arguments: [orderId]),
                      let reservation = try String.fetchOne(db, cached: "SELECT eventId FROM reserved_orders WHERE orderId = ?", [orderId])
                else { return nil }
                return (pending["card"], pending["amountCents"], reservation)
            }
            guard let ready else { return }
            let attempt = SimulatedCardProcessor.charge(try CardNumber(ready.card), attempt: 1)
            if case .transientFailure = attempt {
                // Try again later, as a job; the card stays in this
                // service's database, out of the job's data. The job's id is
                // the order's, so asking twice adds one job.
                let job = try OutgoingMessage.charge(ChargeJob(orderId: orderId, amountCents: ready.amountCents, cardLast4: String(ready.card.suffix(4)),
                                                               causationId: ready.causedBy), policy: policy)
                try await db.write { db in try Outbox.add(job, in: db) }
                relay.wake()
                return
            }
            _ = try await settle(attempt, orderId: orderId, amountCents: ready.amountCents, attempts: 1, causedBy: ready.causedBy)
        }

        let consumer = messaging.consumer("payment", events: [
            .on(OrderCreated.self) { event, message in
                let order = try event.decode(OrderCreated.self)
                let card = try CardNumber(order.card)
                try await Inbox.once(message, db: db, relay: nil) { db in
                    // Charged before (a copy of the event under another id), or
                    // cancelled already: nothing to keep.
                    if try Int.fetchOne(db, cached: "SELECT 1 FROM payments WHERE orderId = ? AND kind = 'charge'", [order.orderId]) != nil
                        || Int.fetchOne(db, cached: "SELECT 1 FROM cancelled_orders WHERE orderId = ?", [order.orderId]) != nil { return [] }
                    try db.run(cached: "INSERT OR IGNORE INTO pending_charges (orderId, card, amountCents, createdAt) VALUES (?, ?, ?, ?)",
                               [order.orderId, card.digits, order.total.amountCents, Date().databaseMilliseconds])
                    return []
                }
                // Its reservation may have been read first.
                try await chargeIfReady(order.orderId)
            },
            .on(InventoryReserved.self) { event, message in
                let reserved = try event.decode(InventoryReserved.self)
                try await Inbox.once(message, db: db, relay: nil) { db in
                    try db.run(cached: "INSERT OR IGNORE INTO reserved_orders (orderId, eventId) VALUES (?, ?)", [reserved.orderId, event.id])
                    return []
                }
                // Charges now, unless its OrderCreated is still to be read
                // (then that one charges), or the order was settled or
                // cancelled (then there is nothing pending).
                try await chargeIfReady(reserved.orderId)
            },
            // The order is off: payment undoes its own step.
            .on(OrderCancelled.self) { event, message in
                let cancelled = try event.decode(OrderCancelled.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    try db.run(cached: "DELETE FROM pending_charges WHERE orderId = ?", [cancelled.orderId])
                    try db.run(cached: "INSERT OR IGNORE INTO cancelled_orders (orderId) VALUES (?)", [cancelled.orderId])
                    let captured = try Int.fetchOne(db, cached: "SELECT amountCents FROM payments WHERE orderId = ? AND kind = 'charge' AND outcome = 'captured'", [cancelled.orderId])
                    let refunded = try Int.fetchOne(db, cached: "SELECT 1 FROM payments WHERE orderId = ? AND kind = 'refund'", [cancelled.orderId]) != nil
                    guard let amount = captured, !refunded else { return [] }
                    try payments.record(.refund, outcome: .refunded, amount: amount, attempts: 1, orderId: cancelled.orderId, in: db)
                    return [try messaging.event(PaymentRefunded(orderId: cancelled.orderId, amountCents: amount), correlationId: cancelled.orderId, causedBy: event)]
                }
            },
        ])

        // The charge's later attempts, as in stage 5. The consumer made
        // attempt 1; this job's first run is attempt 2.
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
            let settled = try await settle(result, orderId: charge.orderId, amountCents: charge.amountCents, attempts: attempt, causedBy: charge.causationId)
            return JobOutcome(outcome: settled ? (result == .approved ? "approved" : "declined") + " on attempt \(attempt)" : "settled by another run, or cancelled")
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
        // not in the job. Stage 6 keeps it here from OrderCreated until the
        // charge is settled or the order cancelled.
        Migration("payments v2: charges to retry", sql: """
            CREATE TABLE pending_charges (
                orderId TEXT PRIMARY KEY,
                card TEXT NOT NULL,
                amountCents INTEGER NOT NULL,
                createdAt INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
        // Stage 6: events about one order come from three producers, in no
        // order between them. A cancellation is remembered, so that an
        // InventoryReserved or an OrderCreated that arrives after it
        // charges nothing.
        Migration("payments v3: cancelled orders", sql: """
            CREATE TABLE cancelled_orders (orderId TEXT PRIMARY KEY) WITHOUT ROWID;
            """),
        // Stage 7: OrderCreated and InventoryReserved come from two topics,
        // each read at its own pace, so the reservation may be read first.
        // It is kept here (with the event that caused it, for the charge's
        // causation id) until its OrderCreated is read; stage 6 sent it down
        // the retry ladder instead, which a lagging topic can outlast.
        Migration("payments v4: reservations read before their order", sql: """
            CREATE TABLE reserved_orders (
                orderId TEXT PRIMARY KEY,
                eventId TEXT NOT NULL
            ) WITHOUT ROWID;
            """),
    ]
}
