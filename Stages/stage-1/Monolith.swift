import Auth
import Common
import Foundation
import Storage
import Hummingbird
import Logging
import ShopServer

/// Composition: one database, the services over it, the controllers over
/// those. Everything a request can touch is built here, in one process.
enum Monolith {
    static func build(dataDir: URL, logger: Logger) async throws -> Router<ShopRequestContext> {
        let settings = try ShopSettings.load(dataDir: dataDir, logger: logger)
        let db = try ShopDatabase.open(at: dataDir.appendingPathComponent("shop.sqlite"))
        let auth = Authenticator(signer: settings.signer)

        let notifications = NotificationService(db: db)
        let catalog = CatalogService(db: db)
        let accounts = AccountService(
            db: db, hasher: settings.hasher, signer: settings.signer, notifications: notifications,
            decoyHash: await settings.hasher.makeDecoy())
        let orders = OrderService(
            db: db, inventory: InventoryService(), payments: PaymentService(retry: .inline),
            notifications: notifications, invoices: InvoiceService(db: db))

        try await accounts.ensureAdmin(email: settings.adminEmail, password: settings.adminPassword, logger: logger)
        // Orders a crash left half-done are finished before new ones arrive.
        try await orders.resumePendingCharges(logger: logger)

        let router = ShopServerRunner.makeRouter()
        Routes.register(on: router, Controllers(
            accounts: AccountController(accounts: accounts, orders: orders, notifications: notifications, auth: auth),
            catalog: CatalogController(catalog: catalog, auth: auth),
            orders: OrderController(orders: orders, auth: auth),
            notifications: NotificationController(notifications: notifications, auth: auth),
            reports: ReportController(reports: ReportService(db: db), db: db, auth: auth)))
        return router
    }
}
