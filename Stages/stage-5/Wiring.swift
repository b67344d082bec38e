import AMQP
import Common
import Foundation
import GRDB
import Hummingbird
import Jobs
import Logging
import Messaging
import Redis
import ServiceLifecycle
import ShopServer
import Storage

/// What every stage-5 service that talks to RabbitMQ has: the topology, one
/// reconnecting client, and the long-running parts (client, outbox relay,
/// consumers) that run beside its HTTP server; and now the job store too.
struct ServiceMessaging {
    let service: String
    let topology: MessageTopology
    let client: RabbitClient
    let jobs: JobStore
    let policy: JobPolicy
    let settings: Settings
    let logger: Logger

    init(service: String, namespace: String, settings: Settings, logger: Logger) throws {
        self.service = service
        topology = StageTopology.make(namespace: namespace, settings: settings)
        client = try Broker.client(url: settings.amqpURL, name: "\(namespace) \(service)", topology: topology, logger: logger)
        policy = JobPolicy(settings: settings)
        jobs = try JobStore(url: settings.redisURL, prefix: JobStore.prefix(namespace: namespace), lockDuration: policy.lockDuration, logger: logger)
        self.settings = settings
        self.logger = logger
    }

    /// One outbox, two destinations: messages to RabbitMQ, jobs to Redis.
    func relay(for db: any DatabaseWriter) -> OutboxRelay {
        OutboxRelay(db: db, destination: SplitDestination(
            jobs: JobsDestination(client: jobs.client, prefix: jobs.prefix),
            others: RabbitDestination(client: client, exchange: topology.exchange)), logger: logger)
    }

    /// Forgets the ids of messages handled long ago (`INBOX_RETENTION_HOURS`):
    /// stage 4's hourly loop is a job scheduler now, so the period is kept
    /// in Redis and the work shows in `/admin/jobs` like any other job.
    func housekeeping(for db: any DatabaseWriter) -> [any Service] {
        let queue = WorkQueue.housekeeping(service)
        let retention = settings.inboxRetention
        let every = policy.housekeepingEvery
        let scheduler = JobSetup("the inbox pruner's schedule", logger: logger) { [jobs] in
            try await jobs.queue(queue).upsertScheduler(id: "prune-inbox", every: every, job: NewJob(name: "prune-inbox", data: "{}"))
        }
        let worker = jobs.worker(queue, concurrency: 1) { _ in
            let pruned = try await Inbox.prune(processedBefore: Date().addingTimeInterval(-Double(retention.components.seconds)), db: db)
            return "{\"pruned\":\(pruned)}"
        }
        return [scheduler, worker]
    }

    /// The `emails` queue's rate limit, kept in Redis (the queue's `meta`)
    /// where every worker of the queue, ours or BullMQ's, reads it.
    func emailRateLimit() -> any Service {
        let rate = policy.emailRate
        return JobSetup("the email rate limit", logger: logger) { [jobs] in
            try await jobs.queue(WorkQueue.emails).setRateLimit(max: rate.max, per: rate.per)
        }
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
    /// `GET /health`: the database answers; RabbitMQ and Redis are
    /// reported, but a broker that is away does not make the service
    /// unhealthy (its outbox keeps what it cannot send yet).
    func addServiceHealth(stage: Int, name: String, db: any DatabaseWriter, messaging: ServiceMessaging) {
        get("/health") { _, _ in
            let database = (try? await db.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
            var services: [String: API.ServiceState] = [name: .up, "database": database ? .up : .down]
            services["rabbitmq"] = messaging.brokerIsUp ? .up : .down
            services["redis"] = await messaging.jobs.isReachable() ? .up : .down
            let health = API.Health(stage: stage, services: services)
            return Reply.json(health, status: database ? .ok : .serviceUnavailable)
        }
    }
}
