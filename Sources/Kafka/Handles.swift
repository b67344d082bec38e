internal import CRdKafka

// One small final class per kind of C object librdkafka hands us. Each has a
// private init and a factory (that throws where librdkafka can fail), keeps
// the raw pointer to itself and frees it in `deinit`. That way ARC, not
// the reader, proves that every object is freed exactly once, even on the
// early `throw` paths. None of these types leave the module.

// Constants that are macros with casts or line continuations in rdkafka.h,
// which Swift does not import.
enum RdKafkaConstants {
    static let partitionUnassigned: Int32 = -1  // RD_KAFKA_PARTITION_UA
    static let offsetBeginning: Int64 = -2      // RD_KAFKA_OFFSET_BEGINNING
    static let offsetEnd: Int64 = -1            // RD_KAFKA_OFFSET_END
    static let offsetInvalid: Int64 = -1001     // RD_KAFKA_OFFSET_INVALID
    static let msgFlagCopy: Int32 = 0x2         // RD_KAFKA_MSG_F_COPY
    static let purgeQueue: Int32 = 0x1          // RD_KAFKA_PURGE_F_QUEUE
    static let purgeInflight: Int32 = 0x2       // RD_KAFKA_PURGE_F_INFLIGHT
    static let destroyNoConsumerClose: Int32 = 0x8  // RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE
}

/// Reads librdkafka's "errstr" out-parameter convention into a String.
func withErrorBuffer<T>(_ body: (UnsafeMutablePointer<CChar>, Int) -> T) -> (T, String) {
    var buffer = [CChar](repeating: 0, count: 512)
    let result = buffer.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
    let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    return (result, text)
}

/// `rd_kafka_conf_t`: the settings a client is created from. Ownership
/// passes to librdkafka when `rd_kafka_new` succeeds (`relinquish()`); until
/// then, `deinit` frees it.
final class ConfigHandle {
    private var pointer: OpaquePointer?

    private init(pointer: OpaquePointer) { self.pointer = pointer }

    static func make(_ properties: [(String, String)]) throws(KafkaError) -> ConfigHandle {
        guard let pointer = rd_kafka_conf_new() else {
            throw KafkaError(code: .other, message: "rd_kafka_conf_new returned nothing (out of memory?)")
        }
        let config = ConfigHandle(pointer: pointer)
        for (key, value) in properties {
            try config.set(key, value)
        }
        return config
    }

    func set(_ key: String, _ value: String) throws(KafkaError) {
        let (result, text) = withErrorBuffer { rd_kafka_conf_set(pointer, key, value, $0, $1) }
        guard result == RD_KAFKA_CONF_OK else {
            throw KafkaError.configuration("\(key)=\(value): \(text)")
        }
    }

    /// For the callbacks: these take the raw pointer.
    var raw: OpaquePointer { pointer! }

    /// rd_kafka_new took ownership: stop freeing it ourselves.
    func relinquish() { pointer = nil }

    deinit {
        if let pointer { rd_kafka_conf_destroy(pointer) }
    }
}

/// `rd_kafka_t`: one client instance, with its own broker connections and
/// background threads. librdkafka makes it safe to use from any thread,
/// which is why this class may be shared (`@unchecked Sendable`: the pointer
/// itself never changes).
///
/// It also keeps the `ClientContext` alive: librdkafka holds a raw pointer to
/// it (the conf "opaque") and calls back into it until `rd_kafka_destroy`
/// returns, which happens in this `deinit`, before the context is released.
final class KafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let context: ClientContext
    private let isConsumer: Bool

    private init(pointer: OpaquePointer, context: ClientContext, isConsumer: Bool) {
        self.pointer = pointer
        self.context = context
        self.isConsumer = isConsumer
    }

    static func make(
        type: rd_kafka_type_t, config: ConfigHandle, context: ClientContext
    ) throws(KafkaError) -> KafkaHandle {
        context.install(on: config)
        let (pointer, text) = withErrorBuffer { rd_kafka_new(type, config.raw, $0, $1) }
        guard let pointer else {
            throw KafkaError.configuration("could not create the Kafka client: \(text)")
        }
        config.relinquish()
        return KafkaHandle(pointer: pointer, context: context, isConsumer: type == RD_KAFKA_CONSUMER)
    }

    deinit {
        // A consumer is closed explicitly (KafkaConsumer.close, bounded in
        // time); if that did not happen or did not finish, a second, unbounded
        // close inside rd_kafka_destroy would only make us hang here.
        if isConsumer {
            rd_kafka_destroy_flags(pointer, RdKafkaConstants.destroyNoConsumerClose)
        } else {
            rd_kafka_destroy(pointer)
        }
    }
}

