import AMQP
import Common
import Foundation
import GRDB
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// What every stage-4 service that talks to RabbitMQ has: the topology, one
/// reconnecting client, and the long-running parts (client, outbox relay,
/// consumers) that run beside its HTTP server.
struct ServiceMessaging {
    let topology: MessageTopology
    let client: RabbitClient
    let settings: Settings
    let logger: Logger

    init(service: String, namespace: String, settings: Settings, logger: Logger) throws {
        topology = StageTopology.make(namespace: namespace, settings: settings)
        client = try Broker.client(url: settings.amqpURL, name: "\(namespace) \(service)", topology: topology, logger: logger)
        self.settings = settings
        self.logger = logger
    }

    func relay(for db: any DatabaseWriter) -> OutboxRelay {
        OutboxRelay(db: db, destination: RabbitDestination(client: client, exchange: topology.exchange), logger: logger)
    }

    /// Forgets the ids of messages handled long ago (`INBOX_RETENTION_HOURS`).
    func pruner(for db: any DatabaseWriter) -> InboxPruner {
        InboxPruner(db: db, retention: settings.inboxRetention, logger: logger)
    }

    func consumer(_ queue: String, handlers: [String: MessageConsumer.Handler]) -> MessageConsumer {
        MessageConsumer(client: client, topology: topology, queue: queue, logger: logger, handlers: handlers)
    }

    /// For `/health`: the service is up either way (its outbox keeps what it
    /// cannot send), but it says whether the broker is there.
    var brokerIsUp: Bool { client.connection?.isOpen == true }
}

/// A service's database with the outbox and inbox tables beside its own.
func openServiceDatabase(_ url: URL, migrations: [Migration]) throws -> DatabasePool {
    try SQLiteStore.openPool(at: url, migrations: migrations + MessagingSchema.migrations)
}

extension Router where Context == ShopRequestContext {
    /// `GET /health`: the database answers; RabbitMQ is reported, but a
    /// broker that is away does not make the service unhealthy (its outbox
    /// keeps what it cannot send yet).
    func addServiceHealth(stage: Int, name: String, db: any DatabaseWriter, messaging: ServiceMessaging) {
        get("/health") { _, _ in
            let database = (try? await db.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
            var services: [String: API.ServiceState] = [name: .up, "database": database ? .up : .down]
            services["rabbitmq"] = messaging.brokerIsUp ? .up : .down
            let health = API.Health(stage: stage, services: services)
            return Reply.json(health, status: database ? .ok : .serviceUnavailable)
        }
    }
}
