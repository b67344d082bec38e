import Auth
import Common
import Events
import Foundation
import Hummingbird
import Jobs
import Kafka
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Streams

/// The operations desk as a process of its own: the dead-letter office
/// files what lands in `<ns>.dead-letters` and answers the administrator's
/// two routes; from stage 5 it also shows the job queues in Redis
/// (`/admin/jobs`) and retries a failed job; from stage 6 it keeps the flow
/// log (`GET /admin/orders/{id}/flow`). From stage 7 it reads the log: the
/// flow log is a consumer group on every topic, the dead letters come from
/// two places (the RabbitMQ queue, for tasks that used up their retry
/// ladder, and the Kafka dead-letter topic, for poison a consumer met on the
/// log), and `GET /reports/stream` shows how far behind every group is.
enum DeadLetterService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let db = try DeadLetterOffice.openDatabase(at: dataDir.appendingPathComponent("dead-letters.sqlite"))
        let office = DeadLetterOffice(db: db, client: messaging.client, topology: messaging.topology, logger: logger)
        let flow = FlowLog(db: try FlowLog.open(at: dataDir.appendingPathComponent("flow.sqlite")))
        // Every event, whatever its type: checked against its schema like
        // any consumer's (what does not fit is a dead letter here too).
        let flowConsumer = messaging.consumer("flow", events: EventLog.published.map { _, event in
            .on(event) { event, _ in try await flow.record(event) }
        })
        let namespace = messaging.namespace
        let deadLetterTopic = StageTopology.deadLetterTopic(namespace: namespace)
        let letters = StreamConsumer(
            name: "\(namespace).deadletter",
            configuration: {
                var configuration = KafkaConsumerConfiguration(
                    bootstrapServers: settings.kafkaBootstrap, groupID: "\(namespace).deadletter", topics: [deadLetterTopic], clientID: "\(namespace).deadletter")
                configuration.fetchWaitMax = StageTopology.fetchWait
                configuration.autoCommitStoredEvery = StageTopology.commitEvery
                return configuration
            },
            deadLetters: messaging.deadLetters, logger: logger,
            handler: { record in try await file(record, in: office, namespace: namespace) })
        let monitor = StreamMonitor(
            bootstrapServers: settings.kafkaBootstrap, group: "\(namespace).monitor",
            topics: StageTopology.allTopics(namespace: namespace), fetchWait: StageTopology.fetchWait, logger: logger)
        let admin = try KafkaAdmin.make(configuration: KafkaAdminConfiguration(bootstrapServers: settings.kafkaBootstrap, clientID: "\(namespace).desk"))

        StreamMetrics.watch(groups: StageTopology.streamGroups(namespace: namespace), admin: admin, monitor: monitor)

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
        router.get("/reports/stream") { request, context in
            _ = try auth.admin(request, context: context)
            do {
                return Reply.json(try await StreamReport.make(groups: StageTopology.streamGroups(namespace: namespace), admin: admin, monitor: monitor))
            } catch let error as KafkaError {
                throw ShopError(.unavailable, "the Kafka broker did not answer (\(error.message)); try again")
            }
        }
        // The gateway sends a read model's replay to its own service; what
        // reaches the desk is a group that cannot be replayed, or none.
        router.post("/reports/stream/:group/replay") { request, context -> Response in
            _ = try auth.admin(request, context: context)
            let name = context.parameters.get("group") ?? ""
            guard StageTopology.streamGroups(namespace: namespace).contains(where: { $0.name == name }) else {
                throw ShopError.notFound("consumer group \(name)")
            }
            throw ShopError(.groupNotReplayable, "the \(name) group acts on the world (it \(effect(of: name))): replaying it would do that again; only read models (order-views, sales, analytics) can be replayed")
        }
        router.addServiceHealth(stage: ThisStage.number, name: "deadletter", db: db, messaging: messaging)
        return (router, [messaging.client, office.consumer, flowConsumer, letters, monitor])
    }

    static func effect(of group: String) -> String {
        switch group {
        case "inventory": "reserves and releases stock"
        case "payment": "charges and refunds cards"
        case "order": "confirms and cancels orders"
        case "notification": "sends emails"
        case "deadletter": "files dead letters, which a replay would file again"
        default: "keeps the flow log, which a replay would not change"
        }
    }

    /// One record of the dead-letter topic into the office's table, with the
    /// group that gave up on it as its queue: a replay sends it to that
    /// group's task queue, so only the consumer that failed reads it again
    /// (republishing it to its topic would make every group read it again).
    static func file(_ record: KafkaConsumerMessage, in office: DeadLetterOffice, namespace: String) async throws {
        func header(_ name: String) -> String? { record.header(name)?.stringValue }
        let group = header(DeadLetterTopic.Header.group) ?? "unknown"
        let queue = group.hasPrefix(namespace + ".") ? String(group.dropFirst(namespace.count + 1)) : group
        let body = record.value ?? []
        let envelope = try? CloudEvent(parsing: body)
        let source = "\(header(DeadLetterTopic.Header.topic) ?? "?")[\(header(DeadLetterTopic.Header.partition) ?? "?")]@\(header(DeadLetterTopic.Header.offset) ?? "?")"
        try await office.file(
            id: header(DeadLetterTopic.Header.id) ?? "dlt_\(record.partition)_\(record.offset)", queue: queue,
            messageId: envelope?.id, messageType: envelope?.type,
            reason: "\(header(DeadLetterTopic.Header.reason) ?? "unknown") (record \(source), group \(group))", attempts: 1,
            at: header(DeadLetterTopic.Header.at).flatMap(Timestamp.parse) ?? Date(),
            body: body, headers: [:])
    }
}
