import Common
import Auth
import Hummingbird
import Logging
import ShopServer
import Storage

/// The order side of the shop, assembled over one database: orders,
/// stock, payments, notifications, invoices, the sales report. Stages 1 to 3
/// each build one and add its routes; what differs between them is where
/// the catalogue and the accounts live.
public struct Checkout: Sendable {
    public let orders: OrderService
    public let inventory: InventoryService
    public let notifications: NotificationService
    public let reports: ReportService
    let auth: Authenticator

    public init(db: DatabasePool, catalogue: any Catalogue, auth: Authenticator) {
        let inventory = InventoryService(db: db)
        let notifications = NotificationService(db: db)
        self.inventory = inventory
        self.notifications = notifications
        self.reports = ReportService(db: db)
        self.orders = OrderService(
            db: db, writer: GroupCommit(db, grouped: Environment.string("GROUP_COMMIT") != "off"), catalogue: catalogue, inventory: inventory, payments: PaymentService(retry: Self.paymentRetry),
            notifications: notifications, invoices: InvoiceService(db: db), queries: OrderQueries(db: db))
        self.auth = auth
    }

    /// The in-line retry ladder for transient card errors. Its first step is
    /// `PAYMENT_RETRY_BASE_MS` (default 10 ms, doubling): a slower provider
    /// wants longer steps, and a crash test wants orders to stay a while
    /// between their two transactions.
    static var paymentRetry: RetryPolicy {
        var policy = RetryPolicy.inline
        if let base = Environment.int("PAYMENT_RETRY_BASE_MS"), base >= 0 { policy.baseDelayMilliseconds = base }
        return policy
    }

    /// Orders a crash left half-done are finished before new ones arrive.
    public func start(logger: Logger) async throws {
        try await orders.resumePendingCharges(logger: logger)
    }

    /// Orders, stock, notifications and the sales report.
    public func addRoutes(to router: Router<ShopRequestContext>) {
        router.addOrderWriteRoutes(self.orders, auth: auth)
        router.addOrderReadRoutes(self.orders.queries, auth: auth)

        router.addInventoryRoutes(inventory, auth: auth)
        router.addNotificationRoutes(self.notifications, auth: auth)
        router.addReportRoutes(reports, auth: auth)
    }
}
