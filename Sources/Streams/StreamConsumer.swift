import Common
import Foundation
import Kafka
import Logging
import Messaging
import Observability
import OrderedWork
import ServiceLifecycle
import Synchronization

/// A member of a consumer group that hands each record to a handler and
/// commits its offset only after the handler has returned: the handler's
/// transaction is committed first, so a crash between the two means the
/// record is read again (by whoever gets the partition), never skipped. The
/// handler makes a second reading harmless (an inbox, or a stored position).
///
/// A log cannot be nacked, and a record that waits blocks every record
/// behind it in its partition. So a record the handler refuses leaves the
/// partition at once:
/// - poison (`MessageFailure.poison`: it will never be processed) goes to
///   the dead-letter topic, with the reason in its headers;
/// - anything else is a failure that may pass (the database was busy, an
///   event came before the one it follows): it is handed over as a task to
///   `handOver` (stage 7: the service's own RabbitMQ queue, with stage 4's
///   retry ladder and dead letters). Without a hand-over, or while it
///   cannot take the record, the handler is tried again in place, with a
///   growing pause, and the partition waits.
///
/// One record at a time, or side by side (`sideBySide` > 1): up to that
/// many records are handled at once, the ones with the same key (one
/// order's events) one after another, in the order of their partition. Side
/// by side is what lets a burst of records share the work that does not
/// depend on each: their handlers' transactions share commits
/// (`GroupCommit.shared`), as stage 4's RabbitMQ consumers' do. A
/// partition's offset then moves only over records that are all done: it
/// is stored up to the oldest record still being handled, never past it.
/// A handler that keeps a position of its own per partition (a read model)
/// needs its partition's records one at a time, so that is the default.
///
/// The group's membership is librdkafka's. `reposition()` moves the
/// partitions this member owns to where `positions` says, without leaving
/// the group (a read model starting a rebuild reads from offset 0 again).
public final class StreamConsumer: Service, Sendable {
    public typealias Handler = @Sendable (KafkaConsumerMessage) async throws -> Void
    public typealias HandOver = @Sendable (KafkaConsumerMessage, _ reason: String) async throws -> Void
    /// The next offset to read of each partition, for `reposition()`.
    public typealias Positions = @Sendable ([KafkaTopicPartition]) -> [KafkaTopicPartition: Int64]

    let name: String
    let configuration: @Sendable () async throws -> KafkaConsumerConfiguration
    let handler: Handler
    let deadLetters: DeadLetterTopic
    let handOver: HandOver?
    let positions: Positions?
    let sideBySide: Int
    let logger: Logger
    private let repositionWanted = Atomic(false)
    private let joined = Flag()
    /// Side by side: where each partition's offset may move (see `PartitionProgress`).
    private let progress = PartitionProgress()

    /// Whether this member has been given its share of the partitions
    /// (possibly none) at least once. Until then it reacts to nothing: a
    /// service says so in its health (a join takes about 3 s).
    public var hasJoined: Bool { joined.isSet }
    private let current = Mutex<(consumer: KafkaConsumer, reading: Task<Void, any Error>)?>(nil)

    /// `configuration` is asked again at every (re)start.
    public init(
        name: String, configuration: @escaping @Sendable () async throws -> KafkaConsumerConfiguration,
        deadLetters: DeadLetterTopic, handOver: HandOver? = nil, positions: Positions? = nil, sideBySide: Int = 1,
        logger: Logger, handler: @escaping Handler
    ) {
        self.positions = positions
        self.sideBySide = max(1, sideBySide)
        self.name = name
        self.configuration = configuration
        self.handler = handler
        self.deadLetters = deadLetters
        self.handOver = handOver
        self.logger = logger
    }

    /// Moves every partition this member owns to the offset `positions`
    /// gives (0 where it gives none) and reads on from there. The record
    /// being processed is finished first. The member stays in the group:
    /// leaving and joining again would cost a rebalance of every member,
    /// and Tansu 0.6.0 lost groups whose members left and joined while a
    /// rebalance was under way (no partition assigned for minutes).
    public func reposition() {
        repositionWanted.store(true, ordering: .sequentiallyConsistent)
        current.withLock { $0?.reading.cancel() }
    }

