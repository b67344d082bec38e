import Checkout
import Hummingbird
import ShopServer

/// Every URL of the contract, and what answers it. Read this file first: it
/// is the monolith's table of contents.
enum Routes {
    static func register(on router: Router<ShopRequestContext>, _ c: Controllers, checkout: OrderSide) {
        // Accounts: answered from this process's own tables.
        router.addAccountRoutes(c.accounts)
        // Catalogue: answered from this process's own tables.
        router.addCatalogueRoutes(c.catalog)
        // Orders, stock, notifications, the sales report: the order side
        // (Sources/Checkout), in this process until stage 4.
        checkout.addRoutes(to: router)
        router.get("/health", use: c.health.health)
    }
}

struct Controllers {
    let accounts: AccountController
    let catalog: CatalogController
    let health: HealthController
}
