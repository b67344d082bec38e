import AMQP
import Common
import Events
import Foundation
import GRDB
import Hummingbird
import Jobs
import Kafka
import Logging
import Messaging
import Redis
import ServiceLifecycle
import ShopServer
import Storage
import Streams
import Synchronization

/// What every stage-7 service that takes part in the flow has: Kafka for
/// the events (its outbox's relay appends its own events to its topic; its
/// group reads the topics it subscribes to), RabbitMQ for the tasks (the
/// events it could not process yet, on their retry ladder), Redis for the
/// jobs, and the long-running parts that run beside its HTTP server.
struct ServiceMessaging {
    let service: String
    /// nil for a service that publishes no events (notification, the desk).
    let producer: Producer?
    let namespace: String
    let topology: MessageTopology
    let client: RabbitClient
    let jobs: JobStore
    let policy: JobPolicy
    let settings: Settings
    let logger: Logger
    /// The service's consumers, for its health: it is ready once each has joined its group.
    let streams = StreamReadiness()

    init(service: String, namespace: String, settings: Settings, logger: Logger) throws {
        self.service = service
        producer = Producer(rawValue: service)
        self.namespace = namespace
        topology = StageTopology.make(namespace: namespace, settings: settings)
        client = try Broker.client(url: settings.amqpURL, name: "\(namespace) \(service)", topology: topology, logger: logger)
        policy = JobPolicy(settings: settings)
        jobs = try JobStore(url: settings.redisURL, prefix: JobStore.prefix(namespace: namespace), lockDuration: policy.lockDuration, logger: logger)
        self.settings = settings
        self.logger = logger
    }

    /// `acks=all`, one request in flight, and *not* idempotent. An
    /// idempotent producer is the textbook choice, and it loses events on
    /// this broker: Tansu 0.6.0 stores an idempotent produce as three
    /// separate writes (the producer's sequence, the partition's end, the
    /// batch) and a stop cuts in between; the producer's retry is then told
    /// "duplicate sequence", which librdkafka takes for success. Measured
    /// (confluent-kafka, restart mid-stream): 7 of 10 idempotent runs lost
    /// 2 to 13 acknowledged records, 0 of 6 non-idempotent runs lost any
    /// (some wrote a record twice). A duplicate is what every consumer here
    /// is built for (the inbox, a read model's event ids); a loss is not.
    var producerConfiguration: KafkaProducerConfiguration {
        var configuration = KafkaProducerConfiguration(bootstrapServers: settings.kafkaBootstrap, clientID: "\(namespace).\(service)")
        configuration.idempotent = false
        return configuration
    }

    /// Where a consumer sets aside what it can never process.
    var deadLetters: DeadLetterTopic {
        DeadLetterTopic(topic: StageTopology.deadLetterTopic(namespace: namespace), partitions: StageTopology.partitions,
                        producer: producerConfiguration, logger: logger)
    }

    /// One outbox, two destinations: the service's events to its own topic
    /// on Kafka, keyed by aggregate id; jobs to Redis.
    func relay(for db: any DatabaseWriter) -> OutboxRelay {
        let events: any OutboxDestination
        if let producer {
            let kafka = KafkaDestination(configuration: producerConfiguration, topic: StageTopology.topic(producer, namespace: namespace),
                                         partitions: StageTopology.partitions, logger: logger)
            // Ready before the first event, not at it (see `prepare`).
            Task { await kafka.prepare() }
            events = kafka
        } else {
            events = PublishesNoEvents(service: service)
        }
        return OutboxRelay(db: db, destination: SplitDestination(
            jobs: JobsDestination(client: jobs.client, prefix: jobs.prefix), others: events), logger: logger)
    }

    /// A consumer's handler: the event, checked against its schema and read
    /// as today's version, and the message the inbox deduplicates on.
    typealias EventHandler = @Sendable (ReceivedEvent, IncomingMessage) async throws -> Void

    /// One event type and what to do with it: `.on(OrderCreated.self) { event, message in … }`.
    struct Subscription {
        let event: any DomainEvent.Type
        let handler: EventHandler
        static func on(_ event: any DomainEvent.Type, _ handler: @escaping EventHandler) -> Subscription {
            Subscription(event: event, handler: handler)
        }
    }