/// `rd_kafka_queue_t`: a queue of events (results of admin requests and
/// commits, or the consumer's messages). It references the client, so the
/// client must outlive it: holding `client` makes sure it does.
final class QueueHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    private let client: KafkaHandle

    private init(pointer: OpaquePointer, client: KafkaHandle) {
        self.pointer = pointer
        self.client = client
    }

    /// A new, private queue: results posted to it wait until we poll it.
    static func make(on client: KafkaHandle) throws(KafkaError) -> QueueHandle {
        guard let pointer = rd_kafka_queue_new(client.pointer) else {
            throw KafkaError(code: .other, message: "rd_kafka_queue_new failed")
        }
        return QueueHandle(pointer: pointer, client: client)
    }

    /// The consumer's own queue (messages, rebalances, errors once
    /// `rd_kafka_poll_set_consumer` has redirected the main queue to it).
    static func consumerQueue(of client: KafkaHandle) throws(KafkaError) -> QueueHandle {
        guard let pointer = rd_kafka_queue_get_consumer(client.pointer) else {
            throw KafkaError(code: .other, message: "rd_kafka_queue_get_consumer failed: not a consumer")
        }
        return QueueHandle(pointer: pointer, client: client)
    }

    /// Waits up to `timeoutMilliseconds` for the next event.
    func poll(timeoutMilliseconds: Int32) -> EventHandle? {
        EventHandle.take(rd_kafka_queue_poll(pointer, timeoutMilliseconds))
    }

    deinit { rd_kafka_queue_destroy(pointer) }
}

/// `rd_kafka_event_t`: one result taken from a queue.
final class EventHandle {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) { self.pointer = pointer }

    static func take(_ pointer: OpaquePointer?) -> EventHandle? {
        pointer.map(EventHandle.init(pointer:))
    }

    var type: Int32 { rd_kafka_event_type(pointer) }
    var error: rd_kafka_resp_err_t { rd_kafka_event_error(pointer) }
    var errorString: String {
        rd_kafka_event_error_string(pointer).map { String(cString: $0) } ?? ""
    }

    deinit { rd_kafka_event_destroy(pointer) }
}

/// A topic, partition and offset, as the consumer's commit and rebalance
/// APIs pass them around.
struct TopicPartitionOffset: Sendable, Hashable {
    var topic: String
    var partition: Int32
    var offset: Int64
    /// Per-partition result (commits and rebalances report errors per entry).
    var error: Int32 = 0
}

/// `rd_kafka_topic_partition_list_t`: a list we build and pass in.
final class TopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    private init(pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) {
        self.pointer = pointer
    }

    static func make(_ entries: [TopicPartitionOffset]) throws(KafkaError) -> TopicPartitionList {
        guard let pointer = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1))) else {
            throw KafkaError(code: .other, message: "rd_kafka_topic_partition_list_new failed")
        }
        let list = TopicPartitionList(pointer: pointer)
        for entry in entries {
            let element = rd_kafka_topic_partition_list_add(pointer, entry.topic, entry.partition)!
            element.pointee.offset = entry.offset
        }
        return list
    }

    /// Topics only (partition "unassigned"): the form `rd_kafka_subscribe` wants.
    static func make(topics: [String]) throws(KafkaError) -> TopicPartitionList {
        try make(topics.map { TopicPartitionOffset(topic: $0, partition: RdKafkaConstants.partitionUnassigned, offset: RdKafkaConstants.offsetInvalid) })
    }

    var entries: [TopicPartitionOffset] { Self.entries(of: pointer) }

    /// Reads a list we do not own (one librdkafka passes to a callback).
    static func entries(of list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartitionOffset] {
        guard let list, let elements = list.pointee.elems else { return [] }
        return (0..<Int(list.pointee.cnt)).map { index in
            let element = elements[index]
            return TopicPartitionOffset(
                topic: String(cString: element.topic), partition: element.partition,
                offset: element.offset, error: element.err.rawValue)
        }
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }
}

