import Auth
import Checkout
import Common
import Discovery
import Foundation
import GRDB
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage
import Synchronization

/// How an order is decided, now that payment and inventory are services of
/// their own: this file replaces the synchronous checkout of stages 1 to 3
/// (`scripts/diff-stages 3 4`). The order service keeps only orders. Placing one stores it as
/// `pending` and writes `order.created` to the outbox in the same
/// transaction, and answers at once (201). Payment and inventory do their
/// parts when the message reaches them and answer with messages of their
/// own; the order service decides when it has both answers. This is the
/// order's saga, orchestrated here:
///
///     stock ✓ + payment ✓                  → confirmed     (order.confirmed)
///     stock ✗, or payment ✗, or cancelled  → compensate what was done:
///         a capture → payment.refund,  a reservation → stock.release;
///       once both are answered             → cancelled     (order.cancelled)
///
/// An order stays `pending` (or `confirmed`, for a customer's cancellation)
/// until every compensation it needs is done, so that a decided order never
/// shows money or stock still on the move.
struct OrderFlow: OrderCommands {
    let db: any DatabaseWriter
    let logger: Logger
    let catalogue: any Catalogue
    let relay: OutboxRelay
    let queries: OrderQueries
    let invoices: Invoices

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
    ]

    struct Saga {
        var stock: StockOutcome?
        var payment: PaymentOutcome?
        var cancelRequested: Bool
        var cancelling: CancelReason?
        var awaitingRefund: Bool
        var awaitingRelease: Bool

        /// From the order's row (the saga's columns are in it).
        init(row: Row) {
            stock = (row["stockOutcome"] as String?).flatMap(StockOutcome.init)
            payment = (row["paymentOutcome"] as String?).flatMap(PaymentOutcome.init)
            cancelRequested = row["cancelRequested"]
            cancelling = (row["cancelling"] as String?).flatMap(CancelReason.init)
            awaitingRefund = row["awaitingRefund"]
            awaitingRelease = row["awaitingRelease"]
        }

        func save(_ orderId: String, _ db: Database) throws {
            try db.run(cached: """
                UPDATE orders SET stockOutcome = ?, paymentOutcome = ?, cancelRequested = ?, cancelling = ?, awaitingRefund = ?, awaitingRelease = ?
                WHERE id = ?
                """, [stock?.rawValue, payment?.rawValue, cancelRequested, cancelling?.rawValue, awaitingRefund, awaitingRelease, orderId])
        }
    }

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
            totalCents: order.totalCents, card: valid.card.digits)
        do {
            // The order and its message, in one transaction: both or neither.
            // It shares its commit with the other orders being placed and
            // the messages being handled (stage 3's group commit, the one
            // this database's inbox and outbox use too).
            try await GroupCommit.shared(db).write { db in
                try order.insert(db)
                for line in lines { try line.insert(db) }
                try Outbox.add(try OutgoingMessage(Topic.orderCreated, created, order: orderId), in: db)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE && idempotencyKey != nil {
            guard let earlier = try await queries.order(userId: principal.userId, idempotencyKey: idempotencyKey!) else { throw error }
            return try queries.replay(earlier, for: valid, as: try await queries.load(earlier.id))
        }
        relay.wake()
        logger.info("order placed; waiting for payment and stock", metadata: ["order_id": .string(orderId)])
        OrderMetrics.placed()
        return .created(order.api(items: lines))
    }

    /// 202: the cancellation is under way. A pending order is cancelled once
    /// payment and stock have answered; a confirmed one once the refund and
    /// the return of its units are done.
    func cancel(orderId: String, by principal: Principal, requestId: String) async throws -> API.Order {
        try await change(orderId) { order, saga, db in
            guard OrderQueries.visible(order, to: principal) else { throw ShopError.notFound("order \(orderId)") }
            if saga.cancelling != nil { return [] }  // already being cancelled
            switch order.status {
            case .pending:
                saga.cancelRequested = true
                return []
            case .confirmed:
                return try compensate(&order, &saga, reason: .customerRequest)
            case .shipped, .cancelled:
                _ = try order.status.cancelling()  // throws order_not_cancellable
                return []
            }
        }
    }

    func ship(orderId: String, requestId: String) async throws -> API.Order {
        try await change(orderId) { order, saga, db in
            guard saga.cancelling == nil else {
                throw ShopError(.orderNotShippable, "the order is being cancelled and can no longer be shipped")
            }
            order.status = try order.status.shipping()
            return [try outcome(Topic.orderShipped, order)]
        }
    }

    // MARK: Messages

    func stockAnswered(_ message: IncomingMessage, _ outcome: StockOutcome) async throws {
        let answer = try message.decodeChecked(StockMessage.self)
        try await handle(message, orderId: answer.orderId) { order, saga, db in
            guard saga.stock == nil else { return [] }  // the first answer counts; a copy changes nothing
            saga.stock = outcome
            return try decideIfReady(&order, &saga)
        }
    }

    func paymentAnswered(_ message: IncomingMessage, _ outcome: PaymentOutcome) async throws {
        let answer = try message.decodeChecked(PaymentMessage.self)
        try await handle(message, orderId: answer.orderId) { order, saga, db in
            guard saga.payment == nil else { return [] }
            saga.payment = outcome
            order.paymentStatus = outcome == .captured ? .captured : .declined
            order.chargedCents = outcome == .captured ? answer.amountCents : 0
            return try decideIfReady(&order, &saga)
        }
    }

    func refunded(_ message: IncomingMessage) async throws {
        let answer = try message.decodeChecked(PaymentMessage.self)
        try await handle(message, orderId: answer.orderId) { order, saga, db in
            guard saga.awaitingRefund else { return [] }
            // The order shows the refund when it shows the cancellation, not
            // before: a client that sees `refunded` also sees `cancelled`.
            saga.awaitingRefund = false
            return try finishCancellingIfDone(&order, &saga)
        }
    }

    func released(_ message: IncomingMessage) async throws {
        let answer = try message.decodeChecked(StockMessage.self)
        try await handle(message, orderId: answer.orderId) { order, saga, db in
            guard saga.awaitingRelease else { return [] }
            saga.awaitingRelease = false
            return try finishCancellingIfDone(&order, &saga)
        }
    }

    /// `invoice` queue: the invoice of a confirmed order (work the request
    /// used to wait for; stage 5 makes it a background job).
    func invoice(_ message: IncomingMessage) async throws {
        let confirmed = try message.decodeChecked(OrderOutcome.self)
        try await Inbox.once(message, db: db, relay: nil) { [invoices] db in
            guard let order = try OrderRecord.find(confirmed.orderId, in: db) else {
                throw MessageFailure.poison("order \(confirmed.orderId) does not exist")
            }
            try invoices.generate(for: order.api(items: try OrderItemRecord.lines(of: order.id, in: db)), customer: order.customer, in: db)
            return []
        }
    }

    // MARK: The saga

    /// Both answers are in: confirm, or cancel and compensate.
    private func decideIfReady(_ order: inout OrderRecord, _ saga: inout Saga) throws -> [OutgoingMessage] {
        guard order.status == .pending, saga.cancelling == nil, let stock = saga.stock, let payment = saga.payment else { return [] }
        let decision = saga.cancelRequested ? .cancel(.customerRequest) : OrderDecision.decide(stock: stock, payment: payment)!
        switch decision {
        case .confirm:
            order.status = try order.status.confirming()
            return [try outcome(Topic.orderConfirmed, order)]
        case .cancel(let reason):
            return try compensate(&order, &saga, reason: reason)
        }
    }

    /// Asks for the refund and the release the order needs, or cancels at
    /// once when it needs none.
    private func compensate(_ order: inout OrderRecord, _ saga: inout Saga, reason: CancelReason) throws -> [OutgoingMessage] {
        saga.cancelling = reason
        var requests: [OutgoingMessage] = []
        if saga.payment == .captured {
            saga.awaitingRefund = true
            requests.append(try OutgoingMessage(Topic.paymentRefund, PaymentMessage(orderId: order.id, amountCents: order.chargedCents), order: order.id))
        }
        if saga.stock == .reserved {
            saga.awaitingRelease = true
            requests.append(try OutgoingMessage(Topic.stockRelease, StockMessage(orderId: order.id), order: order.id))
        }
        return requests.isEmpty ? try finishCancellingIfDone(&order, &saga) : requests
    }

    private func finishCancellingIfDone(_ order: inout OrderRecord, _ saga: inout Saga) throws -> [OutgoingMessage] {
        guard let reason = saga.cancelling, !saga.awaitingRefund, !saga.awaitingRelease else { return [] }
        // Every compensation is answered: the order changes in one step. A
        // capture was refunded in full (the refund asked for the amount charged).
        if saga.payment == .captured {
            order.paymentStatus = .refunded
            order.refundedCents = order.chargedCents
        }
        order.status = try order.status.cancelling()
        order.cancelReason = reason
        saga.cancelling = nil
        return [try outcome(Topic.orderCancelled, order)]
    }

    private func outcome(_ type: String, _ order: OrderRecord) throws -> OutgoingMessage {
        try OutgoingMessage(type, OrderOutcome(orderId: order.id, cancelReason: order.cancelReason), order: order.id)
    }

    // MARK: Plumbing

    typealias Change = @Sendable (inout OrderRecord, inout Saga, Database) throws -> [OutgoingMessage]

    /// A request's change to an order and its saga, with the messages it
    /// leads to, in one transaction; answers the order as it now is.
    private func change(_ orderId: String, _ body: @escaping Change) async throws -> API.Order {
        let (answer, sent, decided): (API.Order, Bool, Bool) = try await GroupCommit.shared(db).write { db in
            guard var (order, saga) = try Self.load(orderId, db) else { throw ShopError.notFound("order \(orderId)") }
            let wasPending = order.status == .pending
            let messages = try apply(body, to: &order, &saga, db)
            try Outbox.add(messages, in: db)
            return (order.api(items: try OrderItemRecord.lines(of: orderId, in: db)), !messages.isEmpty, wasPending && order.status != .pending)
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

    /// The same for a message, once per message id (`Inbox.once` puts the
    /// messages it leads to in the outbox). When the message decided the
    /// order, the log says so after the commit, with the order's id, as the
    /// synchronous checkout of stages 1 to 3 did: `grep order_id=…` follows
    /// one order through every service.
    private func handle(_ message: IncomingMessage, orderId: String, _ body: @escaping Change) async throws {
        let decided = Mutex<OrderRecord?>(nil)
        try await Inbox.once(message, db: db, relay: relay) { db in
            guard var (order, saga) = try Self.load(orderId, db) else { throw MessageFailure.poison("order \(orderId) does not exist") }
            let wasPending = order.status == .pending
            let messages = try apply(body, to: &order, &saga, db)
            decided.withLock { $0 = wasPending && order.status != .pending ? order : nil }
            return messages
        }
        if let order = decided.withLock({ $0 }) {
            var metadata: Logger.Metadata = ["order_id": .string(order.id), "status": .string(order.status.rawValue)]
            if let reason = order.cancelReason { metadata["reason"] = .string(reason.rawValue) }
            logger.info("order decided", metadata: metadata)
            OrderMetrics.decided(order.status, reason: order.cancelReason)
            queries.decisions.post(order.id)
        }
    }

    /// The order and its saga, from one read of its row.
    private static func load(_ orderId: String, _ db: Database) throws -> (OrderRecord, Saga)? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM orders WHERE id = ?"), arguments: [orderId]) else { return nil }
        return (try OrderRecord(row: row), Saga(row: row))
    }

    private func apply(_ body: Change, to order: inout OrderRecord, _ saga: inout Saga, _ db: Database) throws -> [OutgoingMessage] {
        let before = order
        let messages = try body(&order, &saga, db)
        if order.status != before.status || order.paymentStatus != before.paymentStatus
            || order.chargedCents != before.chargedCents || order.refundedCents != before.refundedCents {
            order.updatedAt = Timestamp.now()
        }
        try order.update(db)
        try saga.save(order.id, db)
        return messages
    }
}

extension Customer {
    init(_ recipient: Recipient) { self.init(userId: recipient.userId, email: recipient.email, name: recipient.name) }
}
