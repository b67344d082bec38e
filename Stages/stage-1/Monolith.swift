import Auth
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

        let notifications = NotificationService(db: db)
        let catalog = CatalogService(db: db, inventory: InventoryService(db: db))
        // The order side prices orders from the catalogue in the same database.
        let checkout = Checkout(db: db, catalogue: catalog, auth: auth)
        let accounts = AccountService(
            db: db, hasher: settings.hasher, signer: settings.signer, notifications: notifications,
            decoyHash: await settings.hasher.makeDecoy())

        try await accounts.ensureAdmin(email: settings.adminEmail, password: settings.adminPassword, logger: logger)
        try await checkout.start(logger: logger)

        let router = ShopServerRunner.makeRouter()
        Routes.register(on: router, Controllers(
            accounts: AccountController(accounts: accounts, orders: checkout.orders, notifications: checkout.notifications, auth: auth),
            catalog: CatalogController(catalog: catalog, auth: auth),
            health: HealthController(db: db)), checkout: checkout)
        return router
    }
}
