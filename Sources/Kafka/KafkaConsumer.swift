internal import CRdKafka
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// A member of a consumer group: reads the partitions the group gives it,
/// hands messages out as an `AsyncSequence`, and commits only what the
/// application says it has processed.
///
/// The usual loop:
///
///     for try await message in consumer.messages {
///         try await handle(message)
///         try await consumer.commit(message)   // offset + 1: "next to read"
///     }
///
/// Committing after processing gives at-least-once delivery: a crash
/// between the two means the message is read again by whoever gets the
/// partition next, never that it is skipped.
///
/// Group membership is driven by polling: librdkafka joins the group, and
/// calls the rebalance callback, only from inside a poll. Polls happen while
/// somebody waits in `messages`' `next()`.
///
/// Run it as a `Service` (or call `close()`): close makes a last commit of
/// everything committed with `commitAsync`, leaves the group (so the others
/// get its partitions at once, not after the session timeout) and ends the
/// message sequence. In a `ServiceGroup`, list the consumer *before* the
/// service that processes its messages, and iterate
/// `consumer.messages.cancelOnGracefulShutdown()` there: the group stops the
/// last listed first, so processing finishes its message (and commits it),
/// then the consumer closes. The other way round the group would wait
/// forever: the processor's loop only ends once the consumer is closed.
/// A consumer dropped without `close()` just disappears; the group notices
/// after `sessionTimeout`.
public final class KafkaConsumer: Service, Sendable {
    public let configuration: KafkaConsumerConfiguration
    private let handle: KafkaHandle
    private let queue: QueueHandle
    private let thread: ClientThread
    private let logger: Logger
    private let lifecycle = Mutex(Lifecycle.open)

    private enum Lifecycle { case open, closing, closed }

    private init(configuration: KafkaConsumerConfiguration, handle: KafkaHandle, queue: QueueHandle, logger: Logger) {
        self.configuration = configuration
        self.handle = handle
        self.queue = queue
        self.logger = logger
        // No idle work: the consumer only polls when asked for messages.
        // `wake` interrupts a poll in progress, so that a commit or close
        // submitted meanwhile runs at once instead of after the poll.
        self.thread = ClientThread(name: "kafka-consumer", wake: { rd_kafka_queue_yield(queue.pointer) })
    }

    /// Creates the consumer and subscribes it to `configuration.topics`.
    /// Joining the group happens on the first polls (about 3 s with the
    /// default session timeout).
    public static func make(
        configuration: KafkaConsumerConfiguration, logger: Logger = Logger(label: "kafka.consumer")
    ) throws(KafkaError) -> KafkaConsumer {
        try configuration.validate()
        try RdKafkaLibrary.requireSupported()
        let config = try ConfigHandle.make(configuration.properties)
        rd_kafka_conf_set_rebalance_cb(config.raw, rebalanceCallback)
        rd_kafka_conf_set_offset_commit_cb(config.raw, offsetCommitCallback)
        let group = ConsumerGroupState(
            groupID: configuration.groupID, startPosition: configuration.startPosition,
            onRebalance: configuration.onRebalance)
        let context = ClientContext(logger: logger, bootstrapServers: configuration.client.bootstrapServers, group: group)
        let handle = try KafkaHandle.make(type: RD_KAFKA_CONSUMER, config: config, context: context)
        // One queue for everything: messages, rebalances, errors and commit
        // results all arrive where our poll looks.
        try check(rd_kafka_poll_set_consumer(handle.pointer), "poll_set_consumer")
        let queue = try QueueHandle.consumerQueue(of: handle)
        let topics = try TopicPartitionList.make(topics: configuration.topics)
        try check(rd_kafka_subscribe(handle.pointer, topics.pointer), "subscribe to \(configuration.topics)")
        logger.info("kafka consumer subscribed", metadata: [
            "group": "\(configuration.groupID)", "topics": "\(configuration.topics.joined(separator: ","))",
        ])
        return KafkaConsumer(configuration: configuration, handle: handle, queue: queue, logger: logger)
    }

    deinit {
        thread.shutdown()
    }