    /// The service's consumer group (`<ns>.<group>`) on the topics of the
    /// events it subscribes to, and its RabbitMQ task queue, both with the
    /// same handlers. A record is committed once its handler's transaction
    /// is; one that fails goes to the task queue (see `StreamConsumer`), one
    /// that never fits its schema to the dead-letter topic.
    func consumer(_ group: String, events subscriptions: [Subscription]) -> EventConsumer {
        guard let definition = StageTopology.group(group) else { preconditionFailure("no consumer group '\(group)' in StageTopology.groups") }
        var byName: [String: EventHandler] = [:]
        var versions: [String: Int] = [:]
        var byType: [String: MessageConsumer.Handler] = [:]
        for subscription in subscriptions {
            let handler = subscription.handler
            byName[subscription.event.name] = handler
            let version = subscription.event.version
            versions[subscription.event.name] = version
            byType[EventLog.catalog.type(of: subscription.event.name)] = { message in
                try await handler(try EventLog.catalog.read(message, as: version), message)
            }
        }
        var configuration = KafkaConsumerConfiguration(
            bootstrapServers: settings.kafkaBootstrap, groupID: "\(namespace).\(group)",
            topics: definition.topicNames(namespace: namespace), clientID: "\(namespace).\(service)")
        configuration.startPosition = .committed
        configuration.fetchWaitMax = StageTopology.fetchWait
        configuration.autoCommitStoredEvery = StageTopology.commitEvery
        let logger = self.logger
        let fixed = configuration
        let handlers = byName
        let readAs = versions
        let stream = StreamConsumer(
            name: fixed.groupID, configuration: { fixed }, deadLetters: deadLetters,
            handOver: { [client, topology] record, reason in
                try await client.publish(Self.task(record, queue: group, reason: reason, topology: topology))
            },
            sideBySide: StageTopology.sideBySide, logger: logger,
            handler: { record in
                // A topic carries all of its producer's events; a group
                // reads the ones it subscribes to, as the version its code
                // knows, and passes over the rest unread.
                let envelope = try EventRecords.envelope(of: record)
                let name = EventLog.catalog.name(ofType: envelope.type)
                if let name, handlers[name] == nil { return }
                let event = try EventLog.catalog.read(envelope, as: name.flatMap { readAs[$0] })
                guard let handler = handlers[event.name] else { return }
                // One log line per event handled, with the event's id and
                // its story's correlation id: `grep <order id>` over the
                // services' logs then shows the choreography, in order.
                logger.info("event \(event.name) from \(record.topic)[\(record.partition)]@\(record.offset)", metadata: event.metadata)
                try await handler(event, EventRecords.incoming(record, event: event))
            })
        let tasks = MessageConsumer(client: client, topology: topology, queue: group, logger: logger, logEachMessage: true, handlers: byType)
        streams.add(stream)
        return EventConsumer(stream: stream, tasks: tasks)
    }

    /// An event its consumer could not process yet, as a task on the
    /// group's RabbitMQ queue: to the first step of the retry ladder, as
    /// attempt 2 (the first was the read from the log).
    static func task(_ record: KafkaConsumerMessage, queue: String, reason: String, topology: MessageTopology) -> OutboundMessage {
        let body = record.value ?? []
        // The envelope only (its id is what the inbox deduplicates on), not
        // the event checked against a schema: the task carries it as it came.
        let envelope = try? CloudEvent(parsing: body)
        var headers: AMQPTable = [MessageHeader.attempt: .int(2)]
        if let correlationId = envelope?.correlationid { headers[MessageHeader.correlationId] = .string(correlationId) }
        return OutboundMessage(
            exchange: "", routingKey: topology.retryQueue(queue, step: 1), body: body,
            properties: BasicProperties(
                contentType: CloudEvent.contentType, headers: headers, deliveryMode: .persistent,
                correlationID: envelope?.correlationid, messageID: envelope?.id ?? "\(record.topic)-\(record.partition)-\(record.offset)",
                timestamp: Date(), type: envelope?.type),
            mandatory: true)
    }

    /// An event this service publishes, for its outbox.
    func event(_ event: some DomainEvent, correlationId: String?, causedBy cause: ReceivedEvent? = nil, requestId: String? = nil) throws -> OutgoingMessage {
        guard let producer else { preconditionFailure("the \(service) service publishes no events") }
        return try EventLog.catalog.message(event, source: producer.source, correlationId: correlationId, causedBy: cause, requestId: requestId)
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

    /// For `/health`: the service is up either way (its outbox keeps what it
    /// cannot send), but it says whether the broker is there.
    var brokerIsUp: Bool { client.connection?.isOpen == true }
}

/// A group's two ways in: the log, and the task queue for what the log
/// could not get through at the first try.
struct EventConsumer: Service {
    let stream: StreamConsumer
    let tasks: MessageConsumer

    func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await stream.run() }
            group.addTask { try await tasks.run() }
        }
    }
}

/// A service's consumer groups, as its health sees them.
final class StreamReadiness: Sendable {
    private let consumers = Mutex<[StreamConsumer]>([])
    func add(_ consumer: StreamConsumer) { consumers.withLock { $0.append(consumer) } }
    /// Every consumer has joined its group at least once.
    var joined: Bool { consumers.withLock { $0.allSatisfy(\.hasJoined) } }
}

/// The outbox of a service that publishes no events holds only jobs; an
/// event there would be a bug.
struct PublishesNoEvents: OutboxDestination {
    let service: String
    func deliver(_ messages: [OutgoingMessage]) async throws {
        throw ShopError(.internalError, "the \(service) service publishes no events, but its outbox holds \(messages.map(\.type))")
    }
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
            // Until its consumers have joined their groups (about 3 s after
            // the start) the service reacts to no event: not ready yet. Once
            // joined it stays healthy: a broker that goes away later is
            // librdkafka's to wait out (its outbox keeps what it cannot send),
            // and `kafka` keeps saying up.
            let joined = messaging.streams.joined
            services["kafka"] = joined ? .up : .down
            let health = API.Health(stage: stage, services: services)
            return Reply.json(health, status: database && joined ? .ok : .serviceUnavailable)
        }
    }
}
