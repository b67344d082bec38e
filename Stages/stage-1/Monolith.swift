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
    static func build(settings: Settings, dataDir: URL, logger: Logger) async throws -> Router<ShopRequestContext> {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let db = try ShopDatabase.open(at: dataDir.appendingPathComponent("shop.sqlite"))
        let auth = Authenticator(signer: credentials.signer)

        let accounts = await AccountStore(db: db, credentials: credentials)
        let products = ProductStore(db: db)
        // The order side prices orders from the products table of the same
        // database, inside the transaction that stores each order.
        let checkout = OrderSide(db: db, catalogue: products, auth: auth, settings: settings)

        try await accounts.ensureAdmin(email: credentials.adminEmail, password: credentials.adminPassword, logger: logger)
        try await checkout.start(logger: logger)

        let router = ShopServerRunner.makeRouter(apiReferenceOfStage: ThisStage.number)
        Routes.register(on: router, Controllers(
            accounts: AccountController(accounts: accounts, checkout: checkout, auth: auth),
            catalog: CatalogController(products: products, inventory: checkout.inventory, auth: auth),
            health: HealthController(db: db)), checkout: checkout)
        return router
    }
}
