import Checkout
import Hummingbird
import ShopServer

/// Every URL of the contract, and what answers it: the same table as in
/// stage 1 (the entry point has not moved), but accounts and the catalogue
/// are now answered by asking the user and product services.
enum Routes {
    static func register(on router: Router<ShopRequestContext>, _ c: Controllers, checkout: OrderSide) {
        // Accounts: answered by the user service (UserClient).
        router.addAccountRoutes(c.accounts)
        // Catalogue: answered by the product service (ProductClient); stock stays here.
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