/// `rd_kafka_message_t` as the consumer returns it: ours to destroy. It is
/// copied into a Swift `KafkaConsumerMessage` right away and freed, so no C
/// memory outlives the poll that produced it.
final class MessageHandle {
    let pointer: UnsafeMutablePointer<rd_kafka_message_t>

    private init(pointer: UnsafeMutablePointer<rd_kafka_message_t>) { self.pointer = pointer }

    static func take(_ pointer: UnsafeMutablePointer<rd_kafka_message_t>?) -> MessageHandle? {
        pointer.map(MessageHandle.init(pointer:))
    }

    var error: rd_kafka_resp_err_t { pointer.pointee.err }

    /// For an error "message": the broker's or librdkafka's explanation.
    var errorText: String {
        if let text = rd_kafka_message_errstr(pointer) { return String(cString: text) }
        return String(cString: rd_kafka_err2str(error))
    }

    var topic: String? {
        pointer.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) }
    }

    /// `topicName` turns the message's topic handle into its name; the poll
    /// loop passes a cache, since a batch is nearly always one topic.
    func copy(topicName: (OpaquePointer?) -> String) -> KafkaConsumerMessage {
        let message = pointer.pointee
        var headers: [KafkaHeader] = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(pointer, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                headers.append(KafkaHeader(
                    name: name.map { String(cString: $0) } ?? "",
                    value: value.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: size)) }))
                index += 1
            }
        }
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(pointer, &type)
        return KafkaConsumerMessage(
            topic: topicName(message.rkt),
            partition: message.partition,
            offset: message.offset,
            key: message.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: message.key_len)) },
            value: message.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: message.len)) },
            headers: headers,
            timestampMilliseconds: type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp)
    }

    deinit { rd_kafka_message_destroy(pointer) }
}

/// `rd_kafka_NewTopic_t`: one topic to create.
final class NewTopicHandle {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) { self.pointer = pointer }

    static func make(name: String, partitions: Int32, replicationFactor: Int32, configs: [String: String] = [:]) throws(KafkaError) -> NewTopicHandle {
        let (pointer, text) = withErrorBuffer {
            rd_kafka_NewTopic_new(name, partitions, replicationFactor, $0, $1)
        }
        guard let pointer else { throw KafkaError.configuration("topic \(name): \(text)") }
        let handle = NewTopicHandle(pointer: pointer)
        for (key, value) in configs.sorted(by: { $0.key < $1.key }) {
            let err = rd_kafka_NewTopic_set_config(pointer, key, value)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError.configuration("topic \(name): \(key)=\(value) was refused") }
        }
        return handle
    }

    deinit { rd_kafka_NewTopic_destroy(pointer) }
}

/// `rd_kafka_DeleteTopic_t`: one topic to delete.
final class DeleteTopicHandle {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) { self.pointer = pointer }

    static func make(name: String) throws(KafkaError) -> DeleteTopicHandle {
        guard let pointer = rd_kafka_DeleteTopic_new(name) else {
            throw KafkaError(code: .other, message: "rd_kafka_DeleteTopic_new failed for \(name)")
        }
        return DeleteTopicHandle(pointer: pointer)
    }

    deinit { rd_kafka_DeleteTopic_destroy(pointer) }
}

