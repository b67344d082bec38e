import Checkout
import ShopServer
import Common
import Foundation
import Messaging

// The messages of stage 4, and who listens to which.
//
//                               ┌──────────────▶ payment ── payment.completed / failed / refunded ──┐
//   order ── order.created ─────┤                                                                     │
//     ▲                         └──────────────▶ inventory ── stock.reserved / rejected / released ──┤
//     │                                                                                               │
//     └──────────────────────────────────── order (the order service's own queue) ◀──────────────────┘
//
//   order ── order.created ──▶ notification (keeps who ordered, for the emails to come)
//   order ── order.confirmed ──▶ inventory (reserved units are sold), notification, invoice
//   order ── order.cancelled / order.shipped ──▶ notification
//   order ── payment.refund ──▶ payment          order ── stock.release ──▶ inventory
//   user  ── user.registered ──▶ notification
//
// A message's type is its routing key on the `<ns>.shop` topic exchange.
// Most are facts about what happened (`order.created`); two are requests
// to a particular service (`payment.refund`, `stock.release`), the
// compensations of the order's saga. Stage 6 turns all of them into
// versioned domain events.

enum Topic {
    static let orderCreated = "order.created"
    static let orderConfirmed = "order.confirmed"
    static let orderCancelled = "order.cancelled"
    static let orderShipped = "order.shipped"
    static let paymentCompleted = "payment.completed"
    static let paymentFailed = "payment.failed"
    static let paymentRefund = "payment.refund"
    static let paymentRefunded = "payment.refunded"
    static let stockReserved = "stock.reserved"
    static let stockRejected = "stock.rejected"
    static let stockRelease = "stock.release"
    static let stockReleased = "stock.released"
    static let userRegistered = "user.registered"
}

enum StageTopology {
    /// Each service's work queue and what is bound to it.
    static let queues: [MessageTopology.Queue] = [
        .init("payment", bindings: [Topic.orderCreated, Topic.paymentRefund]),
        .init("inventory", bindings: [Topic.orderCreated, Topic.orderConfirmed, Topic.stockRelease]),
        .init("order", bindings: [
            Topic.paymentCompleted, Topic.paymentFailed, Topic.paymentRefunded,
            Topic.stockReserved, Topic.stockRejected, Topic.stockReleased,
        ]),
        .init("invoice", bindings: [Topic.orderConfirmed]),
        .init("notification", bindings: [
            Topic.userRegistered, Topic.orderCreated, Topic.orderConfirmed, Topic.orderCancelled, Topic.orderShipped,
        ]),
    ]

    /// 200 ms, 1 s, 5 s: the card that fails twice is approved on its third
    /// attempt, 1.2 s after the first. `RETRY_DELAYS_MS` changes the steps.
    static func make(namespace: String, settings: Settings) -> MessageTopology {
        MessageTopology(
            namespace: namespace, queues: queues,
            retryDelays: MessageTopology.retryDelays(
                parsing: settings.retryDelaysMilliseconds,
                default: [.milliseconds(200), .seconds(1), .seconds(5)]))
    }
}

/// Who placed an order. `order.created` carries it; the notification
/// service keeps its own copy, so that later messages about the order need
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

/// Checks a message's fields beyond their types. What fails is poison.
protocol CheckedMessage: Decodable {
    func check() throws(MessageFailure)
}

extension IncomingMessage {
    func decodeChecked<T: CheckedMessage>(_ type: T.Type) throws(MessageFailure) -> T {
        let value = try decode(T.self)
        try value.check()
        return value
    }
}

func require(_ condition: Bool, _ what: String) throws(MessageFailure) {
    if !condition { throw .poison(what) }
}

struct OrderCreated: Codable, Sendable, CheckedMessage {
    var orderId: String
    var customer: Customer
    var items: [Line]
    var totalCents: Int
    /// The card travels to the payment service inside the message. A real
    /// shop would send a token from its payment provider instead.
    var card: String

    func check() throws(MessageFailure) {
        try require(!orderId.isEmpty, "orderId is empty")
        try require(!items.isEmpty && items.allSatisfy { $0.quantity >= 1 && !$0.productId.isEmpty }, "items must be 1 or more lines with a productId and a quantity of at least 1")
        try require(totalCents >= 0, "totalCents is negative")
        try require((try? CardNumber(card)) != nil, "card is not a valid card number")
    }
}

/// `order.confirmed`, `order.cancelled`, `order.shipped`.
struct OrderOutcome: Codable, Sendable, CheckedMessage {
    var orderId: String
    var cancelReason: CancelReason?

    func check() throws(MessageFailure) { try require(!orderId.isEmpty, "orderId is empty") }
}

/// `payment.completed`, `payment.failed`, `payment.refund`, `payment.refunded`.
struct PaymentMessage: Codable, Sendable, CheckedMessage {
    var orderId: String
    var amountCents: Int
    var attempts: Int?
    var declineReason: String?

    func check() throws(MessageFailure) {
        try require(!orderId.isEmpty, "orderId is empty")
        try require(amountCents >= 0, "amountCents is negative")
    }
}

/// `stock.reserved`, `stock.rejected`, `stock.release`, `stock.released`.
struct StockMessage: Codable, Sendable, CheckedMessage {
    var orderId: String

    func check() throws(MessageFailure) { try require(!orderId.isEmpty, "orderId is empty") }
}

struct UserRegistered: Codable, Sendable, CheckedMessage {
    var user: API.User

    func check() throws(MessageFailure) { try require(!user.id.isEmpty, "user.id is empty") }
}

extension OutgoingMessage {
    /// A message about one order: its id correlates the whole flow in logs.
    init(_ type: String, _ payload: some Encodable, order orderId: String) throws {
        try self.init(type: type, json: payload, correlationId: orderId)
    }
}