    /// The partitions this member currently owns.
    public var assignment: [KafkaTopicPartition] {
        handle.context.group?.assignment ?? []
    }

    /// The messages of the assigned partitions, in order within each
    /// partition. Ends (returns nil) when the consumer is closed or the
    /// iterating task is cancelled; throws only for errors librdkafka cannot
    /// recover from (broker outages are waited out, and logged).
    public var messages: KafkaConsumerMessages { KafkaConsumerMessages(consumer: self) }

    var isOpen: Bool { lifecycle.withLock { $0 == .open } }

    /// Commits `message.offset + 1` for its partition (the group's "next
    /// message to read") and waits for the broker to confirm, at most
    /// `commitTimeout`.
    public func commit(_ message: KafkaConsumerMessage) async throws(KafkaError) {
        try await commit(offsets: [message.topicPartition: message.offset + 1])
    }

    /// Commits explicit "next offset to read" values and waits for the answer.
    public func commit(offsets: [KafkaTopicPartition: Int64]) async throws(KafkaError) {
        guard isOpen else { throw KafkaError.closed("commit") }
        let entries = offsets.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
        let client = handle
        let timeout = configuration.commitTimeout
        try await thread.run("commit") { () throws(KafkaError) in
            let list = try TopicPartitionList.make(entries)
            // Also "store" them: if this commit fails, close's final commit
            // (of stored offsets) tries again.
            _ = rd_kafka_offsets_store(client.pointer, list.pointer)
            try Self.commitAndWait(client: client, list: list, timeout: timeout, what: Self.describe(entries))
        }
    }

    /// Moves the read position of partitions this member owns: the next
    /// message handed out from each is the one at its offset. Messages
    /// fetched before the seek are not handed out (librdkafka drops them),
    /// but a `messages` iterator may still hold some in its batch: start a
    /// new one after seeking. Partitions not assigned here are ignored by
    /// librdkafka. Nothing is committed.
    public func seek(_ offsets: [KafkaTopicPartition: Int64], timeout: Duration = .seconds(10)) async throws(KafkaError) {
        guard isOpen else { throw KafkaError.closed("seek") }
        guard !offsets.isEmpty else { return }
        let entries = offsets.map { TopicPartitionOffset(topic: $0.key.topic, partition: $0.key.partition, offset: $0.value) }
        let client = handle
        try await thread.run("seek") { () throws(KafkaError) in
            let list = try TopicPartitionList.make(entries)
            try withExtendedLifetime(list) { () throws(KafkaError) in
                try check(consuming: rd_kafka_seek_partitions(client.pointer, list.pointer, timeout.millisecondsInt32), "seek \(Self.describe(entries))")
                for entry in TopicPartitionList.entries(of: list.pointer) where entry.error != 0 {
                    throw KafkaError(rd_kafka_resp_err_t(rawValue: entry.error), context: "seek \(entry.topic)[\(entry.partition)]@\(entry.offset)")
                }
            }
        }
    }

    /// Records `message.offset + 1` as processed, for the next automatic
    /// commit (`autoCommitStoredEvery`) or the one `close` makes. Sends
    /// nothing itself.
    public func store(_ message: KafkaConsumerMessage) throws(KafkaError) {
        guard isOpen else { throw KafkaError.closed("store") }
        let list = try TopicPartitionList.make([TopicPartitionOffset(topic: message.topic, partition: message.partition, offset: message.offset + 1)])
        try withExtendedLifetime(list) { () throws(KafkaError) in
            try check(rd_kafka_offsets_store(handle.pointer, list.pointer), "store \(message.topicPartition)@\(message.offset + 1)")
        }
    }

    /// Commits `message.offset + 1` without waiting: the result is logged.
    /// Cheaper when processing is fast; whatever fails here is committed
    /// again by `close()`, and in the worst case (a crash) messages after
    /// the last successful commit are read again.
    public func commitAsync(_ message: KafkaConsumerMessage) throws(KafkaError) {
        guard isOpen else { throw KafkaError.closed("commit") }
        let list = try TopicPartitionList.make([TopicPartitionOffset(topic: message.topic, partition: message.partition, offset: message.offset + 1)])
        _ = rd_kafka_offsets_store(handle.pointer, list.pointer)
        // Non-blocking (async = 1): fine to call from any task.
        try check(rd_kafka_commit(handle.pointer, list.pointer, 1), "commit \(message.topicPartition)@\(message.offset + 1)")
    }

