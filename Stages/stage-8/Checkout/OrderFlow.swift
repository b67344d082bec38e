import Auth
import Checkout
import Common
import EventStore
import Events
import Foundation
import GRDB
import Hummingbird
import Jobs
import Logging
import Messaging
import ShopServer
import Storage

/// The order service's write side (`scripts/diff-stages 7 8`). Stage 7's
/// `OrderFlow` read a row, changed it and wrote it back with the events in
/// its outbox. Here every change is a command on the `Order` aggregate
/// (OrderAggregate.swift): load its stream (from the newest snapshot),
/// decide, append at the version loaded. Another writer that appended
/// first (the customer's cancel racing payment's answer) makes the append
/// fail with a conflict, and the command is decided again on the fresh
/// state, up to five times (`AggregateStore`).
///
/// There is no orders table. The store's events are the truth and the
/// outbox at once: `StoreRelay` sends them on in order. Reads are the query
/// side's (QueryService.swift), except what only the store can answer:
/// an order's events, and an order or the sales report as of a past moment
/// (`OrderHistory`).
struct OrderFlow: OrderCommands {
    let store: EventStore
    let orders: AggregateStore<Order>
    let logger: Logger
    let catalogue: any Catalogue
    let relay: OutboxRelay
    let invoices: Invoices

    /// The event store's tables, the Idempotency-Key of each placement, and
    /// the invoices (documents written once by a job, not order state).
    static let migrations = EventStore.migrations + [
        Migration("orders v1 (event-sourced): idempotency keys and invoices", sql: """
            CREATE TABLE idempotency_keys (
                userId TEXT NOT NULL,
                idempotencyKey TEXT NOT NULL,
                orderId TEXT NOT NULL,
                requestFingerprint TEXT NOT NULL,
                PRIMARY KEY (userId, idempotencyKey)
            ) WITHOUT ROWID;
            CREATE TABLE invoices (
                orderId TEXT PRIMARY KEY,
                number INTEGER NOT NULL UNIQUE,
                html TEXT NOT NULL,
                createdAt INTEGER NOT NULL
            );
            """),
    ]

    /// A snapshot every 20 events: an order's stream is short (2 to 6
    /// events), so this matters only for the benchmark's long streams and
    /// for showing the mechanism (`SNAPSHOT_EVERY` changes it).
    init(store: EventStore, snapshotEvery: Int, logger: Logger, catalogue: any Catalogue, relay: OutboxRelay) {
        self.store = store
        self.orders = AggregateStore<Order>(store, snapshotEvery: snapshotEvery, maxAttempts: 5)
        self.logger = logger
        self.catalogue = catalogue
        self.relay = relay
        self.invoices = Invoices(db: store.db)
    }

    // MARK: Requests

