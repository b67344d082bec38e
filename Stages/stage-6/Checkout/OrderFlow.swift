import Auth
import Checkout
import Common
import Discovery
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
import Synchronization

/// The order's side of the choreography (`scripts/diff-stages 5 6`). Stage
/// 5's order service orchestrated: it waited for both answers, decided, and
/// told payment and inventory what to undo. Here it only keeps its own
/// aggregate honest, and says what happened to it:
///
///     POST /orders                          → pending       OrderCreated
///     InventoryRejected                     → cancelled     OrderCancelled (out_of_stock)
///     PaymentCompleted                      → confirmed     OrderConfirmed, and the invoice job
///     PaymentFailed                         → cancelled     OrderCancelled (payment_declined)
///     POST /orders/{id}/cancel, the deadline → cancelled     OrderCancelled (…, wasConfirmed)
///     POST /orders/{id}/ship                → shipped       OrderShipped
///     PaymentRefunded                       → the refund shows
///
/// It never asks for a refund or a release: inventory and payment hear
/// `OrderCancelled` (and `PaymentFailed`) themselves and undo their own
/// steps. Payment only charges once inventory has reserved, so "out of
/// stock" always wins and never charges. An answer that comes after the
/// order was cancelled (a capture racing a customer's cancel) is recorded;
/// payment refunds it, having seen the same `OrderCancelled`.
///
/// The saga's columns of stages 4 and 5 (stockOutcome, paymentOutcome,
/// cancelling, …) stay in the table, unused: a shipped migration is never
/// changed, and dropping columns would be a migration of its own for no gain.
struct OrderFlow: OrderCommands {
    let db: any DatabaseWriter
    let logger: Logger
    let catalogue: any Catalogue
    let relay: OutboxRelay
    let queries: OrderQueries
    let invoices: Invoices
    let policy: JobPolicy
    let events: EventCatalog