    /// Commits what `commitAsync` stored, leaves the group and ends
    /// `messages`. Bounded by `closeTimeout`; calling it again does nothing.
    public func close() async {
        let first = lifecycle.withLock { state -> Bool in
            guard state == .open else { return false }
            state = .closing
            return true
        }
        guard first else { return }
        // A poll waiting for messages sees `closing` once woken.
        rd_kafka_queue_yield(queue.pointer)
        let client = handle
        let logger = self.logger
        let configuration = self.configuration
        _ = try? await thread.run("close") { () throws(KafkaError) in
            Self.closeOnThread(client: client, configuration: configuration, logger: logger)
        }
        thread.shutdown()
        lifecycle.withLock { $0 = .closed }
    }

    /// Service: runs until graceful shutdown (or cancellation), then closes.
    /// A processing loop over `messages` in the same service group ends by
    /// itself then, because the sequence ends.
    public func run() async throws {
        try? await gracefulShutdown()
        await close()
    }

    // MARK: On the consumer's thread

    /// Takes up to `batchSize` messages from librdkafka, waiting in slices of
    /// 100 ms. Returns an empty batch when it should step aside: the consumer
    /// is closing, the caller was cancelled, or another job (a commit) waits.
    func pollBatch() async throws(KafkaError) -> [KafkaConsumerMessage] {
        let cancelled = CancelFlag()
        let client = handle
        let queue = self.queue
        let thread = self.thread
        let logger = self.logger
        let batchSize = configuration.batchSize
        let result: Result<[KafkaConsumerMessage], KafkaError> = await withTaskCancellationHandler {
            do throws(KafkaError) {
                return .success(try await thread.run("poll") { () throws(KafkaError) -> [KafkaConsumerMessage] in
                    try Self.pollOnThread(
                        client: client, queue: queue, thread: thread, logger: logger, batchSize: batchSize,
                        shouldStop: { [self] in cancelled.isSet || !isOpen })
                })
            } catch {
                return .failure(error)
            }
        } onCancel: {
            cancelled.set()
            rd_kafka_queue_yield(queue.pointer)
        }
        return try result.get()
    }

    private static func pollOnThread(
        client: KafkaHandle, queue: QueueHandle, thread: ClientThread, logger: Logger, batchSize: Int,
        shouldStop: () -> Bool
    ) throws(KafkaError) -> [KafkaConsumerMessage] {
        let buffer = UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>.allocate(capacity: batchSize)
        defer { buffer.deallocate() }
        var messages: [KafkaConsumerMessage] = []
        // Topic handle → name, so that a batch of one topic makes one String.
        var lastTopic: (handle: OpaquePointer, name: String)?
        func topicName(_ handle: OpaquePointer?) -> String {
            guard let handle else { return "" }
            if let lastTopic, lastTopic.handle == handle { return lastTopic.name }
            let name = String(cString: rd_kafka_topic_name(handle))
            lastTopic = (handle, name)
            return name
        }
        func take(_ message: MessageHandle) throws(KafkaError) {
            let err = message.error
            if err == RD_KAFKA_RESP_ERR_NO_ERROR {
                messages.append(message.copy(topicName: topicName))
            } else if err == RD_KAFKA_RESP_ERR__FATAL {
                throw KafkaError(code: .fatal, message: "consumer: \(message.errorText)", rdkafkaCode: err.rawValue)
            } else if err != RD_KAFKA_RESP_ERR__PARTITION_EOF {
                // Broker gone, topic not there yet, …: librdkafka keeps
                // retrying by itself, so this is news, not a failure.
                let where_ = message.topic.map { " (\($0)[\(message.pointer.pointee.partition)])" } ?? ""
                logger.warning("kafka consumer: \(message.errorText)\(where_)")
                client.context.recordBrokerError(message.errorText)
            }
        }
        while messages.isEmpty {
            if shouldStop() || thread.hasPendingJobs { break }
            // Two steps, because rd_kafka_consume_batch_queue waits until
            // the batch is *full* or the timeout has passed: with a 100 ms
            // timeout a trickle of messages would each wait up to 100 ms.
            // So: wait for one message (or 100 ms), then take whatever else
            // is already there without waiting. Both calls also serve the
            // rebalance and offset-commit callbacks.
            guard let first = MessageHandle.take(rd_kafka_consume_queue(queue.pointer, 100)) else { continue }
            try take(first)
            let count = rd_kafka_consume_batch_queue(queue.pointer, 0, buffer, batchSize - 1)
            if count < 0 {
                throw KafkaError(rd_kafka_last_error(), context: "poll", detail: client.context.diagnostics)
            }
            messages.reserveCapacity(count + 1)
            for index in 0..<count {
                if let message = MessageHandle.take(buffer[index]) { try take(message) }
            }
        }
        return messages
    }

