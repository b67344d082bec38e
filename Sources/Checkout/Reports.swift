import Common
import GRDB
import Storage

/// The sales report, straight from the order tables. In the monolith a
/// report is one SQL query; stage 7 has to build it from a stream.
public struct Reports: Sendable {
    let db: any DatabaseWriter

    public init(db: any DatabaseWriter) { self.db = db }

    public func sales() async throws -> API.SalesReport {
        try await db.read { db in
            // Confirmed and shipped orders are sales; refunded ones are
            // cancelled by then, so they drop out by status alone.
            let sold = "('confirmed', 'shipped')"
            let confirmed = try Int.fetchOne(db, sql: "SELECT count(*) FROM orders WHERE status IN \(sold)") ?? 0
            let cancelled = try Int.fetchOne(db, sql: "SELECT count(*) FROM orders WHERE status = 'cancelled'") ?? 0
            let revenue = try Int.fetchOne(db, sql: "SELECT coalesce(sum(totalCents), 0) FROM orders WHERE status IN \(sold)") ?? 0
            let rows = try Row.fetchAll(db, sql: """
                SELECT i.productId, max(i.sku) AS sku, sum(i.quantity) AS units, sum(i.lineTotalCents) AS revenue
                FROM order_items i JOIN orders o ON o.id = i.orderId
                WHERE o.status IN \(sold)
                GROUP BY i.productId
                ORDER BY revenue DESC, sku
                """)
            return API.SalesReport(
                ordersConfirmed: confirmed, ordersCancelled: cancelled, revenueCents: revenue,
                byProduct: rows.map { API.ProductSales(productId: $0["productId"], sku: $0["sku"], unitsSold: $0["units"], revenueCents: $0["revenue"]) })
        }
    }
}
