import Accounts
import Auth
import Catalog
import Checkout
import Common
import Foundation
import Hummingbird
import Logging
import ShopServer
import Storage

/// Composition: one database, every concern over it, one router. Everything
/// a request can touch is built here, in one process.
enum Monolith {
    static func build(dataDir: URL, logger: Logger) async throws -> Router<ShopRequestContext> {
        let settings = try ShopSettings.load(dataDir: dataDir, logger: logger)
        let db = try ShopDatabase.open(at: dataDir.appendingPathComponent("shop.sqlite"))
        let auth = Authenticator(signer: settings.signer)

        let accounts = await AccountStore(db: db, settings: settings)
        let products = ProductStore(db: db)
        // The order side prices orders from the products table of the same database.
        let checkout = Checkout(db: db, catalogue: products, auth: auth)

        try await accounts.ensureAdmin(email: settings.adminEmail, password: settings.adminPassword, logger: logger)
        try await checkout.start(logger: logger)

        let router = ShopServerRunner.makeRouter()
        Routes.register(on: router, Controllers(
            accounts: AccountController(accounts: accounts, checkout: checkout, auth: auth),
            catalog: CatalogController(products: products, inventory: checkout.inventory, auth: auth),
            health: HealthController(db: db)), checkout: checkout)
        return router
    }
}

/// What only a monolith can say: the catalogue is in the orders' database,
/// so an order is priced inside the transaction that stores it. Stage 2
/// moves the catalogue out, and this line is what it loses.
extension ProductStore: SameDatabaseCatalogue {}
