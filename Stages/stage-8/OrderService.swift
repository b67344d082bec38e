import Auth
import Checkout
import Common
import Discovery
import EventStore
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

/// The order service's process, the write side: commands on orders
/// (place, cancel, ship) and the events it reacts to, appended to its event
/// store (`orders.sqlite`); the relay from the store to Kafka and Redis;
/// the invoice and deadline jobs; and what only the store can answer (an
/// order's events, time travel). Orders are read from the query service.
enum OrderService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, registry: ServiceRegistry, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        let db = try SQLiteStore.openPool(at: dataDir.appendingPathComponent("orders.sqlite"), migrations: OrderFlow.migrations + MessagingSchema.migrations)
        let store = EventStore(db, upcaster: OrderStore.upcaster)
        let relay = StoreRelay.make(store: store, messaging: messaging, logger: logger)
        let catalogue = ProductClient(service: DiscoveredService("product", directory: ServiceDirectory(registry), http: HTTPClient(timeout: .seconds(2))))
        let orders = OrderFlow(store: store, snapshotEvery: OrderStore.snapshotEvery(settings), logger: logger, catalogue: catalogue, relay: relay)
        let history = OrderHistory(store: store, orders: orders.orders)

        let heard = messaging.consumer("order", events: [
            .on(InventoryReserved.self) { event, message in
                let fact = try event.decode(InventoryReserved.self)
                try await orders.hear(event, message, orderId: fact.orderId, .inventoryReserved(fact))
            },
            .on(InventoryRejected.self) { event, message in
                let fact = try event.decode(InventoryRejected.self)
                try await orders.hear(event, message, orderId: fact.orderId, .inventoryRejected(fact))
            },
            .on(PaymentCompleted.self) { event, message in
                let fact = try event.decode(PaymentCompleted.self)
                try await orders.hear(event, message, orderId: fact.orderId, .paymentCompleted(fact))
            },
            .on(PaymentFailed.self) { event, message in
                let fact = try event.decode(PaymentFailed.self)
                try await orders.hear(event, message, orderId: fact.orderId, .paymentFailed(fact))
            },
            .on(PaymentRefunded.self) { event, message in
                let fact = try event.decode(PaymentRefunded.self)
                try await orders.hear(event, message, orderId: fact.orderId, .paymentRefunded(fact))
            },
        ])
        let invoices = messaging.jobs.worker(WorkQueue.invoices, concurrency: 2, payload: InvoiceJob.self) { job, _ in
            try await orders.invoice(orderId: job.orderId)
            return JobOutcome(outcome: "invoice written")
        }
        let deadlines = messaging.jobs.worker(WorkQueue.orders, concurrency: 2, payload: DeadlineJob.self) { job, _ in
            JobOutcome(outcome: try await orders.deadlinePassed(orderId: job.orderId))
        }

        let router = ShopServerRunner.makeRouter()
        router.add(middleware: WritePositionMiddleware())
        router.addOrderWriteRoutes(orders, auth: auth)
        router.get("/orders/:id") { request, context in
            let principal = try auth.principal(request, context: context)
            let moment = try request.uri.queryParameters.get("asOf").map { text throws(ShopError) in try OrderHistory.Moment(text) }
            return Reply.json(try await history.order(try context.parameters.id("id"), asOf: moment, for: principal))
        }
        router.get("/orders/:id/events") { request, context in
            let principal = try auth.principal(request, context: context)
            return Reply.json(try await history.events(of: try context.parameters.id("id"), for: principal))
        }
        router.get("/orders/:id/invoice") { request, context in
            let principal = try auth.principal(request, context: context)
            let orderId = try context.parameters.id("id")
            _ = try await history.order(orderId, asOf: nil, for: principal)
            guard let html = try await orders.invoices.html(orderId: orderId) else {
                throw ShopError(.invoiceNotReady, "order \(orderId) has no invoice: invoices exist once an order is confirmed")
            }
            return Reply.html(html)
        }
        router.get("/reports/sales") { request, context in
            _ = try auth.admin(request, context: context)
            let moment = try request.uri.queryParameters.get("asOf").map { text throws(ShopError) in try OrderHistory.Moment(text, sequences: false) }
            guard case .time(let time)? = moment else { throw ShopError.invalid("asOf", "is required here: the live report is the query service's") }
            return Reply.json(try await history.sales(asOf: time))
        }
        // How far the store has got: the query side's lag is measured against it.
        router.get("/internal/store/position") { request, context in
            _ = try auth.admin(request, context: context)
            return Reply.json(OrderStore.Position(position: try await store.lastPosition()))
        }
        router.addServiceHealth(stage: ThisStage.number, name: "order", db: db, messaging: messaging)
        return (router, [messaging.client, relay, heard, invoices, deadlines] + messaging.housekeeping(for: db))
    }
}

/// The order service's event store settings.
enum OrderStore {
    /// Stored events of an older schema version are read as today's, by the
    /// catalogue's own upcasters (the rows stay as they were written).
    static let upcaster: EventStore.Upcaster = { type, version, data in
        guard EventLog.catalog.versions(of: type).last.map({ $0 > version }) == true else { return (version, data) }
        let (newest, upcast) = try EventLog.catalog.upcast(type, data: try JSONValue(parsing: data), from: version)
        return (newest, Data(upcast.encoded()))
    }

    /// `SNAPSHOT_EVERY` (events; default 20, 0 for none).
    static func snapshotEvery(_ settings: Settings) -> Int {
        settings.int("SNAPSHOT_EVERY").map { max(0, $0) } ?? 20
    }

    struct Position: Codable, Sendable { var position: Int64 }
}
