import Auth
import Catalog
import Checkout
import Common
import GRDB
import Hummingbird
import Logging
import ShopServer
import Storage

/// The order side of the shop, assembled over one database: orders,
/// stock, payments, notifications, invoices, the sales report (the parts
/// are in Sources/Checkout). Stages 1 to 3 each build one and add its
/// routes; what differs between them is where the catalogue and the
/// accounts live. Stage 4 takes it apart into services.
struct OrderSide: Sendable {
    let orders: OrderFlow
    let inventory: Stock
    let notifications: Notifications
    let reports: Reports
    let auth: Authenticator

    init(db: any DatabaseWriter, catalogue: ProductStore, auth: Authenticator, settings: Settings) {
        let inventory = Stock(db: db)
        let notifications = Notifications(db: db)
        self.inventory = inventory
        self.notifications = notifications
        self.reports = Reports(db: db)
        self.orders = OrderFlow(
            db: db, writer: GroupCommit(db, grouped: settings.groupCommit), catalogue: catalogue, inventory: inventory,
            payments: Payments(retry: Self.paymentRetry(settings)),
            notifications: notifications, invoices: Invoices(db: db), queries: OrderQueries(db: db))
        self.auth = auth
    }

    /// The in-line retry ladder for transient card errors. Its first step is
    /// `PAYMENT_RETRY_BASE_MS` (default 10 ms, doubling): a slower provider
    /// wants longer steps, and a crash test wants orders to stay a while
    /// between their two transactions.
    static func paymentRetry(_ settings: Settings) -> RetryPolicy {
        var policy = RetryPolicy.inline
        if let base = settings.paymentRetryBaseMilliseconds { policy.baseDelayMilliseconds = base }
        return policy
    }

    /// Orders a crash left half-done are finished before new ones arrive.
    func start(logger: Logger) async throws {
        try await orders.resumePendingCharges(logger: logger)
    }

    /// Orders, stock, notifications and the sales report.
    func addRoutes(to router: Router<ShopRequestContext>) {
        router.addOrderWriteRoutes(self.orders, auth: auth)
        router.addOrderReadRoutes(self.orders.queries, auth: auth)

        router.addInventoryRoutes(inventory, auth: auth)
        router.addNotificationRoutes(self.notifications, auth: auth)
        router.addReportRoutes(reports, auth: auth)
    }
}
