internal import CRdKafka
import Logging

/// Cluster administration: creating and deleting topics, reading metadata,
/// and reading a consumer group's committed offsets from outside the group.
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
    /// `configs`: the topic's settings (`retention.ms`, …), set at creation.
    public func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32 = 1, configs: [String: String] = [:]) async throws(KafkaError) {
        let client = handle
        let timeout = configuration.requestTimeout
        try await thread.run("create topic \(name)") { () throws(KafkaError) in
            let topic = try NewTopicHandle.make(name: name, partitions: partitions, replicationFactor: replicationFactor, configs: configs)
            let event = try Self.request(
                "create topic \(name)", client: client, operation: RD_KAFKA_ADMIN_OP_CREATETOPICS,
                timeout: timeout, changesTopics: true
            ) { options, results in
                // Swift may free an object right after its last use; the
                // C call must still see `topic`, so its lifetime is extended
                // over the call (librdkafka copies it).
                withExtendedLifetime(topic) {
                    var topics: [OpaquePointer?] = [topic.pointer]
                    rd_kafka_CreateTopics(client.pointer, &topics, 1, options.pointer, results.pointer)
                }
            }
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

    /// Deletes the topics, with their messages. Topics the cluster does not
    /// know are ignored, like an existing one in `createTopic`: the aim is
    /// "they are gone", and a second call (or a test's cleanup) must not
    /// fail because the first one succeeded. The broker may go on listing a
    /// deleted topic in metadata for a moment after it answered.
    public func deleteTopics(_ names: [String]) async throws(KafkaError) {
        let names = Self.unique(names)
        guard !names.isEmpty else { return }
        let client = handle
        let timeout = configuration.requestTimeout
        let what = "delete topics \(names.joined(separator: ", "))"
        try await thread.run(what) { () throws(KafkaError) in
            var topics: [DeleteTopicHandle] = []
            for name in names { topics.append(try DeleteTopicHandle.make(name: name)) }
            let event = try Self.request(
                what, client: client, operation: RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout: timeout, changesTopics: true
            ) { options, results in
                // As in createTopic: alive until librdkafka has copied them.
                withExtendedLifetime(topics) {
                    var pointers: [OpaquePointer?] = topics.map(\.pointer)
                    rd_kafka_DeleteTopics(client.pointer, &pointers, pointers.count, options.pointer, results.pointer)
                }
            }
            guard let result = rd_kafka_event_DeleteTopics_result(event.pointer) else { return }
            var count = 0
            guard let answers = rd_kafka_DeleteTopics_result_topics(result, &count) else { return }
            for index in 0..<count {
                let err = rd_kafka_topic_result_error(answers[index])
                if err == RD_KAFKA_RESP_ERR_NO_ERROR || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { continue }
                let name = String(cString: rd_kafka_topic_result_name(answers[index]))
                let text = rd_kafka_topic_result_error_string(answers[index]).map { String(cString: $0) }
                try check(err, "delete topic \(name)", detail: [text, client.context.diagnostics].compactMap { $0 }.joined(separator: "; "))
            }
        }
    }

    /// What `group` has committed for each of `partitions`: the next offset
    /// it will read there. Partitions the group never committed for are
    /// absent from the answer (as is everything for a group that does not
    /// exist), so "no entry" means "starts at `auto.offset.reset`".
    ///
    /// This only asks the group's coordinator (an OffsetFetch request); it
    /// does not join the group, so the members reading it now keep their
    /// partitions and carry on undisturbed. It is how a tool, or a read
    /// model deciding between its stored position and the group's, looks
    /// at a group from outside. Bounded by `requestTimeout`, which also
    /// covers finding the coordinator.
    public func committedOffsets(
        group: String, partitions: [KafkaTopicPartition]
    ) async throws(KafkaError) -> [KafkaTopicPartition: Int64] {
        // librdkafka refuses a list with the same partition twice.
        let partitions = Self.unique(partitions)
        guard !partitions.isEmpty else { return [:] }
        let client = handle
        let timeout = configuration.requestTimeout
        let what = "committed offsets of group \(group)"
        return try await thread.run(what) { () throws(KafkaError) -> [KafkaTopicPartition: Int64] in
            let list = try TopicPartitionList.make(partitions.map {
                TopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: RdKafkaConstants.offsetInvalid)
            })
            let query = try ListGroupOffsetsHandle.make(group: group, partitions: list)
            let event = try Self.request(
                what, client: client, operation: RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout: timeout
            ) { options, results in
                // One group per request is all librdkafka accepts.
                withExtendedLifetime(query) {
                    var queries: [OpaquePointer?] = [query.pointer]
                    rd_kafka_ListConsumerGroupOffsets(client.pointer, &queries, 1, options.pointer, results.pointer)
                }
            }
            guard let result = rd_kafka_event_ListConsumerGroupOffsets_result(event.pointer) else {
                throw KafkaError(code: .other, message: "\(what): the answer is not a ListConsumerGroupOffsets result")
            }
            var count = 0
            guard let groups = rd_kafka_ListConsumerGroupOffsets_result_groups(result, &count) else { return [:] }
            var offsets: [KafkaTopicPartition: Int64] = [:]
            for index in 0..<count {
                let answer = groups[index]
                try check(borrowing: rd_kafka_group_result_error(answer), "\(what) (\(client.context.diagnostics))")
                for entry in TopicPartitionList.entries(of: rd_kafka_group_result_partitions(answer)) {
                    let partition = KafkaTopicPartition(topic: entry.topic, partition: entry.partition)
                    if entry.error != 0 {
                        throw KafkaError(rd_kafka_resp_err_t(rawValue: entry.error), context: "\(what), \(partition)")
                    }
                    // No commit: the broker answers -1, which librdkafka
                    // passes on as RD_KAFKA_OFFSET_INVALID (-1001).
                    if entry.offset >= 0 { offsets[partition] = entry.offset }
                }
            }
            return offsets
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

    /// Every partition of `topics`, in the order the topics are given, each
    /// topic's partitions in ascending order: what `committedOffsets` wants
    /// to know about a topic as a whole. One metadata request. A topic the
    /// cluster does not know is an error (`.unknownTopicOrPartition`) that
    /// names it, rather than a silently shorter list: a typo in a topic
    /// name should not read as "nothing committed".
    public func partitions(of topics: [String]) async throws(KafkaError) -> [KafkaTopicPartition] {
        let topics = Self.unique(topics)
        guard !topics.isEmpty else { return [] }
        let client = handle
        let timeout = configuration.requestTimeout
        return try await thread.run("metadata") { () throws(KafkaError) -> [KafkaTopicPartition] in
            let known = try MetadataHandle.fetch(client: client, timeoutMilliseconds: timeout.millisecondsInt32).partitionIDs
            let missing = topics.filter { known[$0] == nil }
            guard missing.isEmpty else {
                throw KafkaError(
                    code: .unknownTopicOrPartition,
                    message: "partitions of \(missing.joined(separator: ", ")): no such topic (\(client.context.diagnostics))")
            }
            return topics.flatMap { topic in known[topic]!.map { KafkaTopicPartition(topic: topic, partition: $0) } }
        }
    }

    // MARK: On the admin's thread

    /// One admin request, from sending to its answer: `send` hands librdkafka
    /// the request with the options and the private queue the answer is to
    /// be posted on; this waits for that answer and throws a request-level
    /// error. The caller reads the per-item results out of the event.
    private static func request(
        _ what: String, client: KafkaHandle, operation: rd_kafka_admin_op_t, timeout: Duration,
        changesTopics: Bool = false,
        send: (AdminOptionsHandle, QueueHandle) -> Void
    ) throws(KafkaError) -> EventHandle {
        let options = try AdminOptionsHandle.make(
            client: client, operation: operation, timeoutMilliseconds: timeout.millisecondsInt32,
            operationTimeoutMilliseconds: changesTopics ? timeout.millisecondsInt32 : nil)
        let results = try QueueHandle.make(on: client)
        send(options, results)
        // The request timeout makes librdkafka answer by then; the margin
        // only guards against waiting forever should it not.
        guard let event = results.poll(timeoutMilliseconds: (timeout + .seconds(5)).millisecondsInt32) else {
            throw KafkaError(code: .timedOut, message: "\(what): no answer within \(timeout) (\(client.context.diagnostics))")
        }
        try check(event.error, what, detail: event.errorString + "; " + client.context.diagnostics)
        return event
    }

    /// The first occurrence of each, in order.
    private static func unique<T: Hashable>(_ items: [T]) -> [T] {
        var seen = Set<T>()
        return items.filter { seen.insert($0).inserted }
    }
}