    private static func commitAndWait(
        client: KafkaHandle, list: TopicPartitionList?, timeout: Duration, what: String
    ) throws(KafkaError) {
        // rd_kafka_commit(…, async: 0) would wait as long as librdkafka
        // likes (a coordinator that is down: indefinitely). Posting the
        // result to a queue of our own lets us bound the wait.
        let results = try QueueHandle.make(on: client)
        try check(rd_kafka_commit_queue(client.pointer, list?.pointer, results.pointer, nil, nil), "commit \(what)")
        guard let event = results.poll(timeoutMilliseconds: timeout.millisecondsInt32) else {
            throw KafkaError(
                code: .timedOut,
                message: "commit \(what): no answer from the group coordinator within \(timeout) (\(client.context.diagnostics))")
        }
        try check(event.error, "commit \(what)", detail: event.errorString + "; " + client.context.diagnostics)
        for entry in TopicPartitionList.entries(of: rd_kafka_event_topic_partition_list(event.pointer)) where entry.error != 0 {
            throw KafkaError(rd_kafka_resp_err_t(rawValue: entry.error), context: "commit \(entry.topic)[\(entry.partition)]@\(entry.offset)")
        }
    }

    private static func closeOnThread(client: KafkaHandle, configuration: KafkaConsumerConfiguration, logger: Logger) {
        let deadline = ContinuousClock.now + configuration.closeTimeout
        // 1. A last commit of the stored offsets (what commitAsync recorded;
        //    sync commits are in there too, committing them again is harmless).
        do {
            try commitAndWait(client: client, list: nil, timeout: min(configuration.commitTimeout, configuration.closeTimeout / 2), what: "stored offsets")
        } catch where error.rdkafkaCode == RD_KAFKA_RESP_ERR__NO_OFFSET.rawValue {
            // Nothing was stored: nothing to commit.
        } catch {
            logger.warning("kafka consumer close: final commit failed: \(error.message)")
        }
        // 2. Leave the group. The close runs through a queue that we must
        //    serve (the rebalance callback revokes our partitions on it);
        //    serving it ourselves, in slices, is what bounds the time.
        guard let closing = try? QueueHandle.make(on: client) else { return }
        do {
            try check(consuming: rd_kafka_consumer_close_queue(client.pointer, closing.pointer), "consumer close")
        } catch {
            logger.warning("kafka consumer close: \(error.message)")
            return
        }
        // Closing forwards the consumer's queue to this one, so messages
        // fetched but never handed out arrive here too. They must be taken
        // with a call that can return messages: a callbacks-only poll
        // (rd_kafka_queue_poll_callback) aborts the process on a message
        // (librdkafka asserts `res != RD_KAFKA_OP_RES_PASS`). We drop them:
        // they were not committed, so the group's next owner reads them.
        let buffer = UnsafeMutablePointer<UnsafeMutablePointer<rd_kafka_message_t>?>.allocate(capacity: 100)
        defer { buffer.deallocate() }
        while rd_kafka_consumer_closed(client.pointer) == 0 && ContinuousClock.now < deadline {
            let count = rd_kafka_consume_batch_queue(closing.pointer, 100, buffer, 100)
            for index in 0..<max(count, 0) {
                _ = MessageHandle.take(buffer[index])  // freed right away
            }
        }
        if rd_kafka_consumer_closed(client.pointer) == 0 {
            logger.warning("kafka consumer close did not finish within \(configuration.closeTimeout); the group drops this member after its session timeout (\(client.context.diagnostics))")
        } else {
            logger.info("kafka consumer closed", metadata: ["group": "\(configuration.groupID)"])
        }
    }