/// `rd_kafka_ListConsumerGroupOffsets_t`: "which offsets has this group
/// committed for these partitions" (librdkafka takes one group per request).
/// librdkafka copies the partition list, so `partitions` need not outlive it.
final class ListGroupOffsetsHandle {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) { self.pointer = pointer }

    static func make(group: String, partitions: TopicPartitionList) throws(KafkaError) -> ListGroupOffsetsHandle {
        guard let pointer = rd_kafka_ListConsumerGroupOffsets_new(group, partitions.pointer) else {
            throw KafkaError(code: .other, message: "rd_kafka_ListConsumerGroupOffsets_new failed for group \(group)")
        }
        return ListGroupOffsetsHandle(pointer: pointer)
    }

    deinit { rd_kafka_ListConsumerGroupOffsets_destroy(pointer) }
}

/// `rd_kafka_AdminOptions_t`: timeouts for one admin request.
final class AdminOptionsHandle {
    let pointer: OpaquePointer

    private init(pointer: OpaquePointer) { self.pointer = pointer }

    /// `operationTimeoutMilliseconds` only for requests that change topics
    /// (create, delete): librdkafka refuses it for any other kind.
    static func make(
        client: KafkaHandle, operation: rd_kafka_admin_op_t, timeoutMilliseconds: Int32,
        operationTimeoutMilliseconds: Int32? = nil
    ) throws(KafkaError) -> AdminOptionsHandle {
        guard let pointer = rd_kafka_AdminOptions_new(client.pointer, operation) else {
            throw KafkaError(code: .other, message: "rd_kafka_AdminOptions_new failed")
        }
        let options = AdminOptionsHandle(pointer: pointer)
        // The request timeout bounds the whole exchange, including finding a
        // broker to send it to: without it an unreachable cluster would make
        // us wait for socket.timeout.ms (60 s).
        let (result, text) = withErrorBuffer {
            rd_kafka_AdminOptions_set_request_timeout(pointer, timeoutMilliseconds, $0, $1)
        }
        try check(result, "admin request timeout", detail: text)
        // How long the broker may wait for the topic to exist (or be gone)
        // everywhere before it answers. Tansu answers at once either way.
        if let operationTimeoutMilliseconds {
            let (result2, text2) = withErrorBuffer {
                rd_kafka_AdminOptions_set_operation_timeout(pointer, operationTimeoutMilliseconds, $0, $1)
            }
            try check(result2, "admin operation timeout", detail: text2)
        }
        return options
    }

    deinit { rd_kafka_AdminOptions_destroy(pointer) }
}

/// `rd_kafka_metadata_t`: a snapshot of brokers, topics and partitions.
final class MetadataHandle {
    let pointer: UnsafePointer<rd_kafka_metadata>

    private init(pointer: UnsafePointer<rd_kafka_metadata>) { self.pointer = pointer }

    /// Asks a broker for the metadata of every topic; the timeout also
    /// bounds the wait for a first connection.
    static func fetch(client: KafkaHandle, timeoutMilliseconds: Int32) throws(KafkaError) -> MetadataHandle {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(client.pointer, 1, nil, &metadata, timeoutMilliseconds)
        try check(err, "metadata request", detail: client.context.diagnostics)
        return MetadataHandle(pointer: metadata!)
    }

    /// topic name → (partition count, topic-level error)
    var topics: [String: (partitions: Int, error: Int32)] {
        var result: [String: (partitions: Int, error: Int32)] = [:]
        let metadata = pointer.pointee
        for index in 0..<Int(metadata.topic_cnt) {
            let topic = metadata.topics[index]
            result[String(cString: topic.topic)] = (Int(topic.partition_cnt), topic.err.rawValue)
        }
        return result
    }

    /// topic name → its partitions' ids, for the topics the cluster knows
    /// (no topic-level error). Ids, not a count: nothing in the protocol
    /// promises that they are 0..<count in order.
    var partitionIDs: [String: [Int32]] {
        var result: [String: [Int32]] = [:]
        let metadata = pointer.pointee
        for index in 0..<Int(metadata.topic_cnt) {
            let topic = metadata.topics[index]
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            result[String(cString: topic.topic)] = (0..<Int(topic.partition_cnt)).map { topic.partitions[$0].id }.sorted()
        }
        return result
    }

    deinit { rd_kafka_metadata_destroy(pointer) }
}
