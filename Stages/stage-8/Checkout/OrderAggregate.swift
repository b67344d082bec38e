import Common
import EventStore
import Events
import Foundation
import Messaging

/// The order, event-sourced (`scripts/diff-stages 7 8`). Stage 7's order
/// service kept a row per order and changed it; here an order is the list
/// of what happened to it, and what it *is* now is a fold of that list:
///
///     evolve(state, event) → state        (what each event does)
///     decide(state, command) → [event]    (the rules: what a command makes happen)
///
/// Both are pure functions: no database, no clock, no network. The rules
/// are stage 7's, rule for rule (Stages/stage-7/Checkout/OrderFlow.swift);
/// they now read a state folded from events and answer events, and
/// `AggregateStore` (Sources/EventStore) loads, decides and appends with
/// optimistic concurrency. `Tests/Stage8Tests/OrderAggregateTests` tests
/// the rules as plain functions.
///
/// An order's stream holds its own events (OrderCreated, OrderConfirmed,
/// OrderCancelled, OrderShipped) and the facts it heard from inventory and
/// payment (InventoryReserved, PaymentCompleted, …), recorded as they were
/// published, so that its history is whole and its state a fold of its
/// stream alone.
enum Order: Aggregate {
    typealias State = OrderState?

    /// Something that happened to the order, and when.
    struct Event: Sendable, Equatable {
        var fact: Fact
        var time: Date
    }

    enum Fact: Sendable, Equatable {
        case created(OrderCreated)
        case inventoryReserved(InventoryReserved)
        case inventoryRejected(InventoryRejected)
        case paymentCompleted(PaymentCompleted)
        case paymentFailed(PaymentFailed)
        case paymentRefunded(PaymentRefunded)
        case confirmed(OrderConfirmed)
        case cancelled(OrderCancelled)
        case shipped(OrderShipped)
    }

    /// What can be asked of an order. `now` is the command's time: the
    /// events it makes happen carry it, and `decide` reads no clock.
    enum Command: Sendable {
        case place(OrderCreated, now: Date)
        /// A fact another service published about this order.
        case hear(Fact, now: Date)
        /// The customer (or an administrator) asks; only a shipped or
        /// cancelled order refuses.
        case cancel(now: Date)
        /// `ORDER_DEADLINE_SECONDS` after placement: an order still pending
        /// is cancelled; any other is left alone.
        case deadline(now: Date)
        case ship(now: Date)
    }

    static let initial: OrderState? = nil

    /// Raise it whenever `evolve` computes something new: snapshots taken
    /// by an older fold are then ignored, not trusted.
    static let foldVersion = 1

    // MARK: decide: the rules

    static func decide(_ state: OrderState?, _ command: Command) throws -> [Event] {
        if case .place(let created, let now) = command {
            guard state == nil else { throw ShopError(.internalError, "order \(created.orderId) exists already") }
            return [Event(fact: .created(created), time: now)]
        }
        guard let order = state else { throw ShopError.notFound("order") }
        switch command {
        case .place:
            return []  // handled above
        case .hear(let fact, let now):
            let heard = Event(fact: fact, time: now)
            switch fact {
            case .inventoryRejected:
                // Cancelled already: nothing was reserved. Else out of stock wins.
                guard order.status == .pending else { return [heard] }
                return [heard, try cancelling(order, reason: .outOfStock, now: now)]
            case .paymentCompleted:
                // Cancelled meanwhile (the customer, the deadline): the capture
                // is recorded; payment refunds it, having seen OrderCancelled.
                guard order.status == .pending else { return [heard] }
                _ = try order.status.confirming()
                return [heard, Event(fact: .confirmed(OrderConfirmed(orderId: order.id)), time: now)]
            case .paymentFailed:
                guard order.status == .pending else { return [heard] }
                return [heard, try cancelling(order, reason: .paymentDeclined, now: now)]
            case .inventoryReserved, .paymentRefunded:
                return [heard]
            case .created, .confirmed, .cancelled, .shipped:
                preconditionFailure("the order's own events are decided, not heard")
            }
        case .cancel(let now):
            return [try cancelling(order, reason: .customerRequest, now: now)]
        case .deadline(let now):
            guard order.status == .pending else { return [] }
            return [try cancelling(order, reason: .paymentDeclined, now: now)]
        case .ship(let now):
            _ = try order.status.shipping()  // confirmed orders only (409 otherwise)
            return [Event(fact: .shipped(OrderShipped(orderId: order.id)), time: now)]
        }
    }

    private static func cancelling(_ order: OrderState, reason: CancelReason, now: Date) throws -> Event {
        _ = try order.status.cancelling()  // order_not_cancellable once shipped or cancelled
        return Event(fact: .cancelled(OrderCancelled(orderId: order.id, reason: reason, wasConfirmed: order.status == .confirmed)), time: now)
    }

    // MARK: evolve: what each event does to the state

