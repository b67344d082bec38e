import Auth
import Checkout
import Common
import Discovery
import Foundation
import Hummingbird
import Logging
import ShopClient
import ShopServer
import Storage

/// What was the monolith is now the order service: orders, stock,
/// payments, notifications and reports, over its own database, behind the
/// gateway. It no longer answers for accounts or the catalogue; it asks
/// the product service (through discovery) to price an order.
enum OrderService {
    static func build(settings: Settings, dataDir: URL, registry: ServiceRegistry, logger: Logger) async throws -> Router<ShopRequestContext> {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        // The order side's tables only: users and products live in the user and
        // product services' databases, which this process never opens.
        let db = try CheckoutSchema.openDatabase(at: dataDir.appendingPathComponent("shop.sqlite"))
        let auth = Authenticator(signer: credentials.signer)
        let products = ProductClient(service: DiscoveredService("product", directory: ServiceDirectory(registry), http: HTTPClient(timeout: .seconds(2))))
        let checkout = OrderSide(db: db, catalogue: products, auth: auth, settings: settings)
        try await checkout.start(logger: logger)

        let router = ShopServerRunner.makeRouter()
        checkout.addRoutes(to: router)
        // The two writes that follow another service's: the gateway calls these
        // after the user service created an account, or the product service a
        // product. Administrators only (the gateway signs its own token).
        router.post("/internal/welcome") { request, context in
            _ = try auth.admin(request, context: context)
            var request = request
            try await checkout.notifications.recordWelcome(request.decodeJSON(InternalCalls.Welcome.self).user)
            return Reply.json([String: String]())
        }
        router.post("/internal/stock") { request, context in
            _ = try auth.admin(request, context: context)
            var request = request
            let body = try await request.decodeJSON(InternalCalls.InitialStock.self)
            try await checkout.inventory.create(productId: body.productId, initialStock: Validate.initialStock(body.initialStock))
            return Reply.json([String: String]())
        }
        router.get("/health") { _, _ in
            let database = (try? await db.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
            let health = API.Health(stage: ThisStage.number, services: ["order": .up, "database": database ? .up : .down])
            return Reply.json(health, status: health.isHealthy ? .ok : .serviceUnavailable)
        }
        return router
    }
}
