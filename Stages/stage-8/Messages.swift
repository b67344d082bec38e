import Checkout
import Common
import Events
import Foundation
import Messaging
import ShopServer
import Streams

// The events of stage 8: the same facts as stage 7, on the same topics,
// with one change of source. The order service no longer keeps rows and
// publishes events about them: its events *are* the order (an event store,
// Sources/EventStore). Its store is its outbox: a relay (StoreRelay.swift)
// reads the store in order and puts
// - every event of every order's stream on `<ns>.order-store`, one
//   partition, in the store's global order: the order service's own log,
//   which its query side (QueryService.swift) folds into the views that
//   answer `GET /orders` and `GET /reports/sales`, and can fold again from
//   the start;
// - the events the order service owns (OrderCreated, OrderConfirmed,
//   OrderCancelled, OrderShipped) on `<ns>.orders` as before, for everyone
//   else. An order's stream also records what the order *heard*
//   (InventoryReserved, PaymentCompleted, …) so that its history is whole;
//   those stay on the private log, since their owners publish them already.
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
//   order-store ─────────────────────▶ query: order views (GET /orders…) and sales (GET /reports/sales)
//   orders     ──────────────────────▶ analytics (GET /reports/analytics)
//
// RabbitMQ stays, for what is a task rather than a fact: an event a
// service cannot process *yet* (its database was busy; it came before the
// event it follows, which a log of several topics allows) cannot wait on
// the log, because everything behind it in its partition would wait too.
// The service hands it to its own RabbitMQ queue instead, where stage 4's
// retry ladder tries it again (200 ms, 1 s, 5 s) and the dead letters take
// what never passes. Redis keeps stage 5's jobs.

/// Who publishes, to which topic (`<ns>.<topic>`), as which `source`.
enum Producer: String, CaseIterable {
    case user, order, inventory, payment

    /// A topic per aggregate, named for it.
    var topic: String {
        switch self {
        case .user: "users"
        case .order: "orders"
        case .inventory: "inventory"
        case .payment: "payments"
        }
    }

    var source: String { "/shop/\(rawValue)" }
}

/// The events this stage publishes, by producer: what the catalogue and
/// the schemas must list exactly (Tests/Stage8Tests checks it).
enum EventLog {
    static let published: [(Producer, any DomainEvent.Type)] = [
        (.user, UserRegistered.self),
        (.order, OrderCreated.self), (.order, OrderConfirmed.self), (.order, OrderCancelled.self), (.order, OrderShipped.self),
        (.inventory, InventoryReserved.self), (.inventory, InventoryRejected.self), (.inventory, InventoryReleased.self),
        (.payment, PaymentCompleted.self), (.payment, PaymentFailed.self), (.payment, PaymentRefunded.self),
    ]

    /// The version this stage's code reads each event as (its consumers
    /// name it; the shared catalogue may hold newer ones).
    static let readAs = Dictionary(published.map { ($0.1.name, $0.1.version) }, uniquingKeysWith: { a, _ in a })

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
        // v3's lines say what was sold and at what price (the sales report
        // is built from the stream now). A v2 line did not carry them, and
        // nothing can recover them: they are read as unknown (null).
        catalog.upcast(OrderCreated.name, from: 2) { v2 in
            guard case .object(var fields) = v2, case .array(let items)? = fields["items"] else { return v2 }
            fields["items"] = .array(items.map { item in
                guard case .object(var line) = item else { return item }
                line["sku"] = line["sku"] ?? .null
                line["unitPriceCents"] = line["unitPriceCents"] ?? .null
                return .object(line)
            })
            return .object(fields)
        }
        // v4's lines carry the product's name: an order's view is folded
        // from its events alone now. Older lines did not say it: null.
        catalog.upcast(OrderCreated.name, from: 3) { v3 in
            guard case .object(var fields) = v3, case .array(let items)? = fields["items"] else { return v3 }
            fields["items"] = .array(items.map { item in
                guard case .object(var line) = item else { return item }
                line["name"] = line["name"] ?? .null
                return .object(line)
            })
            return .object(fields)
        }
        return catalog
    }()
}

/// The stage's topics, consumer groups and task queues.
enum StageTopology {
    static let partitions: Int32 = 3

    /// How long the broker may hold a fetch that has nothing to return.
    /// Every idle consumer asks again as soon as one comes back, and a stage
    /// has ten of them. Measured here (ten idle consumers of three
    /// partitions each, Tansu on SeaweedFS): at 10 ms and at 100 ms Tansu
    /// spent 55-67 % of a core answering empty fetches, and under the
    /// characterization suite the services fell seconds behind; at 500 ms
    /// (librdkafka's default) 21 %. The price is latency: Tansu answers a
    /// waiting fetch anywhere within the first half of the wait (infra.md),
    /// so a hop takes about 130 ms at the median and the three hops to an
    /// order's decision about 400 ms.
    static let fetchWait: Duration = .milliseconds(500)

