import Auth
import Common
import Events
import Foundation
import Hummingbird
import Jobs
import Logging
import Messaging
import ServiceLifecycle
import ShopServer

/// The operations desk as a process of its own: the dead-letter office
/// files what lands in `<ns>.dead-letters` and answers the administrator's
/// two routes; from stage 5 it also shows the job queues in Redis
/// (`/admin/jobs`) and retries a failed job. From stage 6 it also keeps the
/// flow log: its `flow` queue is bound to every producer's exchange, and
/// `GET /admin/orders/{id}/flow` answers one order's events as a causal
/// chain, the view of the choreography that no single service has.
enum DeadLetterService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let db = try DeadLetterOffice.openDatabase(at: dataDir.appendingPathComponent("dead-letters.sqlite"))
        let office = DeadLetterOffice(db: db, client: messaging.client, topology: messaging.topology, logger: logger)
        let flow = FlowLog(db: try FlowLog.open(at: dataDir.appendingPathComponent("flow.sqlite")))
        // Every event, whatever its type: checked against its schema like
        // any consumer's (what does not fit is a dead letter here too).
        let flowConsumer = messaging.consumer("flow", handlers: Dictionary(uniqueKeysWithValues: EventLog.published.map { _, event in
            (EventLog.catalog.type(of: event.name), { message in try await flow.record(try EventLog.catalog.read(message, as: event.version)) } as MessageConsumer.Handler)
        }))

        let router = ShopServerRunner.makeRouter()
        let auth = Authenticator(signer: credentials.signer)
        office.addRoutes(to: router, auth: auth)
        JobOffice(queues: WorkQueue.all.map(messaging.jobs.queue)).addRoutes(to: router, auth: auth)
        router.get("/admin/orders/:id/flow") { request, context in
            _ = try auth.admin(request, context: context)
            let orderId = try context.parameters.id("id")
            let events = try await flow.flow(correlationId: orderId)
            // An order's story starts with its OrderCreated (a user's story,
            // also kept here, is not an order).
            guard events.contains(where: { $0.type == OrderCreated.name }) else { throw ShopError.notFound("order \(orderId)") }
            return Reply.json(API.ItemList(items: events))
        }
        router.addServiceHealth(stage: ThisStage.number, name: "deadletter", db: db, messaging: messaging)
        return (router, [messaging.client, office.consumer, flowConsumer])
    }
}