    public func run() async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                var configuration = try await configuration()
                let told = configuration.onRebalance
                configuration.onRebalance = { [joined, progress] change in
                    switch change {
                    case .assigned: joined.set()
                    // Records of a partition given away may still be in
                    // hand; they can no longer move its offset (the new owner
                    // moves it), and if it comes back, it starts afresh.
                    case .revoked(let partitions): progress.forget(partitions)
                    }
                    told?(change)
                }
                let consumer = try KafkaConsumer.make(configuration: configuration, logger: logger)
                failures = 0
                defer { current.withLock { $0 = nil } }
                while true {
                    // Reading runs in a task of its own so that `reposition`
                    // can end it (cancelling it ends the message sequence and
                    // drops the batch it holds) while the consumer stays.
                    let reading = Task { try await consume(consumer) }
                    current.withLock { $0 = (consumer, reading) }
                    try await withTaskCancellationHandler {
                        try await reading.value
                    } onCancel: {
                        reading.cancel()
                    }
                    guard repositionWanted.exchange(false, ordering: .sequentiallyConsistent), !Task.isCancelled,
                          !Task.isShuttingDownGracefully, let positions else { break }
                    let owned = consumer.assignment
                    let wanted = positions(owned)
                    try await consumer.seek(Dictionary(uniqueKeysWithValues: owned.map { ($0, wanted[$0] ?? 0) }))
                    logger.notice("stream consumer \(name) moved its partitions", metadata: [
                        "positions": .string(owned.map { "\($0)@\(wanted[$0] ?? 0)" }.joined(separator: ", "))])
                }
                await consumer.close()
            } catch {
                // A consumer that cannot even be made (a bad setting, the
                // database that holds its positions failing): say so, wait, try again.
                failures += 1
                logger.error("stream consumer \(name) stopped; starting it again", metadata: ["error": "\(error)", "failures": "\(failures)"])
                try? await Task.sleep(for: .milliseconds(min(200 * failures, 5_000)))
            }
        }
    }

    private func consume(_ consumer: KafkaConsumer) async throws {
        if sideBySide > 1 { return try await consumeSideBySide(consumer) }
        for try await record in consumer.messages.cancelOnGracefulShutdown() {
            // Stopped before the record was dealt with: not committed, so
            // the group's next reader has it.
            guard await process(record) else { break }
            do { try done(with: record, in: consumer) } catch { break }
        }
    }

    private func consumeSideBySide(_ consumer: KafkaConsumer) async throws {
        let lines = KeyedLines()
        // Every record of an earlier reading is done with: start afresh
        // (after a reposition, the partitions are read from new offsets).
        let partitions = progress
        partitions.reset()
        // How far a partition is read past its oldest record still in hand
        // (one tried again in place, say): after a crash, at most this many
        // records are read again.
        let ahead = sideBySide * 16
        try await withThrowingTaskGroup(of: Void.self) { group in
            var running = 0
            for try await record in consumer.messages.cancelOnGracefulShutdown() {
                // At most `sideBySide` records at once: the next one is read
                // when one is done, so a slow handler slows the reading too.
                if running == sideBySide {
                    try await group.next()
                    running -= 1
                }
                while running > 0, partitions.held(record.topicPartition) >= ahead {
                    try await group.next()
                    running -= 1
                }
                // Its place in its key's line and in its partition's
                // progress are taken here, in the partition's order.
                partitions.received(record)
                // A record without a key waits for no other (the producer
                // chose its partition freely, so it has no order to keep).
                let turn = lines.join(record.keyString ?? "\(record.topicPartition)@\(record.offset)")
                running += 1
                group.addTask { [self] in
                    await turn.wait()
                    // Stopping: a record whose turn comes now is left for the
                    // next reader, as the one before it was (handling it
                    // would take it out of its key's order).
                    if Self.stopping {
                        turn.leave()
                        return
                    }
                    let handled = await process(record)
                    turn.leave()
                    // Stopped before it was dealt with: its partition's
                    // offset stays before it, so the next reader has it.
                    guard handled else { return }
                    partitions.finished(record) { partition, offset in
                        do {
                            try done(with: KafkaConsumerMessage(
                                topic: partition.topic, partition: partition.partition, offset: offset,
                                key: nil, value: nil, headers: [], timestampMilliseconds: nil), in: consumer)
                        } catch {
                            // The partition is no longer this member's, or the
                            // consumer is closing: the next reader reads it again.
                            logger.debug("offset not stored", metadata: ["partition": "\(partition)", "offset": "\(offset)", "error": "\(error)"])
                        }
                    }
                }
            }
        }
    }

    /// Records `record` and everything before it in its partition as
    /// processed. Called after its handler's transaction: with
    /// `autoCommitStoredEvery` set, recorded now and committed with the
    /// others within the interval (a commit per record cost the broker a
    /// write each, and under load its group coordinator fell behind on
    /// heartbeats); otherwise committed now, not waited for. A commit lost in
    /// a crash means the record is read again, which is harmless.
    private func done(with record: KafkaConsumerMessage, in consumer: KafkaConsumer) throws(KafkaError) {
        if consumer.configuration.autoCommitStoredEvery != nil {
            try consumer.store(record)
        } else {
            try consumer.commitAsync(record)
        }
    }

    /// Runs the handler until the record is dealt with: processed, sent to
    /// the dead-letter topic, or handed over (true). Never gives up on a
    /// record: moving past it without one of those would lose it; only a
    /// stop (cancellation, or the service's graceful shutdown) ends the
    /// attempts, with false, and the record is read again by the next reader.
    func process(_ record: KafkaConsumerMessage) async -> Bool {
        // A span of the trace the record carries, for every attempt at it.
        await Observability.withSpan("\(record.topic) in \(name)", ofKind: .consumer, continuing: EventRecords.traceparent(of: record)) {
            await processInSpan(record)
        }
    }

    private func processInSpan(_ record: KafkaConsumerMessage) async -> Bool {
        var attempt = 0
        while true {
            attempt += 1
            let reason: String
            do {
                try await handler(record)
                counted("handled")
                return true
            } catch let failure as MessageFailure {
                if case .poison(let why) = failure {
                    if await deadLetter(record, reason: why) { counted("dead_lettered"); return true }
                    reason = "could not write to the dead-letter topic"
                } else {
                    if Self.stopping { return false }
                    reason = failure.description
                    if await handOverTask(record, reason: reason) { counted("handed_over"); return true }
                }
            } catch {
                // Cut short by the stop (a cancelled sleep or query): not a
                // failure to hand over, the next reader has the record.
                if Self.stopping { return false }
                reason = "\(error)"
                if await handOverTask(record, reason: reason) { counted("handed_over"); return true }
            }
            if Self.stopping { return false }
            if attempt == 1 || attempt % 20 == 0 {
                logger.warning("stream consumer \(name): record not processed yet; trying again", metadata: [
                    "record": "\(record.topic)[\(record.partition)]@\(record.offset)", "reason": .string(reason), "attempt": "\(attempt)"])
            }
            try? await Task.sleep(for: .milliseconds(min(100 * attempt, 2_000)))
        }
    }

    /// Whether this member is stopping: reading is cancelled (a stop, a
    /// reposition) or the service is shutting down.
    private static var stopping: Bool { Task.isCancelled || Task.isShuttingDownGracefully }

    /// `shop_stream_records_total{group, outcome}`: records this member
    /// dealt with, by how: `handled`, `handed_over` (to its RabbitMQ queue,
    /// for a retry) or `dead_lettered`. The group is named without the
    /// deployment's namespace (`notification`).
    private func counted(_ outcome: String) {
        let group = name.split(separator: ".").last.map(String.init) ?? name
        Observability.counter("shop_stream_records_total", [("group", group), ("outcome", outcome)]).increment()
    }

    private func deadLetter(_ record: KafkaConsumerMessage, reason: String) async -> Bool {
        do {
            try await deadLetters.send(record, group: name, reason: reason)
            logger.error("poison record set aside in the dead-letter topic", metadata: [
                "record": "\(record.topic)[\(record.partition)]@\(record.offset)", "reason": .string(reason)])
            return true
        } catch {
            logger.error("could not write to the dead-letter topic", metadata: ["error": "\(error)"])
            return false
        }
    }

    private func handOverTask(_ record: KafkaConsumerMessage, reason: String) async -> Bool {
        guard let handOver else { return false }
        do {
            try await handOver(record, reason)
            logger.notice("record handed over for a retry", metadata: [
                "record": "\(record.topic)[\(record.partition)]@\(record.offset)", "reason": .string(reason)])
            return true
        } catch {
            logger.warning("could not hand the record over for a retry", metadata: ["error": "\(error)"])
            return false
        }
    }
}

