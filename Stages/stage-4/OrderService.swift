import Auth
import Checkout
import Common
import Discovery
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopClient
import ShopServer
import Storage

/// The order service's process: HTTP for orders, invoices and the sales
/// report; consumers of its `order` and `invoice` queues.
enum OrderService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, registry: ServiceRegistry, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        let db = try openServiceDatabase(dataDir.appendingPathComponent("orders.sqlite"), migrations: OrderFlow.migrations)
        let relay = messaging.relay(for: db)
        let catalogue = ProductClient(service: DiscoveredService("product", directory: ServiceDirectory(registry), http: HTTPClient(timeout: .seconds(2))))
        let orders = OrderFlow(db: db, logger: logger, catalogue: catalogue, relay: relay, queries: OrderQueries(db: db), invoices: Invoices(db: db))

        let results = messaging.consumer("order", handlers: [
            Topic.stockReserved: { try await orders.stockAnswered($0, .reserved) },
            Topic.stockRejected: { try await orders.stockAnswered($0, .rejected) },
            Topic.paymentCompleted: { try await orders.paymentAnswered($0, .captured) },
            Topic.paymentFailed: { try await orders.paymentAnswered($0, .declined) },
            Topic.paymentRefunded: { try await orders.refunded($0) },
            Topic.stockReleased: { try await orders.released($0) },
        ])
        let invoices = messaging.consumer("invoice", handlers: [Topic.orderConfirmed: { try await orders.invoice($0) }])

        let router = ShopServerRunner.makeRouter()
        router.addOrderWriteRoutes(orders, auth: auth)
        // A client may wait for the decision in one request (`Prefer: wait=N`).
        router.addOrderReadRoutes(orders.queries, auth: auth, waitForDecisions: true)
        router.addReportRoutes(Reports(db: db), auth: auth)
        router.addServiceHealth(stage: ThisStage.number, name: "order", db: db, messaging: messaging)
        return (router, [messaging.client, relay, results, invoices, messaging.pruner(for: db)])
    }
}