    /// The monolith's orders and invoices, and the saga's state beside each
    /// order: what payment and inventory answered; whether the customer asked
    /// to cancel before the decision; and, while an order is being cancelled,
    /// why, and which compensations are still unanswered. (pendingCard stays
    /// empty: the card travels in the order.created message now.)
    static let migrations = [
        Migration("orders v1", sql: """
            CREATE TABLE orders (
                id TEXT PRIMARY KEY,
                userId TEXT NOT NULL,
                status TEXT NOT NULL,
                cancelReason TEXT,
                totalCents INTEGER NOT NULL,
                paymentStatus TEXT NOT NULL,
                chargedCents INTEGER NOT NULL,
                refundedCents INTEGER NOT NULL,
                cardLast4 TEXT NOT NULL,
                pendingCard TEXT,
                customerEmail TEXT NOT NULL,
                customerName TEXT NOT NULL,
                idempotencyKey TEXT,
                requestFingerprint TEXT NOT NULL,
                createdAt INTEGER NOT NULL,
                updatedAt INTEGER NOT NULL,
                UNIQUE (userId, idempotencyKey)
            );
            CREATE INDEX orders_by_user ON orders(userId, createdAt);
            CREATE INDEX orders_with_pending_charge ON orders(pendingCard) WHERE pendingCard IS NOT NULL;
            CREATE TABLE order_items (
                orderId TEXT NOT NULL REFERENCES orders(id),
                line INTEGER NOT NULL,
                productId TEXT NOT NULL,
                sku TEXT NOT NULL,
                name TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                unitPriceCents INTEGER NOT NULL,
                lineTotalCents INTEGER NOT NULL,
                PRIMARY KEY (orderId, line)
            ) WITHOUT ROWID;
            CREATE TABLE invoices (
                orderId TEXT PRIMARY KEY REFERENCES orders(id),
                number INTEGER NOT NULL UNIQUE,
                html TEXT NOT NULL,
                createdAt INTEGER NOT NULL
            ) WITHOUT ROWID;
            ALTER TABLE orders ADD COLUMN stockOutcome TEXT;
            ALTER TABLE orders ADD COLUMN paymentOutcome TEXT;
            ALTER TABLE orders ADD COLUMN cancelRequested INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE orders ADD COLUMN cancelling TEXT;
            ALTER TABLE orders ADD COLUMN awaitingRefund INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE orders ADD COLUMN awaitingRelease INTEGER NOT NULL DEFAULT 0;
            """),
        // The same change as the monolith's "checkout v2" (Sources/Checkout/Schema.swift).
        Migration("orders v2: a partial idempotency index, invoices with a rowid", sql: """
            CREATE TABLE orders_v2 (
                id TEXT PRIMARY KEY,
                userId TEXT NOT NULL,
                status TEXT NOT NULL,
                cancelReason TEXT,
                totalCents INTEGER NOT NULL,
                paymentStatus TEXT NOT NULL,
                chargedCents INTEGER NOT NULL,
                refundedCents INTEGER NOT NULL,
                cardLast4 TEXT NOT NULL,
                pendingCard TEXT,
                customerEmail TEXT NOT NULL,
                customerName TEXT NOT NULL,
                idempotencyKey TEXT,
                requestFingerprint TEXT NOT NULL,
                createdAt INTEGER NOT NULL,
                updatedAt INTEGER NOT NULL,
                stockOutcome TEXT,
                paymentOutcome TEXT,
                cancelRequested INTEGER NOT NULL DEFAULT 0,
                cancelling TEXT,
                awaitingRefund INTEGER NOT NULL DEFAULT 0,
                awaitingRelease INTEGER NOT NULL DEFAULT 0
            );
            INSERT INTO orders_v2 (rowid, id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents,
                refundedCents, cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
                createdAt, updatedAt, stockOutcome, paymentOutcome, cancelRequested, cancelling, awaitingRefund, awaitingRelease)
            SELECT rowid, id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents,
                refundedCents, cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
                createdAt, updatedAt, stockOutcome, paymentOutcome, cancelRequested, cancelling, awaitingRefund, awaitingRelease
            FROM orders;
            DROP TABLE orders;
            ALTER TABLE orders_v2 RENAME TO orders;
            CREATE UNIQUE INDEX orders_by_idempotency_key ON orders(userId, idempotencyKey) WHERE idempotencyKey IS NOT NULL;
            CREATE INDEX orders_by_user ON orders(userId, createdAt);
            CREATE INDEX orders_with_pending_charge ON orders(pendingCard) WHERE pendingCard IS NOT NULL;
            CREATE TABLE invoices_v2 (
                orderId TEXT PRIMARY KEY REFERENCES orders(id),
                number INTEGER NOT NULL UNIQUE,
                html TEXT NOT NULL,
                createdAt INTEGER NOT NULL
            );
            INSERT INTO invoices_v2 (orderId, number, html, createdAt) SELECT orderId, number, html, createdAt FROM invoices;
            DROP TABLE invoices;
            ALTER TABLE invoices_v2 RENAME TO invoices;
            """),
        Migration("orders v3: the deadline", sql: """
            ALTER TABLE orders ADD COLUMN deadlinePassed INTEGER NOT NULL DEFAULT 0;
            """),
    ]

    // MARK: Requests

