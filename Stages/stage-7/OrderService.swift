import Auth
import Checkout
import Common
import Discovery
import Events
import Foundation
import Hummingbird
import Jobs
import Logging
import Messaging
import ServiceLifecycle
import ShopClient
import ShopServer
import Storage

/// The order service's process: HTTP for orders and invoices; the
/// consumer of the events it reacts to (inventory's rejection, payment's
/// outcomes); the workers of the `invoices` and `orders` (deadline) job
/// queues. The sales report has moved out: the reporting service builds it
/// from the stream.
enum OrderService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, registry: ServiceRegistry, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        let db = try openServiceDatabase(dataDir.appendingPathComponent("orders.sqlite"), migrations: OrderFlow.migrations)
        let relay = messaging.relay(for: db)
        let catalogue = ProductClient(service: DiscoveredService("product", directory: ServiceDirectory(registry), http: HTTPClient(timeout: .seconds(2))))
        let orders = OrderFlow(db: db, logger: logger, catalogue: catalogue, relay: relay, queries: OrderQueries(db: db), invoices: Invoices(db: db), policy: messaging.policy,
                               events: EventLog.catalog)

        let results = messaging.consumer("order", events: [
            .on(InventoryRejected.self) { try await orders.inventoryRejected($0, $1) },
            .on(PaymentCompleted.self) { try await orders.paymentCompleted($0, $1) },
            .on(PaymentFailed.self) { try await orders.paymentFailed($0, $1) },
            .on(PaymentRefunded.self) { try await orders.paymentRefunded($0, $1) },
        ])
        let invoices = messaging.jobs.worker(WorkQueue.invoices, concurrency: 2, payload: InvoiceJob.self) { job, _ in
            try await orders.invoice(orderId: job.orderId)
            return JobOutcome(outcome: "invoice written")
        }
        let deadlines = messaging.jobs.worker(WorkQueue.orders, concurrency: 2, payload: DeadlineJob.self) { job, _ in
            JobOutcome(outcome: try await orders.deadlinePassed(orderId: job.orderId))
        }

        let router = ShopServerRunner.makeRouter()
        router.addOrderWriteRoutes(orders, auth: auth)
        // A client may wait for the decision in one request (`Prefer: wait=N`).
        router.addOrderReadRoutes(orders.queries, auth: auth, waitForDecisions: true)
        router.addServiceHealth(stage: ThisStage.number, name: "order", db: db, messaging: messaging)
        return (router, [messaging.client, relay, results, invoices, deadlines] + messaging.housekeeping(for: db))
    }
}
