import Hummingbird
import ShopServer

/// Every URL of the contract, and which controller answers it. Read this
/// file first: it is the monolith's table of contents.
enum Routes {
    static func register(on router: Router<ShopRequestContext>, _ c: Controllers) {
        // Accounts
        router.post("/users", use: c.accounts.signUp)
        router.post("/auth/login", use: c.accounts.login)
        router.get("/users/me", use: c.accounts.me)
        router.get("/users/me/summary", use: c.accounts.summary)

        // Catalogue and stock
        router.get("/products", use: c.catalog.list)
        router.post("/products", use: c.catalog.create)
        router.get("/products/:id", use: c.catalog.get)
        router.patch("/products/:id", use: c.catalog.update)
        router.get("/inventory/:productId", use: c.catalog.inventory)
        router.post("/inventory/:productId/restock", use: c.catalog.restock)

        // Orders
        router.post("/orders", use: c.orders.place)
        router.get("/orders", use: c.orders.list)
        router.get("/orders/:id", use: c.orders.get)
        router.post("/orders/:id/cancel", use: c.orders.cancel)
        router.post("/orders/:id/ship", use: c.orders.ship)
        router.get("/orders/:id/invoice", use: c.orders.invoice)

        // Notifications, reports, health
        router.get("/notifications", use: c.notifications.list)
        router.get("/reports/sales", use: c.reports.sales)
        router.get("/health", use: c.reports.health)
    }
}

struct Controllers {
    let accounts: AccountController
    let catalog: CatalogController
    let orders: OrderController
    let notifications: NotificationController
    let reports: ReportController
}
