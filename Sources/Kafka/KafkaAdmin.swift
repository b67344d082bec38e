internal import CRdKafka
import Logging

/// Cluster administration: creating topics, reading metadata.
///
/// librdkafka has no separate admin client: admin requests go through an
/// ordinary client (a producer that never produces), and their answers
/// arrive as events on a queue we pass in. Each call here makes a private
/// queue, sends the request and waits on that queue, on the admin's thread,
/// for at most `requestTimeout` plus a margin.
public final class KafkaAdmin: Sendable {
    public let configuration: KafkaAdminConfiguration
    private let handle: KafkaHandle
    private let thread: ClientThread

    private init(configuration: KafkaAdminConfiguration, handle: KafkaHandle) {
        self.configuration = configuration
        self.handle = handle
        let client = handle
        // Polling between jobs serves the error callback, which records the
        // last connection error for our messages ("Connection refused").
        self.thread = ClientThread(
            name: "kafka-admin",
            idle: { _ = rd_kafka_poll(client.pointer, 100) },
            wake: { rd_kafka_yield(client.pointer) })
    }

    public static func make(
        configuration: KafkaAdminConfiguration, logger: Logger = Logger(label: "kafka.admin")
    ) throws(KafkaError) -> KafkaAdmin {
        try RdKafkaLibrary.requireSupported()
        let config = try ConfigHandle.make(configuration.properties)
        let context = ClientContext(logger: logger, bootstrapServers: configuration.client.bootstrapServers)
        let handle = try KafkaHandle.make(type: RD_KAFKA_PRODUCER, config: config, context: context)
        return KafkaAdmin(configuration: configuration, handle: handle)
    }

    deinit {
        thread.shutdown()
    }

    /// Stops the admin's thread; later calls fail with `.closed`.
    public func close() {
        thread.shutdown()
    }

    /// Creates `name` with `partitions` partitions. A topic that already
    /// exists counts as success (whatever its partition count): services
    /// call this at start, every time, and the first one wins.
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1) async throws(KafkaError) {
        let client = handle
        let timeout = configuration.requestTimeout
        try await thread.run("create topic \(name)") { () throws(KafkaError) in
            let topic = try NewTopicHandle.make(name: name, partitions: partitions, replicationFactor: replicationFactor)
            let options = try AdminOptionsHandle.make(client: client, operation: RD_KAFKA_ADMIN_OP_CREATETOPICS, timeoutMilliseconds: timeout.millisecondsInt32)
            let results = try QueueHandle.make(on: client)
            var topics: [OpaquePointer?] = [topic.pointer]
            rd_kafka_CreateTopics(client.pointer, &topics, 1, options.pointer, results.pointer)
            // The request timeout makes librdkafka answer by then; the margin
            // only guards against waiting forever should it not.
            guard let event = results.poll(timeoutMilliseconds: (timeout + .seconds(5)).millisecondsInt32) else {
                throw KafkaError(code: .timedOut, message: "create topic \(name): no answer within \(timeout) (\(client.context.diagnostics))")
            }
            try check(event.error, "create topic \(name)", detail: event.errorString + "; " + client.context.diagnostics)
            guard let result = rd_kafka_event_CreateTopics_result(event.pointer) else { return }
            var count = 0
            guard let answers = rd_kafka_CreateTopics_result_topics(result, &count) else { return }
            for index in 0..<count {
                let err = rd_kafka_topic_result_error(answers[index])
                if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS { continue }
                let text = rd_kafka_topic_result_error_string(answers[index]).map { String(cString: $0) }
                try check(err, "create topic \(name)", detail: [text, client.context.diagnostics].compactMap { $0 }.joined(separator: "; "))
            }
        }
    }

    /// The partition count of every topic the cluster knows. Also a cheap
    /// "is the cluster there" probe: it fails within `requestTimeout` with
    /// the address in the message when no broker answers.
    public func topics() async throws(KafkaError) -> [String: Int] {
        let client = handle
        let timeout = configuration.requestTimeout
        return try await thread.run("metadata") { () throws(KafkaError) -> [String: Int] in
            let metadata = try MetadataHandle.fetch(client: client, timeoutMilliseconds: timeout.millisecondsInt32)
            return metadata.topics.filter { $0.value.error == 0 }.mapValues(\.partitions)
        }
    }

    /// Partition count of `topic`, or nil if the cluster does not know it.
    public func partitionCount(of topic: String) async throws(KafkaError) -> Int? {
        try await topics()[topic]
    }
}