    func place(_ request: API.PlaceOrderRequest, idempotencyKey: String?, by principal: Principal, requestId: String, logger: Logger) async throws -> OrderQueries.Placement {
        let valid = try ValidOrderRequest(request)
        if let key = idempotencyKey, let earlier = try await queries.order(userId: principal.userId, idempotencyKey: key) {
            return try queries.replay(earlier, for: valid, as: try await queries.load(earlier.id))
        }
        let items = try Pricing.price(valid, catalogue: try await catalogue.products(ids: valid.lines.map(\.productId), requestId: requestId))
        let orderId = ID.make(ID.order)
        let now = Timestamp.now()
        let order = OrderRecord(
            id: orderId, userId: principal.userId, status: .pending, cancelReason: nil,
            totalCents: items.reduce(0) { $0 + $1.lineTotalCents }, paymentStatus: .pending,
            chargedCents: 0, refundedCents: 0, cardLast4: valid.card.last4, pendingCard: nil,
            customerEmail: principal.email, customerName: principal.name, idempotencyKey: idempotencyKey,
            requestFingerprint: valid.fingerprint, createdAt: now, updatedAt: now)
        let lines = items.enumerated().map { index, item in
            OrderItemRecord(
                orderId: orderId, line: index + 1, productId: item.productId, sku: item.sku, name: item.name,
                quantity: item.quantity, unitPriceCents: item.unitPriceCents, lineTotalCents: item.lineTotalCents)
        }
        let created = OrderCreated(
            orderId: orderId, customer: Customer(order.customer), items: lines.map { Line(productId: $0.productId, quantity: $0.quantity) },
            total: Money(amountCents: order.totalCents, currency: "USD"), card: valid.card.digits)
        do {
            // The order and its event, in one transaction: both or neither.
            // It shares its commit with the other orders being placed and
            // the messages being handled (stage 3's group commit, the one
            // this database's inbox and outbox use too).
            try await GroupCommit.shared(db).write { [events] db in
                try order.insert(db)
                for line in lines { try line.insert(db) }
                try Outbox.add([
                    try events.message(created, source: Producer.order.source, correlationId: orderId, requestId: requestId),
                    try .deadline(orderId: orderId, policy: policy),
                ], in: db)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE && idempotencyKey != nil {
            guard let earlier = try await queries.order(userId: principal.userId, idempotencyKey: idempotencyKey!) else { throw error }
            return try queries.replay(earlier, for: valid, as: try await queries.load(earlier.id))
        }
        relay.wake()
        logger.info("order placed; it is inventory's and payment's move", metadata: ["order_id": .string(orderId)])
        OrderMetrics.placed()
        return .created(order.api(items: lines))
    }

    /// 202, and the order is cancelled at once: a pending one (whatever is
    /// under way is undone by whoever did it), or a confirmed one (its units
    /// come back and its charge is refunded, as those services see the event).
    func cancel(orderId: String, by principal: Principal, requestId: String) async throws -> API.Order {
        try await change(orderId, cause: .request(requestId)) { order in
            guard OrderQueries.visible(order, to: principal) else { throw ShopError.notFound("order \(orderId)") }
            return try cancelling(&order, reason: .customerRequest)
        }
    }

    func ship(orderId: String, requestId: String) async throws -> API.Order {
        try await change(orderId, cause: .request(requestId)) { order in
            order.status = try order.status.shipping()
            return [OrderShipped(orderId: order.id)]
        }
    }

    // MARK: Events

    func inventoryRejected(_ event: ReceivedEvent, _ message: IncomingMessage) async throws {
        let rejected = try event.decode(InventoryRejected.self)
        try await handle(event, message, orderId: rejected.orderId) { order in
            guard order.status == .pending else { return [] }  // cancelled already: nothing was reserved
            return try cancelling(&order, reason: .outOfStock)
        }
    }

    func paymentCompleted(_ event: ReceivedEvent, _ message: IncomingMessage) async throws {
        let payment = try event.decode(PaymentCompleted.self)
        try await handle(event, message, orderId: payment.orderId) { order in
            order.paymentStatus = .captured
            order.chargedCents = payment.amountCents
            // Cancelled meanwhile (the customer, or the deadline): the capture
            // is shown; payment refunds it, having seen OrderCancelled too.
            guard order.status == .pending else { return [] }
            order.status = try order.status.confirming()
            return [OrderConfirmed(orderId: order.id)]
        }
    }

    func paymentFailed(_ event: ReceivedEvent, _ message: IncomingMessage) async throws {
        let failure = try event.decode(PaymentFailed.self)
        try await handle(event, message, orderId: failure.orderId) { order in
            if order.paymentStatus == .pending { order.paymentStatus = .declined }
            guard order.status == .pending else { return [] }
            return try cancelling(&order, reason: .paymentDeclined)
        }
    }

    func paymentRefunded(_ event: ReceivedEvent, _ message: IncomingMessage) async throws {
        let refund = try event.decode(PaymentRefunded.self)
        try await handle(event, message, orderId: refund.orderId) { order in
            order.paymentStatus = .refunded
            order.refundedCents = refund.amountCents
            return []
        }
    }

    // MARK: Jobs

    /// The `invoices` job: the invoice of a confirmed order (work the
    /// request used to wait for, in stages 1 to 3). Writing it twice is
    /// harmless: an order has one invoice row.
    func invoice(orderId: String) async throws {
        try await GroupCommit.shared(db).write { [invoices] db in
            guard let order = try OrderRecord.find(orderId, in: db) else { throw JobFailure("order \(orderId) does not exist") }
            try invoices.generate(for: order.api(items: try OrderItemRecord.lines(of: order.id, in: db)), customer: order.customer, in: db)
        }
    }

    /// The `orders` job that comes due `ORDER_DEADLINE_SECONDS` after an
    /// order was placed: an order still pending is cancelled, and whoever
    /// did part of it undoes that part on seeing `OrderCancelled`.
    func deadlinePassed(orderId: String) async throws -> String {
        let cancelled = Mutex(false)
        _ = try await change(orderId, cause: .job("order:deadline:\(orderId)")) { order in
            guard order.status == .pending else { return [] }
            cancelled.withLock { $0 = true }
            return try cancelling(&order, reason: .paymentDeclined)
        }
        if cancelled.withLock({ $0 }) {
            logger.notice("order still pending at its deadline; cancelling it", metadata: ["order_id": .string(orderId)])
            return "cancelled at the deadline"
        }
        return "already decided"
    }

    // MARK: The order's own rules

    /// Cancels the order now. A payment nobody has answered yet shows as
    /// not taken (a capture that comes later shows, and is refunded).
    private func cancelling(_ order: inout OrderRecord, reason: CancelReason) throws -> [any DomainEvent] {
        let wasConfirmed = order.status == .confirmed
        order.status = try order.status.cancelling()  // throws order_not_cancellable once shipped or cancelled
        order.cancelReason = reason
        if order.paymentStatus == .pending { order.paymentStatus = .declined }
        return [OrderCancelled(orderId: order.id, reason: reason, wasConfirmed: wasConfirmed)]
    }

    // MARK: Plumbing

    typealias Change = @Sendable (inout OrderRecord) throws -> [any DomainEvent]

    /// What caused a change, for the envelope of the events it publishes.
    enum Cause {
        case request(String)
        case job(String)
    }

    /// A request's (or a job's) change to an order, with the events it
    /// publishes, in one transaction; answers the order as it now is.
    private func change(_ orderId: String, cause: Cause, _ body: @escaping Change) async throws -> API.Order {
        let (answer, sent, decided): (API.Order, Bool, Bool) = try await GroupCommit.shared(db).write { [events] db in
            guard var order = try OrderRecord.find(orderId, in: db) else { throw ShopError.notFound("order \(orderId)") }
            let wasPending = order.status == .pending
            let published = try apply(body, to: &order, db)
            let requestId: String = switch cause { case .request(let id): id; case .job(let id): id }
            try Outbox.add(try published.map { try events.message($0, source: Producer.order.source, correlationId: orderId, requestId: requestId) }, in: db)
            return (order.api(items: try OrderItemRecord.lines(of: orderId, in: db)), !published.isEmpty, wasPending && order.status != .pending)
        }
        if sent { relay.wake() }
        // A request or a job that decided the order (stage 5 on: the deadline).
        if decided {
            OrderMetrics.decided(answer.status, reason: answer.cancelReason)
            // Committed: a client waiting for it (`Prefer: wait`) is answered now.
            queries.decisions.post(orderId)
        }
        return answer
    }

    /// The same for an event, once per event id (`Inbox.once`), each event
    /// it publishes caused by this one. When the event decided the order,
    /// the log says so after the commit.
    private func handle(_ event: ReceivedEvent, _ message: IncomingMessage, orderId: String, _ body: @escaping Change) async throws {
        let decided = Mutex<OrderRecord?>(nil)
        try await Inbox.once(message, db: db, relay: relay) { [events] db in
            guard var order = try OrderRecord.find(orderId, in: db) else { throw MessageFailure.poison("order \(orderId) does not exist") }
            let wasPending = order.status == .pending
            let published = try apply(body, to: &order, db)
            decided.withLock { $0 = wasPending && order.status != .pending ? order : nil }
            var outgoing = try published.map { try events.message($0, source: Producer.order.source, correlationId: orderId, causedBy: event) }
            // A confirmation is also work to do: the invoice, as a job.
            if wasPending && order.status == .confirmed { outgoing.append(try .invoice(orderId: orderId)) }
            return outgoing
        }
        if let order = decided.withLock({ $0 }) {
            var metadata: Logger.Metadata = ["order_id": .string(order.id), "status": .string(order.status.rawValue), "event_id": .string(event.id)]
            if let reason = order.cancelReason { metadata["reason"] = .string(reason.rawValue) }
            logger.info("order decided", metadata: metadata)
            OrderMetrics.decided(order.status, reason: order.cancelReason)
            queries.decisions.post(order.id)
        }
    }

    private func apply(_ body: Change, to order: inout OrderRecord, _ db: Database) throws -> [any DomainEvent] {
        let before = order
        let published = try body(&order)
        if order.status != before.status || order.paymentStatus != before.paymentStatus
            || order.chargedCents != before.chargedCents || order.refundedCents != before.refundedCents {
            order.updatedAt = Timestamp.now()
        }
        try order.update(db)
        return published
    }
}

extension Customer {
    init(_ recipient: Recipient) { self.init(userId: recipient.userId, email: recipient.email, name: recipient.name) }
}
