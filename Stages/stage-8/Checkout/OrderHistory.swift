import Auth
import Common
import EventStore
import Events
import Foundation
import Hummingbird
import Messaging
import ShopServer

/// What only the event store can answer, because only it remembers every
/// step: an order's events, the order as it was at a past moment, and the
/// sales report as it stood then. None of it is stored anywhere as such;
/// each is a fold of the log, up to a point, computed when asked.
struct OrderHistory: Sendable {
    let store: EventStore
    let orders: AggregateStore<Order>

    /// Where a past moment is: after the Nth event of the order's stream,
    /// or at a time.
    enum Moment: Equatable {
        case sequence(Int)
        case time(Date)

        /// `asOf`: a positive integer is a sequence, else an ISO-8601 time
        /// (UTC or with an offset); anything else is a 400 naming `asOf`.
        init(_ text: String, sequences: Bool = true) throws(ShopError) {
            if text.allSatisfy({ $0.isASCII && $0.isNumber }), !text.isEmpty {
                // Past the last event answers the order now, however far past.
                guard sequences, let n = Int(text) ?? (text.count > 18 ? Int.max : nil), n >= 1 else {
                    throw ShopError.invalid("asOf", sequences ? "must be a positive sequence number or an ISO-8601 time" : "must be an ISO-8601 time")
                }
                self = .sequence(n)
                return
            }
            if let date = Timestamp.parse(text) ?? Self.iso8601(text), Self.exists(text, date) {
                self = .time(date)
                return
            }
            throw ShopError.invalid("asOf", sequences
                ? "must be a positive sequence number or an ISO-8601 time such as 2026-11-30T12:00:00Z"
                : "must be an ISO-8601 time such as 2026-11-30T12:00:00Z")
        }

        /// A date the calendar has: `2026-02-30` is not one, though a lenient
        /// parser would roll it over to March.
        private static func exists(_ text: String, _ date: Date) -> Bool {
            guard text.hasSuffix("Z") else { return true }  // with an offset: ISO8601DateFormatter checked it
            return Timestamp.format(date).prefix(19) == text.prefix(19)
        }

        private static func iso8601(_ text: String) -> Date? {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let date = formatter.date(from: text) { return date }
            formatter.formatOptions = [.withInternetDateTime]
            return formatter.date(from: text)
        }
    }

    /// `GET /orders/{id}/events`.
    struct EventItem: Codable, Sendable {
        var sequence: Int
        var type: String
        var occurredAt: Date
        var data: JSONValue
    }

    func events(of orderId: String, for principal: Principal) async throws -> API.ItemList<EventItem> {
        let events = try await store.read(stream: orderId)
        guard let first = events.first, try visible(Order.decode(first), to: principal) else { throw ShopError.notFound("order \(orderId)") }
        return API.ItemList(items: try events.map { EventItem(sequence: $0.version, type: $0.type, occurredAt: $0.time, data: Self.redacted(try JSONValue(parsing: $0.data))) })
    }

    /// The store keeps the card number OrderCreated carried (an event store
    /// keeps what it is given: see the README); the API shows its last four
    /// digits, as everywhere else.
    static func redacted(_ data: JSONValue) -> JSONValue {
        guard case .object(var fields) = data, case .string(let card)? = fields["card"] else { return data }
        fields["card"] = .string("…" + card.suffix(4))
        return .object(fields)
    }

    /// `GET /orders/{id}` and `GET /orders/{id}?asOf=`: the order folded up
    /// to the moment (now, when there is none).
    func order(_ orderId: String, asOf moment: Moment?, for principal: Principal) async throws -> API.Order {
        // Visibility is decided by the order as it is, not as it was.
        guard let now = try await orders.load(orderId).state, principal.isAdmin || now.userId == principal.userId else {
            throw ShopError.notFound("order \(orderId)")
        }
        let loaded: Loaded<OrderState?> = switch moment {
        case nil: try await orders.load(orderId)
        case .sequence(let n)?: try await orders.load(orderId, through: n)
        case .time(let t)?: try await orders.load(orderId, until: t)
        }
        guard let then = loaded.state else { throw ShopError(.notFound, "order \(orderId) did not exist yet at that moment") }
        return then.api
    }

    /// `GET /reports/sales?asOf=`: every order folded from the log up to
    /// `time`, then counted by the same rules as the live report
    /// (`SalesFigures`). It reads the whole log up to there: a question for
    /// an administrator now and then, not for every page view.
    func sales(asOf time: Date) async throws -> API.SalesReport {
        // On the database's reader, not on Swift's two cooperative threads:
        // the fold of a long log takes a while, and the service's commands,
        // relay and consumers must not wait for it.
        try await store.db.read { [store] db in
            var states: [String: OrderState] = [:]
            var position: Int64 = 0
            while true {
                let batch = try store.read(after: position, until: time, limit: 2_000, in: db)
                guard let last = batch.last else { break }
                for event in batch {
                    if let state = Order.evolve(states[event.stream], try Order.decode(event)) { states[event.stream] = state }
                }
                position = last.position
            }
            return SalesFigures.report(states.values)
        }
    }

    private func visible(_ first: Order.Event, to principal: Principal) -> Bool {
        guard case .created(let created) = first.fact else { return false }
        return principal.isAdmin || created.customer.userId == principal.userId
    }
}

/// The sales report's rules, for orders held in memory: counted when
/// confirmed or shipped (a cancelled confirmed order was refunded); revenue
/// is their totals; per product, the units and line totals of the counted
/// orders, highest revenue first. The query side's `SalesView` keeps the
/// same figures up to date event by event; a test holds the two equal.
enum SalesFigures {
    static func report(_ orders: some Sequence<OrderState>) -> API.SalesReport {
        var confirmed = 0, cancelled = 0, revenue = 0
        var products: [String: API.ProductSales] = [:]
        for order in orders {
            if order.status == .cancelled { cancelled += 1 }
            guard order.sold else { continue }
            confirmed += 1
            revenue += order.totalCents
            for line in order.items {
                let lineTotal = (line.unitPriceCents ?? 0) * line.quantity
                var product = products[line.productId] ?? API.ProductSales(productId: line.productId, sku: line.sku ?? "", unitsSold: 0, revenueCents: 0)
                product.unitsSold += line.quantity
                product.revenueCents += lineTotal
                product.sku = max(product.sku, line.sku ?? "")
                products[line.productId] = product
            }
        }
        let byProduct = products.values.sorted { ($0.revenueCents, $1.sku) > ($1.revenueCents, $0.sku) }
        return API.SalesReport(ordersConfirmed: confirmed, ordersCancelled: cancelled, revenueCents: revenue, byProduct: byProduct)
    }
}
