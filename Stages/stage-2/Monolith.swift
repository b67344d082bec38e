import Auth
import Checkout
import Common
import Foundation
import Hummingbird
import Logging
import ShopClient
import ShopServer
import Storage

/// Composition of what is left of the monolith: the order side over its
/// own database, and clients of the two services that took accounts and the
/// catalogue away. The entry point answers exactly as in stage 1.
enum Monolith {
    static func build(settings: Settings, dataDir: URL, userURL: String, productURL: String, logger: Logger) async throws -> Router<ShopRequestContext> {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let db = try ShopDatabase.open(at: dataDir.appendingPathComponent("shop.sqlite"))
        let auth = Authenticator(signer: credentials.signer)

        // Every call to a service has a deadline; one that is down answers 503.
        let http = HTTPClient(timeout: .seconds(2))
        let userService = ServiceClient(name: "the user service", baseURL: userURL, http: http)
        let productService = ServiceClient(name: "the product service", baseURL: productURL, http: http)
        let users = UserClient(service: userService)
        let products = ProductClient(service: productService)
        // The order side now prices orders by asking the product service.
        let checkout = OrderSide(db: db, catalogue: products, auth: auth, settings: settings)
        try await checkout.start(logger: logger)

        let router = ShopServerRunner.makeRouter(apiReferenceOfStage: ThisStage.number)
        Routes.register(on: router, Controllers(
            accounts: AccountController(users: users, checkout: checkout, auth: auth),
            catalog: CatalogController(products: products, inventory: checkout.inventory, auth: auth),
            health: HealthController(db: db, users: userService, products: productService)), checkout: checkout)
        return router
    }
}
