import Common
import EventStore
import Foundation
import Testing

@testable import Stage8

/// The order's rules as plain functions: no database, no broker, no clock.
/// Each test folds a history, asks a command, and reads the events it
/// answers (or the rule it breaks).
@Suite("Stage 8: the order's rules, without a database")
struct OrderAggregateTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    static let created = OrderCreated(
        orderId: "ord_1", customer: Customer(userId: "usr_1", email: "ada@example.com", name: "Ada"),
        items: [OrderLine(productId: "prd_1", sku: "CUP", name: "Cup", quantity: 2, unitPriceCents: 1_250)],
        total: Money(amountCents: 2_500, currency: "USD"), card: "4242424242424242")

    static func history(_ facts: Order.Fact...) -> [Order.Event] {
        [Order.Event(fact: .created(created), time: t0)] + facts.enumerated().map { Order.Event(fact: $1, time: at(Double($0 + 1))) }
    }

    static let captured = Order.Fact.paymentCompleted(PaymentCompleted(orderId: "ord_1", amountCents: 2_500, attempts: 1))
    static let confirmed = Order.Fact.confirmed(OrderConfirmed(orderId: "ord_1"))

    func state(_ events: [Order.Event]) -> OrderState? { Order.fold(events) }

    @Test("placing creates the order, pending, with its lines; placing it again is refused")
    func place() throws {
        let events = try Order.decide(nil, .place(Self.created, now: Self.t0))
        #expect(events == [Order.Event(fact: .created(Self.created), time: Self.t0)])
        let order = try #require(state(events))
        #expect(order.status == .pending && order.paymentStatus == .pending && order.totalCents == 2_500)
        #expect(order.api.items == [API.OrderItem(productId: "prd_1", sku: "CUP", name: "Cup", quantity: 2, unitPriceCents: 1_250)])
        #expect(throws: ShopError.self) { try Order.decide(order, .place(Self.created, now: Self.t0)) }
    }

    @Test("a capture confirms a pending order; heard after a cancel it is only recorded (payment refunds it)")
    func capture() throws {
        let pending = state(Self.history())
        let answer = try Order.decide(pending, .hear(Self.captured, now: Self.at(5)))
        #expect(answer.map(\.fact) == [Self.captured, Self.confirmed])
        let order = try #require(Order.fold(answer, onto: pending))
        #expect(order.status == .confirmed && order.paymentStatus == .captured && order.chargedCents == 2_500 && order.updatedAt == Self.at(5))

        let cancelled = state(Self.history(.cancelled(OrderCancelled(orderId: "ord_1", reason: .customerRequest, wasConfirmed: false))))
        #expect(cancelled?.paymentStatus == .declined)
        let late = try Order.decide(cancelled, .hear(Self.captured, now: Self.at(9)))
        #expect(late.map(\.fact) == [Self.captured])
        #expect(Order.fold(late, onto: cancelled)?.paymentStatus == .captured)
    }

    @Test("out of stock and a declined card cancel a pending order, each with its reason; after a decision they are only recorded")
    func rejections() throws {
        let rejected = Order.Fact.inventoryRejected(InventoryRejected(orderId: "ord_1", shortProductIds: ["prd_1"]))
        let declined = Order.Fact.paymentFailed(PaymentFailed(orderId: "ord_1", reason: .cardDeclined, attempts: 1))
        let outOfStock = try Order.decide(state(Self.history()), .hear(rejected, now: Self.at(3)))
        #expect(outOfStock.map(\.fact) == [rejected, .cancelled(OrderCancelled(orderId: "ord_1", reason: .outOfStock, wasConfirmed: false))])
        let noPayment = try Order.decide(state(Self.history()), .hear(declined, now: Self.at(3)))
        #expect(noPayment.map(\.fact) == [declined, .cancelled(OrderCancelled(orderId: "ord_1", reason: .paymentDeclined, wasConfirmed: false))])
        #expect(try Order.decide(state(Self.history(Self.captured, Self.confirmed)), .hear(rejected, now: Self.at(3))).map(\.fact) == [rejected])
    }

    @Test("a confirmed order can be shipped or cancelled (refunded), never both; a shipped one cannot be cancelled")
    func shipAndCancel() throws {
        let confirmed = state(Self.history(Self.captured, Self.confirmed))
        #expect(try Order.decide(confirmed, .cancel(now: Self.at(9))).map(\.fact) == [.cancelled(OrderCancelled(orderId: "ord_1", reason: .customerRequest, wasConfirmed: true))])
        let shipped = Order.fold(try Order.decide(confirmed, .ship(now: Self.at(9))), onto: confirmed)
        #expect(shipped?.status == .shipped)
        #expect { try Order.decide(shipped, .cancel(now: Self.at(10))) } throws: { ($0 as? ShopError)?.code == .orderNotCancellable }
        let cancelled = Order.fold(try Order.decide(confirmed, .cancel(now: Self.at(9))), onto: confirmed)
        #expect { try Order.decide(cancelled, .ship(now: Self.at(10))) } throws: { ($0 as? ShopError)?.code == .orderNotShippable }
        #expect { try Order.decide(cancelled, .cancel(now: Self.at(10))) } throws: { ($0 as? ShopError)?.code == .orderNotCancellable }
        #expect { try Order.decide(state(Self.history()), .ship(now: Self.at(1))) } throws: { ($0 as? ShopError)?.code == .orderNotShippable }
    }

    @Test("the deadline cancels only a pending order")
    func deadline() throws {
        #expect(try Order.decide(state(Self.history()), .deadline(now: Self.at(300))).map(\.fact)
                == [.cancelled(OrderCancelled(orderId: "ord_1", reason: .paymentDeclined, wasConfirmed: false))])
        #expect(try Order.decide(state(Self.history(Self.captured, Self.confirmed)), .deadline(now: Self.at(300))).isEmpty)
    }

    @Test("a refund shows on the order; events round-trip through the store's rows")
    func refundAndRows() throws {
        let refunded = Order.Fact.paymentRefunded(PaymentRefunded(orderId: "ord_1", amountCents: 2_500))
        let events = Self.history(Self.captured, Self.confirmed, .cancelled(OrderCancelled(orderId: "ord_1", reason: .customerRequest, wasConfirmed: true)), refunded)
        let order = try #require(state(events))
        #expect(order.status == .cancelled && order.paymentStatus == .refunded && order.chargedCents == 2_500 && order.refundedCents == 2_500)
        let rows = try events.enumerated().map { index, event in
            let row = try Order.encode(event)
            return RecordedEvent(position: Int64(index + 1), stream: "ord_1", version: index + 1, type: row.type, schemaVersion: row.schemaVersion,
                                 data: row.data, metadata: EventMetadata(), time: row.time!)
        }
        #expect(try rows.map(Order.decode) == events)
        #expect(rows.first?.schemaVersion == 4)
    }

    @Test("the sales figures count confirmed and shipped orders, not cancelled ones")
    func salesFigures() throws {
        let confirmed = try #require(state(Self.history(Self.captured, Self.confirmed)))
        let cancelled = try #require(state(Self.history(.cancelled(OrderCancelled(orderId: "ord_1", reason: .customerRequest, wasConfirmed: false)))))
        let report = SalesFigures.report([confirmed, cancelled])
        #expect(report == API.SalesReport(ordersConfirmed: 1, ordersCancelled: 1, revenueCents: 2_500,
                                          byProduct: [API.ProductSales(productId: "prd_1", sku: "CUP", unitsSold: 2, revenueCents: 2_500)]))
    }

    @Test("asOf: a positive number is a sequence, a time is a time, anything else is a 400 naming asOf")
    func moments() throws {
        #expect(try OrderHistory.Moment("3") == .sequence(3))
        #expect(try OrderHistory.Moment("2026-11-30T12:00:00Z") == .time(Date(timeIntervalSince1970: 1_796_040_000)))
        #expect(try OrderHistory.Moment("2026-11-30T13:00:00+01:00") == .time(Date(timeIntervalSince1970: 1_796_040_000)))
        for bad in ["0", "-1", "yesterday", "", "3.5", "2026-13-01T00:00:00Z"] {
            #expect { try OrderHistory.Moment(bad) } throws: { ($0 as? ShopError)?.code == .invalidRequest && "\($0)".contains("asOf") }
        }
        #expect { try OrderHistory.Moment("3", sequences: false) } throws: { ($0 as? ShopError)?.code == .invalidRequest }
    }
}