/// Per partition, the offsets of the records being handled side by side,
/// oldest first: how far the partition's offset may move once one is done.
/// It moves over a run of finished records and stops at the first one still
/// being handled, so a crash rereads that one and the ones after it, never
/// skips it.
final class PartitionProgress: Sendable {
    private struct Entry {
        let offset: Int64
        var finished = false
    }

    private let partitions = Mutex<[KafkaTopicPartition: [Entry]]>([:])

    func received(_ record: KafkaConsumerMessage) {
        partitions.withLock { partitions in
            var line = partitions[record.topicPartition] ?? []
            // Read again from an earlier offset (a seek, or a rebalance
            // that went unseen): what is still in hand from before can no
            // longer move the offset.
            if let last = line.last, last.offset >= record.offset { line.removeAll() }
            line.append(Entry(offset: record.offset))
            partitions[record.topicPartition] = line
        }
    }

    /// Marks `record` finished and, if the run of finished records at its
    /// partition's head grew, calls `moveTo` with the newest of them: the
    /// record the partition's offset may now move past. Called under the
    /// lock, so that offsets are stored in the order they are decided here:
    /// two records finishing at once must not store 6 after 10. Found by
    /// offset: after a partition is read again, the earlier reading of a
    /// record may finish its new one's entry, which is right (the record is
    /// processed; the new reading's handler will find it so).
    func finished(_ record: KafkaConsumerMessage, moveTo: (KafkaTopicPartition, Int64) -> Void) {
        partitions.withLock { partitions in
            guard var line = partitions[record.topicPartition],
                  let index = line.firstIndex(where: { $0.offset == record.offset }) else { return }
            line[index].finished = true
            let run = line.prefix { $0.finished }
            if let newest = run.last { moveTo(record.topicPartition, newest.offset) }
            line.removeFirst(run.count)
            partitions[record.topicPartition] = line.isEmpty ? nil : line
        }
    }