    static func describe(_ entries: [TopicPartitionOffset]) -> String {
        entries.map { "\($0.topic)[\($0.partition)]@\($0.offset)" }.sorted().joined(separator: ",")
    }
}

/// `KafkaConsumer.messages`.
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerMessage
    public typealias Failure = KafkaError

    let consumer: KafkaConsumer

    public func makeAsyncIterator() -> Iterator { Iterator(consumer: consumer) }

    /// Takes messages from the consumer in batches and hands them out one at
    /// a time: one thread hop per batch, not per message.
    public struct Iterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer
        private var buffer: [KafkaConsumerMessage] = []
        private var index = 0

        init(consumer: KafkaConsumer) { self.consumer = consumer }

        public mutating func next() async throws(KafkaError) -> KafkaConsumerMessage? {
            try await next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(KafkaError) -> KafkaConsumerMessage? {
            while true {
                // Once closing, stop handing out even buffered messages: they
                // were not committed, so the next owner reads them.
                guard consumer.isOpen, !Task.isCancelled else { return nil }
                if index < buffer.count {
                    index += 1
                    return buffer[index - 1]
                }
                do {
                    buffer = try await consumer.pollBatch()
                    index = 0
                } catch where error.code == .closed {
                    return nil
                }
            }
        }
    }
}

/// Set from a cancellation handler (any thread), read by the poll loop.
final class CancelFlag: Sendable {
    private let flag = Atomic(false)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

/// What the rebalance callback reads and updates: the current assignment,
/// where newly assigned partitions start, and which partitions a replay has
/// already rewound.
final class ConsumerGroupState: Sendable {
    let groupID: String
    let startPosition: KafkaConsumerConfiguration.StartPosition
    let onRebalance: (@Sendable (KafkaRebalance) -> Void)?
    private let state = Mutex<(assigned: [KafkaTopicPartition], rewound: Set<KafkaTopicPartition>)>(([], []))

    init(groupID: String, startPosition: KafkaConsumerConfiguration.StartPosition, onRebalance: (@Sendable (KafkaRebalance) -> Void)?) {
        self.groupID = groupID
        self.startPosition = startPosition
        self.onRebalance = onRebalance
    }

    var assignment: [KafkaTopicPartition] { state.withLock { $0.assigned } }

    /// Where each of `partitions`, just assigned, starts when that is not
    /// simply the group's committed offset. Called from the rebalance
    /// callback, so `.stored`'s provider runs on the consumer's thread.
    func startOffsets(for partitions: [KafkaTopicPartition]) -> [KafkaTopicPartition: Int64] {
        switch startPosition {
        case .committed:
            return [:]
        case .beginning:
            return Dictionary(uniqueKeysWithValues: firstRewind(of: partitions).map { ($0, RdKafkaConstants.offsetBeginning) })
        case .stored(let provider):
            // Asked every time: the read model's database moves on between
            // assignments. Only real offsets (>= 0) of partitions we were
            // given count; librdkafka's negative "logical" offsets (-2
            // beginning, -1 end, -1001 none) are not positions a read model
            // stores, so a negative answer means "no answer".
            let answers = provider(partitions)
            var starts: [KafkaTopicPartition: Int64] = [:]
            for partition in partitions {
                if let offset = answers[partition], offset >= 0 { starts[partition] = offset }
            }
            return starts
        }
    }

    /// Marks the partitions as rewound; returns those that were not yet.
    private func firstRewind(of partitions: [KafkaTopicPartition]) -> Set<KafkaTopicPartition> {
        state.withLock { state in
            let fresh = Set(partitions).subtracting(state.rewound)
            state.rewound.formUnion(fresh)
            return fresh
        }
    }