    static func evolve(_ state: OrderState?, _ event: Event) -> OrderState? {
        if case .created(let created) = event.fact { return OrderState(created, at: event.time) }
        guard var order = state else { return state }  // nothing happens to an order that never was
        let before = order
        switch event.fact {
        case .created, .inventoryReserved, .inventoryRejected:
            break
        case .paymentCompleted(let payment):
            // A capture heard after its refund (retried after a conflict)
            // shows the charge, and leaves the refund standing.
            if order.paymentStatus != .refunded { order.paymentStatus = .captured }
            order.chargedCents = payment.amountCents
        case .paymentFailed:
            if order.paymentStatus == .pending { order.paymentStatus = .declined }
        case .paymentRefunded(let refund):
            order.paymentStatus = .refunded
            order.refundedCents = refund.amountCents
        case .confirmed:
            order.status = .confirmed
        case .cancelled(let cancelled):
            order.status = .cancelled
            order.cancelReason = cancelled.reason
            // A payment nobody answered shows as not taken; a capture that
            // comes later shows, and is refunded.
            if order.paymentStatus == .pending { order.paymentStatus = .declined }
        case .shipped:
            order.status = .shipped
        }
        if order.status != before.status || order.paymentStatus != before.paymentStatus
            || order.chargedCents != before.chargedCents || order.refundedCents != before.refundedCents {
            order.updatedAt = event.time
        }
        return order
    }

    // MARK: Between events and the store's rows

    static func encode(_ event: Event) throws -> NewEvent {
        func row<E: DomainEvent>(_ data: E) throws -> NewEvent {
            NewEvent(type: E.name, schemaVersion: E.version, data: Data(try JSONValue(encoding: data).encoded()), time: event.time)
        }
        switch event.fact {
        case .created(let e): return try row(e)
        case .inventoryReserved(let e): return try row(e)
        case .inventoryRejected(let e): return try row(e)
        case .paymentCompleted(let e): return try row(e)
        case .paymentFailed(let e): return try row(e)
        case .paymentRefunded(let e): return try row(e)
        case .confirmed(let e): return try row(e)
        case .cancelled(let e): return try row(e)
        case .shipped(let e): return try row(e)
        }
    }

    /// A stored event as today's version (the store upcast it on the way:
    /// `OrderStore.upcaster`).
    static func decode(_ event: RecordedEvent) throws -> Event {
        func data<E: DomainEvent>(_ type: E.Type) throws -> E {
            guard event.schemaVersion == E.version else {
                throw MessageFailure.poison("stored \(event.type) v\(event.schemaVersion) at \(event.stream)#\(event.version) was not upcast to v\(E.version)")
            }
            return try JSON.decodeRequest(E.self, from: event.data)
        }
        let fact: Fact = switch event.type {
        case OrderCreated.name: .created(try data(OrderCreated.self))
        case InventoryReserved.name: .inventoryReserved(try data(InventoryReserved.self))
        case InventoryRejected.name: .inventoryRejected(try data(InventoryRejected.self))
        case PaymentCompleted.name: .paymentCompleted(try data(PaymentCompleted.self))
        case PaymentFailed.name: .paymentFailed(try data(PaymentFailed.self))
        case PaymentRefunded.name: .paymentRefunded(try data(PaymentRefunded.self))
        case OrderConfirmed.name: .confirmed(try data(OrderConfirmed.self))
        case OrderCancelled.name: .cancelled(try data(OrderCancelled.self))
        case OrderShipped.name: .shipped(try data(OrderShipped.self))
        default: throw MessageFailure.poison("an order's stream holds \(event.type), which the order does not know")
        }
        return Event(fact: fact, time: event.time)
    }

    /// The order's own events, the ones it publishes to `<ns>.orders`; the
    /// rest of its stream was heard from their owners, who publish them.
    static let ownEvents: Set<String> = [OrderCreated.name, OrderConfirmed.name, OrderCancelled.name, OrderShipped.name]
}

/// What an order is after its events: what the contract shows, and what
/// the rules read.
struct OrderState: Codable, Sendable, Equatable {
    var id: String
    var customer: Customer
    var items: [OrderLine]
    var totalCents: Int
    var status: OrderStatus
    var cancelReason: CancelReason?
    var paymentStatus: PaymentStatus
    var chargedCents: Int
    var refundedCents: Int
    var createdAt: Date
    var updatedAt: Date

    init(_ created: OrderCreated, at time: Date) {
        id = created.orderId
        customer = created.customer
        items = created.items
        totalCents = created.total.amountCents
        status = .pending
        cancelReason = nil
        paymentStatus = .pending
        chargedCents = 0
        refundedCents = 0
        createdAt = time
        updatedAt = time
    }

    var userId: String { customer.userId }

    /// The contract's order. A line upcast from an event that did not say
    /// its sku, name or price (none in this stage's own store) shows them
    /// empty rather than inventing them.
    var api: API.Order {
        API.Order(
            id: id, userId: customer.userId, status: status, cancelReason: cancelReason,
            items: items.map { API.OrderItem(productId: $0.productId, sku: $0.sku ?? "", name: $0.name ?? "", quantity: $0.quantity, unitPriceCents: $0.unitPriceCents ?? 0) },
            payment: API.Payment(status: paymentStatus, chargedCents: chargedCents, refundedCents: refundedCents),
            createdAt: createdAt, updatedAt: updatedAt)
    }

    /// Whether the sales report counts it: confirmed or shipped, and not
    /// cancelled since (a cancelled confirmed order was refunded).
    var sold: Bool { status == .confirmed || status == .shipped }
}