    /// How many records of the partition are held: the oldest unfinished
    /// one and every one read after it.
    func held(_ partition: KafkaTopicPartition) -> Int {
        partitions.withLock { $0[partition]?.count ?? 0 }
    }

    /// Partitions given away: nothing in hand moves their offsets any more.
    func forget(_ given: [KafkaTopicPartition]) {
        partitions.withLock { partitions in
            for partition in given { partitions[partition] = nil }
        }
    }

    func reset() {
        partitions.withLock { $0 = [:] }
    }
}

/// A flag set once, from any thread (a rebalance callback).
final class Flag: Sendable {
    private let value = Atomic(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

/// The dead-letter topic (`<ns>.dead-letters`): records a consumer could
/// never process, each a copy of the original (same key and value) with
/// headers saying why, where it was and who gave up on it. Writing it is the
/// only way a consumer of a log can set a record aside; the operations desk
/// reads the topic into `GET /admin/dead-letters`.
public final class DeadLetterTopic: Sendable {
    public enum Header {
        public static let reason = "x-dead-letter-reason"
        public static let id = "x-dead-letter-id"
        public static let group = "x-consumer-group"
        public static let topic = "x-source-topic"
        public static let partition = "x-source-partition"
        public static let offset = "x-source-offset"
        public static let at = "x-dead-lettered-at"
    }

    public let topic: String
    let destination: KafkaDestination

    public init(topic: String, partitions: Int32, producer: KafkaProducerConfiguration, logger: Logger) {
        self.topic = topic
        destination = KafkaDestination(configuration: producer, topic: topic, partitions: partitions, logger: logger)
    }

    /// The same record dead-lettered twice by the same group (a crash before
    /// the commit) gets the same id, so the desk files it once.
    public static func letterId(group: String, record: KafkaConsumerMessage) -> String {
        "dlt_" + stableHash("\(group)|\(record.topic)|\(record.partition)|\(record.offset)")
    }

    func send(_ record: KafkaConsumerMessage, group: String, reason: String) async throws {
        var headers = record.headers.filter { !$0.name.hasPrefix("x-") }
        headers += [
            KafkaHeader(name: Header.reason, value: String(reason.prefix(2_000))),
            KafkaHeader(name: Header.id, value: Self.letterId(group: group, record: record)),
            KafkaHeader(name: Header.group, value: group),
            KafkaHeader(name: Header.topic, value: record.topic),
            KafkaHeader(name: Header.partition, value: String(record.partition)),
            KafkaHeader(name: Header.offset, value: String(record.offset)),
            KafkaHeader(name: Header.at, value: Timestamp.format(Date())),
        ]
        try await destination.send([KafkaProducerMessage(topic: topic, key: record.key, value: record.value, headers: headers)])
    }
}

/// 64-bit FNV-1a, in hex: a short, stable id from a string (not a security
/// measure; the inputs are not secret and collisions only merge two letters).
func stableHash(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    return String(hash, radix: 16)
}