    func assigned(_ partitions: [KafkaTopicPartition], incremental: Bool) {
        state.withLock { state in
            state.assigned = incremental ? Array(Set(state.assigned).union(partitions)) : partitions
            state.assigned.sort { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
        }
    }

    func revoked(_ partitions: [KafkaTopicPartition], incremental: Bool) {
        state.withLock { state in
            state.assigned = incremental ? state.assigned.filter { !partitions.contains($0) } : []
        }
    }
}

/// Called by librdkafka, from inside our poll (so on the consumer's
/// thread), whenever the group hands this member partitions or takes them
/// away. Setting a rebalance callback means we must apply the change
/// ourselves: that is our chance to choose where each partition starts (a
/// replay, or offsets stored with the data) and to log it.
private let rebalanceCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = {
    client, err, partitions, opaque in
    guard let client, let context = ClientContext.from(opaque), let group = context.group else { return }
    let logger = context.logger
    // Eager protocols (range, roundrobin: the default) hand out the whole
    // assignment each time; the cooperative one only the difference.
    let cooperative = rd_kafka_rebalance_protocol(client).map { String(cString: $0) } == "COOPERATIVE"
    let entries = TopicPartitionList.entries(of: partitions)
    let topicPartitions = entries.map { KafkaTopicPartition(topic: $0.topic, partition: $0.partition) }
    let names = topicPartitions.map(\.description).joined(separator: ", ")

    switch err {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        // An explicit start offset in the assignment wins over the committed
        // one: this is the seek to offset 0 of a replay, or to the position
        // a read model stored. Partitions left alone (offset "invalid", as
        // librdkafka hands them to us) resume from the group's commit.
        let starts = group.startOffsets(for: topicPartitions)
        if !starts.isEmpty, let list = partitions, let elements = list.pointee.elems {
            for index in 0..<Int(list.pointee.cnt) {
                if let offset = starts[topicPartitions[index]] { elements[index].offset = offset }
            }
        }
        if cooperative {
            if let error = rd_kafka_incremental_assign(client, partitions) {
                logger.error("kafka rebalance: assign failed: \(String(cString: rd_kafka_error_string(error)))")
                rd_kafka_error_destroy(error)
            }
        } else {
            let result = rd_kafka_assign(client, partitions)
            if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.error("kafka rebalance: assign failed: \(String(cString: rd_kafka_err2str(result)))")
            }
        }
        group.assigned(topicPartitions, incremental: cooperative)
        logger.info("kafka rebalance: assigned [\(names)]", metadata: [
            "group": "\(group.groupID)",
            // -2 is "the beginning" (a replay); other numbers are offsets.
            "starts": "\(starts.map { "\($0.key)@\($0.value)" }.sorted().joined(separator: ", "))",
        ])
        group.onRebalance?(.assigned(topicPartitions))

    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        if cooperative {
            if let error = rd_kafka_incremental_unassign(client, partitions) {
                rd_kafka_error_destroy(error)
            }
        } else {
            _ = rd_kafka_assign(client, nil)
        }
        group.revoked(topicPartitions, incremental: cooperative)
        logger.info("kafka rebalance: revoked [\(names)]", metadata: ["group": "\(group.groupID)"])
        group.onRebalance?(.revoked(topicPartitions))

    default:
        // librdkafka's advice for an error here: drop the assignment and let
        // the next rebalance sort it out.
        logger.error("kafka rebalance error: \(String(cString: rd_kafka_err2str(err)))", metadata: ["group": "\(group.groupID)"])
        _ = rd_kafka_assign(client, nil)
        group.revoked(group.assignment, incremental: false)
    }
}

/// Results of `commitAsync` (served from our poll): only failures matter.
private let offsetCommitCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, err, offsets, opaque in
    guard let context = ClientContext.from(opaque) else { return }
    let entries = TopicPartitionList.entries(of: offsets)
    if err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET {
        context.logger.warning("kafka async commit of \(KafkaConsumer.describe(entries)) failed: \(String(cString: rd_kafka_err2str(err)))")
    } else {
        context.logger.debug("kafka committed \(KafkaConsumer.describe(entries))")
    }
}
