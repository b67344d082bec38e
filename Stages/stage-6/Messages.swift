import Checkout
import Common
import Events
import Foundation
import Messaging
import ShopServer

// The events of stage 6. Stage 5's messages were addressed: `order.created`
// went to one exchange, and the order service asked for what it needed
// (`payment.refund`, `stock.release`). Here every service publishes facts
// about itself, past tense, to an exchange of its own, and knows nothing of
// who listens. Each subscriber binds its own queue to the facts it cares
// about, and undoes its own step when a fact says so. Nobody orchestrates.
//
//   order      ──OrderCreated──────────▶ inventory: reserve          payment: keep the card
//   inventory  ──InventoryReserved─────▶ payment: charge
//   inventory  ──InventoryRejected─────▶ order: cancel (out_of_stock)
//   payment    ──PaymentCompleted──────▶ order: confirm
//   payment    ──PaymentFailed─────────▶ order: cancel (payment_declined)   inventory: release
//   order      ──OrderConfirmed────────▶ inventory: sell the units    notification
//   order      ──OrderCancelled────────▶ inventory: release, or take back what was sold
//                                        payment: forget the card, or refund a capture
//                                        notification
//   payment    ──PaymentRefunded───────▶ order: show the refund
//   order      ──OrderShipped──────────▶ notification
//   user       ──UserRegistered────────▶ notification
//   every event ──────────────────────▶ the operations desk's flow log (GET /admin/orders/{id}/flow)
//
// On the wire each is a CloudEvent (Sources/Events): the envelope names the
// producer (`source`), the event (`type`: `shop.OrderCreated`), its schema
// and version (`dataschema`), the order it is about (`subject`), the order's
// story (`correlationid`) and the event it reacts to (`causationid`). The
// schemas are in docs/events, the catalogue in docs/asyncapi/stage-6.yaml.

/// Who publishes, to which exchange (`<ns>.events.<service>`), as which `source`.
enum Producer: String, CaseIterable {
    case user, order, inventory, payment

    var exchange: String { "events.\(rawValue)" }
    var source: String { "/shop/\(rawValue)" }
}

/// The events this stage publishes, by producer: what the catalogue and
/// the schemas must list exactly (Tests/Stage6Tests checks it).
enum EventLog {
    static let published: [(Producer, any DomainEvent.Type)] = [
        (.user, UserRegistered.self),
        (.order, OrderCreated.self), (.order, OrderConfirmed.self), (.order, OrderCancelled.self), (.order, OrderShipped.self),
        (.inventory, InventoryReserved.self), (.inventory, InventoryRejected.self), (.inventory, InventoryReleased.self),
        (.payment, PaymentCompleted.self), (.payment, PaymentFailed.self), (.payment, PaymentRefunded.self),
    ]

    /// The schemas, their versions, and how an older version is read as
    /// today's (upcasting): a consumer accepts every version the catalogue has.
    static let catalog: EventCatalog = {
        var catalog = try! EventCatalog(schemaRoot: EventCatalog.bundledSchemas)
        // OrderCreated v1 had `totalCents`; v2 says which currency the
        // amount is in. Every v1 order was in dollars: the shop had no other.
        catalog.upcast(OrderCreated.name, from: 1) { v1 in
            guard case .object(var fields) = v1, case .number(let cents)? = fields.removeValue(forKey: "totalCents") else { return v1 }
            fields["total"] = .object(["amountCents": .number(cents), "currency": .string("USD")])
            return .object(fields)
        }
        return catalog
    }()
}

/// Each service's queue and what it subscribes to, on whose exchange. The
/// producers appear here only as the exchanges a subscriber binds to.
enum StageTopology {
    static func on(_ producer: Producer, _ events: any DomainEvent.Type...) -> [MessageTopology.Binding] {
        events.map { .init(exchange: producer.exchange, key: EventLog.catalog.type(of: $0.name)) }
    }

