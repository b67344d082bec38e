import Auth
import Common
import Foundation
import GRDB
import ShopServer
import Storage

/// Reading orders, and the Idempotency-Key rule: the same at every stage
/// that keeps orders as rows (1 to 7), whoever decides them.
public struct OrderQueries: Sendable {
    let db: any DatabaseWriter
    let invoices: Invoices
    /// Who is waiting for which order's decision (`Prefer: wait`). The
    /// stage that decides orders later than the request (4 on) posts each
    /// decision here once it is committed.
    public let decisions = WaitList()

    public init(db: any DatabaseWriter) {
        self.db = db
        self.invoices = Invoices(db: db)
    }

    /// What `POST /orders` answered: a new order (201) or the one an earlier
    /// request with the same Idempotency-Key created (200).
    public enum Placement: Sendable { case created(API.Order), replayed(API.Order) }

    public func order(id: String, for principal: Principal) async throws -> API.Order {
        try await db.read { db in
            // Someone else's order answers exactly like a missing one.
            guard let order = try OrderRecord.find(id, in: db), Self.visible(order, to: principal) else {
                throw ShopError.notFound("order \(id)")
            }
            return order.api(items: try OrderItemRecord.lines(of: id, in: db))
        }
    }

    /// The order once it is decided, or as it is after `wait`, whichever
    /// comes first (`GET /orders/{id}` with `Prefer: wait=N`).
    public func order(id: String, for principal: Principal, waitingUpTo wait: Duration) async throws -> API.Order {
        try await decisions.read(id, waitingUpTo: wait, until: { $0.status != .pending }) {
            try await order(id: id, for: principal)
        }
    }

    /// Newest first, a page at a time (`startingAfter` is the last id seen).
    public func list(userId: String?, limit: Int, startingAfter: String?) async throws -> API.OrderList {
        try await db.read { db in
            var request = OrderRecord.all()
            if let userId { request = request.filter(Column("userId") == userId) }
            if let cursorId = startingAfter {
                guard let cursor = try Row.fetchOne(db, sql: "SELECT createdAt, rowid FROM orders WHERE id = ?", arguments: [cursorId]) else {
                    throw ShopError.invalid("startingAfter", "is not an order id from a previous page")
                }
                request = request.filter(sql: "(createdAt, rowid) < (?, ?)", arguments: [cursor[0], cursor[1]])
            }
            let page = try request.order(Column("createdAt").desc, Column("rowid").desc).limit(limit + 1).fetchAll(db)
            let orders = Array(page.prefix(limit))
            return API.OrderList(items: try Self.withItems(orders, in: db), hasMore: page.count > limit)
        }
    }

    public func invoice(orderId: String, for principal: Principal) async throws -> String {
        let order = try await self.order(id: orderId, for: principal)
        guard let html = try await invoices.html(orderId: order.id) else {
            throw ShopError(.invoiceNotReady, "order \(orderId) has no invoice: invoices exist once an order is confirmed")
        }
        return html
    }

    public func load(_ orderId: String) async throws -> API.Order {
        try await db.read { db in
            guard let order = try OrderRecord.find(orderId, in: db) else { throw ShopError.notFound("order \(orderId)") }
            return order.api(items: try OrderItemRecord.lines(of: orderId, in: db))
        }
    }

    public static func visible(_ order: OrderRecord, to principal: Principal) -> Bool {
        principal.isAdmin || order.userId == principal.userId
    }

    public func order(userId: String, idempotencyKey: String) async throws -> OrderRecord? {
        try await db.read { db in
            try OrderRecord.filter(Column("userId") == userId && Column("idempotencyKey") == idempotencyKey).fetchOne(db)
        }
    }

    /// Same key, same request: the same order again. Same key, another
    /// request: the client has a bug, and guessing would hide it.
    public func replay(_ earlier: OrderRecord, for request: ValidOrderRequest, as order: API.Order) throws(ShopError) -> Placement {
        guard earlier.requestFingerprint == request.fingerprint else {
            throw ShopError(.idempotencyKeyReused, "this Idempotency-Key was already used with a different request; use a new key for a new order")
        }
        return .replayed(order)
    }

    static func withItems(_ orders: [OrderRecord], in db: Database) throws -> [API.Order] {
        guard !orders.isEmpty else { return [] }
        let lines = try OrderItemRecord.filter(orders.map(\.id).contains(Column("orderId"))).order(Column("line")).fetchAll(db)
        let byOrder = Dictionary(grouping: lines, by: \.orderId)
        return orders.map { $0.api(items: byOrder[$0.id] ?? []) }
    }
}