    /// Consumers commit what they have processed once a second, not after
    /// every record: Tansu writes each commit to its storage, and with a
    /// commit per record per group, two stages under test load kept its
    /// group coordinator so busy that heartbeats went unanswered for 6 s and
    /// every group rebalanced. A consumer that dies rereads at most a
    /// second of records, which its inbox (or a read model's stored
    /// positions) makes harmless.
    static let commitEvery: Duration = .seconds(1)

    /// How many records a service's consumer handles at once: one order's
    /// events one after another (they share a key), different orders' side
    /// by side, so that a burst's inbox transactions share commits. As many
    /// as stage 4's RabbitMQ consumers take at once (their prefetch). A
    /// partition's committed offset never passes a record still being
    /// handled, so a crash rereads, never skips (`StreamConsumer`).
    static let sideBySide = 32

    /// A group's name (`inventory`), the events it reads, and whether it
    /// can be replayed: only groups that build a read model can.
    struct Group {
        var name: String
        var events: [(Producer, any DomainEvent.Type)]
        var replayable: Bool
        /// Reads the order service's own log (`<ns>.order-store`) instead of
        /// the producers' topics: the query side's projections.
        var readsOrderStore = false
        var topics: [Producer] { Producer.allCases.filter { producer in events.contains { $0.0 == producer } } }

        func topicNames(namespace: String) -> [String] {
            readsOrderStore ? [orderStoreTopic(namespace: namespace)] : topics.map { topic($0, namespace: namespace) }
        }
    }

    static func on(_ producer: Producer, _ events: any DomainEvent.Type...) -> [(Producer, any DomainEvent.Type)] {
        events.map { (producer, $0) }
    }

    /// Every consumer group, named as `GET /reports/stream` shows it; Kafka's
    /// group id is `<ns>.<name>`.
    static let groups: [Group] = [
        Group(name: "inventory", events: on(.order, OrderCreated.self, OrderConfirmed.self, OrderCancelled.self) + on(.payment, PaymentFailed.self), replayable: false),
        Group(name: "payment", events: on(.order, OrderCreated.self, OrderCancelled.self) + on(.inventory, InventoryReserved.self), replayable: false),
        // The order hears InventoryReserved too now: its stream records
        // every step of its story (GET /orders/{id}/events).
        Group(name: "order", events: on(.inventory, InventoryReserved.self, InventoryRejected.self) + on(.payment, PaymentCompleted.self, PaymentFailed.self, PaymentRefunded.self), replayable: false),
        Group(name: "notification", events: on(.user, UserRegistered.self) + on(.order, OrderCreated.self, OrderConfirmed.self, OrderCancelled.self, OrderShipped.self), replayable: false),
        // Every event, for the flow log.
        Group(name: "flow", events: EventLog.published, replayable: false),
        // Read models: state built only from the stream, rebuilt by a replay.
        // The query side's projections, each a group of its own so that
        // each can be rebuilt alone (POST /admin/projections/rebuild).
        Group(name: "order-views", events: [], replayable: true, readsOrderStore: true),
        Group(name: "sales", events: [], replayable: true, readsOrderStore: true),
        Group(name: "analytics", events: on(.order, OrderCreated.self, OrderConfirmed.self, OrderCancelled.self), replayable: true),
    ]

    static func group(_ name: String) -> Group? { groups.first { $0.name == name } }

    static func topic(_ producer: Producer, namespace: String) -> String { "\(namespace).\(producer.topic)" }
    static func deadLetterTopic(namespace: String) -> String { "\(namespace).dead-letters" }
    /// The order service's event store, as a log: one partition, so that
    /// the topic's order is the store's global order and a projection's
    /// position is one number, the store's position.
    static func orderStoreTopic(namespace: String) -> String { "\(namespace).order-store" }
    static let orderStorePartitions: Int32 = 1
    static func allTopics(namespace: String) -> [String] {
        Producer.allCases.map { topic($0, namespace: namespace) } + [deadLetterTopic(namespace: namespace), orderStoreTopic(namespace: namespace)]
    }

    /// The groups as the lag report sees them: the event consumers, and the
    /// desk's reader of the dead-letter topic.
    static func streamGroups(namespace: String) -> [StreamGroup] {
        groups.map { StreamGroup(name: $0.name, groupId: "\(namespace).\($0.name)", topics: $0.topicNames(namespace: namespace), replayable: $0.replayable) }
            + [StreamGroup(name: "deadletter", groupId: "\(namespace).deadletter", topics: [deadLetterTopic(namespace: namespace)], replayable: false)]
    }

