import Checkout
import Hummingbird
import ShopServer

/// Every URL of the contract, and what answers it. Read this file first: it
/// is the monolith's table of contents.
enum Routes {
    static func register(on router: Router<ShopRequestContext>, _ c: Controllers, checkout: Checkout) {
        // Accounts: stage 2 moves these to the user service.
        router.post("/users", use: c.accounts.signUp)
        router.post("/auth/login", use: c.accounts.login)
        router.get("/users/me", use: c.accounts.me)
        router.get("/users/me/summary", use: c.accounts.summary)

        // Catalogue: stage 2 moves these to the product service.
        router.get("/products", use: c.catalog.list)
        router.post("/products", use: c.catalog.create)
        router.get("/products/:id", use: c.catalog.get)
        router.patch("/products/:id", use: c.catalog.update)

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
