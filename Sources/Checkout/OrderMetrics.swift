import Common
import Observability

/// The two figures of the business every stage keeps, whatever its shape:
/// `shop_orders_placed_total` (an order stored; an idempotent replay is not
/// a new order) and `shop_orders_decided_total{outcome, reason}` (an order
/// that left `pending`: `confirmed`, or `cancelled` with its reason).
///
/// Each stage calls them where its own code knows the fact, after the
/// commit that made it true, and once: a decision redelivered, settled
/// twice or replayed counts nothing. Their difference over time is the
/// pipeline's backlog: with an asynchronous stage, orders placed but not
/// yet decided.
public enum OrderMetrics {
    public static func placed() {
        Observability.counter("shop_orders_placed_total").increment()
    }

    public static func decided(_ status: OrderStatus, reason: CancelReason?) {
        Observability.counter("shop_orders_decided_total", [
            ("outcome", status.rawValue), ("reason", reason?.rawValue ?? "none"),
        ]).increment()
    }
}