    /// RabbitMQ's part: a task queue per service that reacts to events,
    /// bound to nothing (a consumer puts an event there itself when it
    /// cannot process it yet). 200 ms, 1 s, 5 s; `RETRY_DELAYS_MS` changes
    /// the steps.
    static func make(namespace: String, settings: Settings) -> MessageTopology {
        MessageTopology(
            namespace: namespace, queues: ["inventory", "payment", "order", "notification", "flow"].map { MessageTopology.Queue($0, bindings: []) },
            retryDelays: MessageTopology.retryDelays(
                parsing: settings.retryDelaysMilliseconds,
                default: [.milliseconds(200), .seconds(1), .seconds(5)]))
    }
}

// MARK: The events' data (their schemas: docs/events/<Name>/v<N>.json)

/// Who placed an order. `OrderCreated` carries it; the notification
/// service keeps its own copy, so that later events about the order need
/// only its id and nobody has to be asked.
struct Customer: Codable, Sendable, Equatable {
    var userId: String
    var email: String
    var name: String
}

struct Line: Codable, Sendable, Equatable, StockLine {
    var productId: String
    var quantity: Int
}

struct Money: Codable, Sendable, Equatable {
    var amountCents: Int
    var currency: String
}

struct UserRegistered: DomainEvent, Equatable {
    static let name = "UserRegistered"
    static let version = 1
    var userId: String
    var email: String
    var name: String
    var subject: String { userId }
}

/// A line as `OrderCreated` v4 carries it: what was sold, named and at
/// what price, copied at placement. `name` is null only in an event upcast
/// from v1 to v3, `sku` and `unitPriceCents` only from v1 or v2.
struct OrderLine: Codable, Sendable, Equatable, StockLine {
    var productId: String
    var sku: String?
    var name: String?
    var quantity: Int
    var unitPriceCents: Int?

    var line: Line { Line(productId: productId, quantity: quantity) }
}

/// Version 4: each line says its name too (v3's its sku and unit price;
/// v2's lines had only the product and the quantity; v1 had `totalCents`;
/// see the upcasters above).
struct OrderCreated: DomainEvent, Equatable {
    static let name = "OrderCreated"
    static let version = 4
    var orderId: String
    var customer: Customer
    var items: [OrderLine]
    var total: Money
    /// The card travels to the payment service inside the event. A real
    /// shop would send a token from its payment provider instead.
    var card: String
    var subject: String { orderId }
}

struct OrderConfirmed: DomainEvent, Equatable {
    static let name = "OrderConfirmed"
    static let version = 1
    var orderId: String
    var subject: String { orderId }
}

/// `wasConfirmed`: the units were sold and the card charged, so inventory
/// takes the units back and payment refunds.
struct OrderCancelled: DomainEvent, Equatable {
    static let name = "OrderCancelled"
    static let version = 1
    var orderId: String
    var reason: CancelReason
    var wasConfirmed: Bool
    var subject: String { orderId }
}

struct OrderShipped: DomainEvent, Equatable {
    static let name = "OrderShipped"
    static let version = 1
    var orderId: String
    var subject: String { orderId }
}

struct InventoryReserved: DomainEvent, Equatable {
    static let name = "InventoryReserved"
    static let version = 1
    var orderId: String
    var items: [Line]
    var subject: String { orderId }
}

struct InventoryRejected: DomainEvent, Equatable {
    static let name = "InventoryRejected"
    static let version = 1
    var orderId: String
    /// The lines that asked for more than there was.
    var shortProductIds: [String]
    var subject: String { orderId }
}

/// Units given back: a reservation released, or units sold to an order
/// that was cancelled after it was confirmed.
struct InventoryReleased: DomainEvent, Equatable {
    static let name = "InventoryReleased"
    static let version = 1
    var orderId: String
    var items: [Line]
    var subject: String { orderId }
}

struct PaymentCompleted: DomainEvent, Equatable {
    static let name = "PaymentCompleted"
    static let version = 1
    var orderId: String
    var amountCents: Int
    var attempts: Int
    var subject: String { orderId }
}

struct PaymentFailed: DomainEvent, Equatable {
    static let name = "PaymentFailed"
    static let version = 1
    var orderId: String
    var reason: DeclineReason
    var attempts: Int
    var subject: String { orderId }
}

struct PaymentRefunded: DomainEvent, Equatable {
    static let name = "PaymentRefunded"
    static let version = 1
    var orderId: String
    var amountCents: Int
    var subject: String { orderId }
}