    static let queues: [MessageTopology.Queue] = [
        .init("inventory", subscriptions:
            on(.order, OrderCreated.self, OrderConfirmed.self, OrderCancelled.self) + on(.payment, PaymentFailed.self)),
        .init("payment", subscriptions:
            on(.order, OrderCreated.self, OrderCancelled.self) + on(.inventory, InventoryReserved.self)),
        .init("order", subscriptions:
            on(.inventory, InventoryRejected.self) + on(.payment, PaymentCompleted.self, PaymentFailed.self, PaymentRefunded.self)),
        .init("notification", subscriptions:
            on(.user, UserRegistered.self) + on(.order, OrderCreated.self, OrderConfirmed.self, OrderCancelled.self, OrderShipped.self)),
        // Everything, for the flow log: `#` matches every routing key.
        .init("flow", subscriptions: Producer.allCases.map { .init(exchange: $0.exchange, key: "#") }),
    ]

    /// 200 ms, 1 s, 5 s, for what fails on its way through a queue (a
    /// service's database busy, an event that came before the one it
    /// follows). `RETRY_DELAYS_MS` changes the steps.
    static func make(namespace: String, settings: Settings) -> MessageTopology {
        MessageTopology(
            namespace: namespace, queues: queues,
            retryDelays: MessageTopology.retryDelays(
                parsing: settings.retryDelaysMilliseconds,
                default: [.milliseconds(200), .seconds(1), .seconds(5)]),
            exchanges: Producer.allCases.map(\.exchange))
    }
}

// MARK: The events' data (their schemas: docs/events/<Name>/v<N>.json)

/// Who placed an order. `OrderCreated` carries it; the notification
/// service keeps its own copy, so that later events about the order need
/// only its id and nobody has to be asked.
struct Customer: Codable, Sendable {
    var userId: String
    var email: String
    var name: String
}

struct Line: Codable, Sendable, StockLine {
    var productId: String
    var quantity: Int
}

struct Money: Codable, Sendable {
    var amountCents: Int
    var currency: String
}

struct UserRegistered: DomainEvent {
    static let name = "UserRegistered"
    static let version = 1
    var userId: String
    var email: String
    var name: String
    var subject: String { userId }
}

/// Version 2: the total says its currency (v1 had `totalCents`; see the upcaster above).
struct OrderCreated: DomainEvent {
    static let name = "OrderCreated"
    static let version = 2
    var orderId: String
    var customer: Customer
    var items: [Line]
    var total: Money
    /// The card travels to the payment service inside the event. A real
    /// shop would send a token from its payment provider instead.
    var card: String
    var subject: String { orderId }
}

struct OrderConfirmed: DomainEvent {
    static let name = "OrderConfirmed"
    static let version = 1
    var orderId: String
    var subject: String { orderId }
}

/// `wasConfirmed`: the units were sold and the card charged, so inventory
/// takes the units back and payment refunds.
struct OrderCancelled: DomainEvent {
    static let name = "OrderCancelled"
    static let version = 1
    var orderId: String
    var reason: CancelReason
    var wasConfirmed: Bool
    var subject: String { orderId }
}

struct OrderShipped: DomainEvent {
    static let name = "OrderShipped"
    static let version = 1
    var orderId: String
    var subject: String { orderId }
}

struct InventoryReserved: DomainEvent {
    static let name = "InventoryReserved"
    static let version = 1
    var orderId: String
    var items: [Line]
    var subject: String { orderId }
}

struct InventoryRejected: DomainEvent {
    static let name = "InventoryRejected"
    static let version = 1
    var orderId: String
    /// The lines that asked for more than there was.
    var shortProductIds: [String]
    var subject: String { orderId }
}

/// Units given back: a reservation released, or units sold to an order
/// that was cancelled after it was confirmed.
struct InventoryReleased: DomainEvent {
    static let name = "InventoryReleased"
    static let version = 1
    var orderId: String
    var items: [Line]
    var subject: String { orderId }
}

struct PaymentCompleted: DomainEvent {
    static let name = "PaymentCompleted"
    static let version = 1
    var orderId: String
    var amountCents: Int
    var attempts: Int
    var subject: String { orderId }
}

struct PaymentFailed: DomainEvent {
    static let name = "PaymentFailed"
    static let version = 1
    var orderId: String
    var reason: DeclineReason
    var attempts: Int
    var subject: String { orderId }
}

struct PaymentRefunded: DomainEvent {
    static let name = "PaymentRefunded"
    static let version = 1
    var orderId: String
    var amountCents: Int
    var subject: String { orderId }
}