    func place(_ request: API.PlaceOrderRequest, idempotencyKey: String?, by principal: Principal, requestId: String, logger: Logger) async throws -> OrderQueries.Placement {
        let valid = try ValidOrderRequest(request)
        if let key = idempotencyKey, let earlier = try await earlierPlacement(userId: principal.userId, key: key) {
            return try await replay(earlier, for: valid)
        }
        let items = try Pricing.price(valid, catalogue: try await catalogue.products(ids: valid.lines.map(\.productId), requestId: requestId))
        let orderId = ID.make(ID.order)
        let created = OrderCreated(
            orderId: orderId, customer: Customer(userId: principal.userId, email: principal.email, name: principal.name),
            items: items.map { OrderLine(productId: $0.productId, sku: $0.sku, name: $0.name, quantity: $0.quantity, unitPriceCents: $0.unitPriceCents) },
            total: Money(amountCents: items.reduce(0) { $0 + $1.lineTotalCents }, currency: "USD"), card: valid.card.digits)
        let handled: Handled<Order>
        do {
            // The order's first event and its Idempotency-Key, in one transaction.
            handled = try await orders.handle(orderId, metadata: EventMetadata(correlationId: orderId, requestId: requestId), .place(created, now: Date())) { db, _ in
                if let key = idempotencyKey {
                    try db.run(cached: "INSERT INTO idempotency_keys (userId, idempotencyKey, orderId, requestFingerprint) VALUES (?, ?, ?, ?)",
                               [principal.userId, key, orderId, valid.fingerprint])
                }
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY && idempotencyKey != nil {
            // The same key, at the same moment, from another request: that one won.
            guard let earlier = try await earlierPlacement(userId: principal.userId, key: idempotencyKey!) else { throw error }
            return try await replay(earlier, for: valid)
        }
        relay.wake()
        logger.info("order placed; it is inventory's and payment's move", metadata: ["order_id": .string(orderId)])
        OrderMetrics.placed()
        return .created(try answer(handled))
    }

    /// 202, and the order is cancelled at once (see stage 7).
    func cancel(orderId: String, by principal: Principal, requestId: String) async throws -> API.Order {
        guard let order = try await orders.load(orderId).state, principal.isAdmin || order.userId == principal.userId else {
            throw ShopError.notFound("order \(orderId)")
        }
        return try await command(orderId, .cancel(now: Date()), metadata: EventMetadata(correlationId: orderId, requestId: requestId))
    }

    func ship(orderId: String, requestId: String) async throws -> API.Order {
        try await command(orderId, .ship(now: Date()), metadata: EventMetadata(correlationId: orderId, requestId: requestId))
    }

    // MARK: Events heard from inventory and payment

    /// Records the fact in the order's stream and decides what follows, once
    /// per event id: the inbox's claim is in the append's transaction.
    func hear(_ event: ReceivedEvent, _ message: IncomingMessage, orderId: String, _ fact: Order.Fact) async throws {
        if try await store.db.read({ db in try Inbox.seen(message, in: db) }) { return }
        let metadata = EventMetadata(correlationId: event.correlationId ?? orderId, causationId: event.id)
        let handled: Handled<Order>
        do {
            // Stamped with the order's own clock, not the sender's: an order's
            // events then run forward in time, so `asOf` a time is a prefix of its stream.
            handled = try await orders.handle(orderId, metadata: metadata, .hear(fact, now: Date())) { db, _ in
                guard try Inbox.claim(message, in: db) else { throw AlreadyHeard() }
                // The stream itself remembers what it heard, for ever: a fact
                // redelivered after the inbox forgot it (INBOX_RETENTION_HOURS,
                // a dead letter replayed) is not recorded twice.
                let recorded = try Int.fetchOne(db, cached: "SELECT count(*) FROM events WHERE stream = ? AND causationId = ? AND type = ?",
                                                [orderId, event.id, event.name]) ?? 0
                guard recorded == 1 else { throw AlreadyHeard() }
            }
        } catch is AlreadyHeard {
            return
        } catch let error as ShopError where error.code == .notFound {
            throw MessageFailure.poison("order \(orderId) does not exist")
        }
        relay.wake()
        Self.countDecision(handled)
        if handled.previous?.status == .pending, let order = handled.state, order.status != .pending {
            var metadata: Logger.Metadata = ["order_id": .string(order.id), "status": .string(order.status.rawValue), "event_id": .string(event.id)]
            if let reason = order.cancelReason { metadata["reason"] = .string(reason.rawValue) }
            logger.info("order decided", metadata: metadata)
        }
    }

    private struct AlreadyHeard: Error {}

    // MARK: Jobs

    /// The `invoices` job: the invoice of a confirmed order, from its state
    /// folded now. Writing it twice is harmless: an order has one invoice row.
    func invoice(orderId: String) async throws {
        guard let order = try await orders.load(orderId).state else { throw JobFailure("order \(orderId) does not exist") }
        let recipient = Recipient(userId: order.customer.userId, email: order.customer.email, name: order.customer.name)
        try await store.write { [invoices] db in try invoices.generate(for: order.api, customer: recipient, in: db) }
    }

    /// The `orders` job, `ORDER_DEADLINE_SECONDS` after placement.
    func deadlinePassed(orderId: String) async throws -> String {
        let handled = try await orders.handle(orderId, metadata: EventMetadata(correlationId: orderId, requestId: "order:deadline:\(orderId)"), .deadline(now: Date()))
        guard !handled.events.isEmpty else { return "already decided" }
        relay.wake()
        Self.countDecision(handled)
        logger.notice("order still pending at its deadline; cancelling it", metadata: ["order_id": .string(orderId)])
        return "cancelled at the deadline"
    }

    // MARK: Plumbing

    private func command(_ orderId: String, _ command: Order.Command, metadata: EventMetadata) async throws -> API.Order {
        let handled = try await Self.retryable(orderId) { try await orders.handle(orderId, metadata: metadata, command) }
        if !handled.events.isEmpty { relay.wake() }
        Self.countDecision(handled)
        return try answer(handled)
    }

    /// A command that took the order out of `pending` (a cancellation, the
    /// deadline, a heard fact) decided it: counted once, after its append.
    private static func countDecision(_ handled: Handled<Order>) {
        if handled.previous?.status == .pending, let order = handled.state, order.status != .pending {
            OrderMetrics.decided(order.status, reason: order.cancelReason)
        }
    }

    /// Five conflicts in a row (five other writers got there first, one
    /// after the other) is a busy order, not a broken request: 503, retry.
    static func retryable<T>(_ orderId: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch is ConcurrencyConflict {
            throw ShopError.unavailable("order \(orderId), which other requests kept changing (5 attempts)")
        }
    }

    private func answer(_ handled: Handled<Order>) throws -> API.Order {
        guard let order = handled.state else { throw ShopError.notFound("order") }
        // The position the answer reflects: the gateway passes it on with
        // the same client's next read, and the query side waits until its
        // views have reached it (read your own writes; see QueryService).
        if let position = handled.lastPosition { WritePosition.record(position) }
        return order.api
    }

    private struct Earlier: Sendable { var orderId: String; var fingerprint: String }

    private func earlierPlacement(userId: String, key: String) async throws -> Earlier? {
        try await store.db.read { db in
            try Row.fetchOne(db, sql: "SELECT orderId, requestFingerprint FROM idempotency_keys WHERE userId = ? AND idempotencyKey = ?", arguments: [userId, key])
                .map { Earlier(orderId: $0["orderId"], fingerprint: $0["requestFingerprint"]) }
        }
    }

    /// Same key, same request: the same order again; another request: 409.
    private func replay(_ earlier: Earlier, for request: ValidOrderRequest) async throws -> OrderQueries.Placement {
        guard earlier.fingerprint == request.fingerprint else {
            throw ShopError(.idempotencyKeyReused, "this Idempotency-Key was already used with a different request; use a new key for a new order")
        }
        guard let order = try await orders.load(earlier.orderId).state else { throw ShopError.notFound("order \(earlier.orderId)") }
        // The retry of a request whose answer was lost gets the position
        // too, so that its next read includes the order.
        if let position = try await store.db.read({ db in
            try Int64.fetchOne(db, sql: "SELECT max(position) FROM events WHERE stream = ?", arguments: [earlier.orderId])
        }) { WritePosition.record(position) }
        return .replayed(order.api)
    }
}
