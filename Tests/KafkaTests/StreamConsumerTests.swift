import Foundation
import Synchronization
import TestSupport
import Testing
@testable import Kafka
@testable import Streams

/// Stages 7 and 8's consumer (`StreamConsumer`) handling a partition's
/// records side by side: one key's records in order, other keys past a
/// record that is stuck, and the group's committed offset never past the
/// oldest record not yet handled, so a member that stops rereads it.
extension KafkaIntegrationTests {
    @Suite struct SideBySide {
        typealias Env = KafkaTestEnvironment

        /// What the handlers began, and finished, in order.
        final class Journal: Sendable {
            private let state = Mutex((began: [String](), handled: [String](), running: 0, mostAtOnce: 0))
            func started(_ value: String?) {
                state.withLock { $0.began.append(value ?? ""); $0.running += 1; $0.mostAtOnce = max($0.mostAtOnce, $0.running) }
            }
            func finished(_ value: String?) { state.withLock { $0.running -= 1; if let value { $0.handled.append(value) } } }
            var began: [String] { state.withLock { $0.began } }
            var handled: [String] { state.withLock { $0.handled } }
            var mostAtOnce: Int { state.withLock { $0.mostAtOnce } }
        }

        struct NotYet: Error {}

        static func member(group: String, topic: String, journal: Journal, refusing refused: String?) -> StreamConsumer {
            var configuration = Env.consumerConfiguration(group: group, topic: topic)
            configuration.autoCommitStoredEvery = .milliseconds(200)
            let deadLetters = DeadLetterTopic(
                topic: topic + ".dead-letters", partitions: 1,
                producer: KafkaProducerConfiguration(bootstrapServers: Env.bootstrapServers, clientID: "kafka-tests"), logger: Env.logger)
            return StreamConsumer(
                name: group, configuration: { [configuration] in configuration }, deadLetters: deadLetters, sideBySide: 8, logger: Env.logger
            ) { record in
                journal.started(record.valueString)
                // Long enough that the records of different keys overlap.
                try await Task.sleep(for: .milliseconds(20))
                // A failure that may pass (no hand-over here): tried again
                // in place, and its key's later records wait behind it.
                if record.valueString == refused {
                    journal.finished(nil)
                    throw NotYet()
                }
                journal.finished(record.valueString)
            }
        }

        static func until(_ what: String, within limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws {
            let deadline = ContinuousClock.now + limit
            while try await !condition() {
                guard ContinuousClock.now < deadline else { throw EnvironmentError(description: "not within \(limit): \(what)") }
                try await Task.sleep(for: .milliseconds(50))
            }
        }

        static func values(_ handled: [String], key: String) -> [String] { handled.filter { $0.hasPrefix(key) } }

        /// Each value once, where it first came (a record may be read twice).
        static func firsts(_ values: [String]) -> [String] {
            var seen = Set<String>()
            return values.filter { seen.insert($0).inserted }
        }

        /// Twelve records in one partition, keys a, b, c in turn: a0 b0 c0
        /// a1 b1 c1 … at offsets 0 to 11. b0 (offset 1) fails until the
        /// second member: a's and c's records are all handled meanwhile, b's
        /// wait behind b0, and the group commits 1 (b0 is next), not 12.
        /// Stopped there, the first member's work on b0 is lost; the second
        /// reads from b0 again and handles b0 b1 b2 b3, in that order.
        @Test func otherKeysPassAStuckRecordAndTheOffsetWaitsForIt() async throws {
            let topic = try await Env.createTopic("side-by-side", partitions: 1)
            let group = Env.uniqueName("side-by-side")
            let partition = KafkaTopicPartition(topic: topic, partition: 0)
            let keys = ["a", "b", "c"]
            let producer = try Env.makeProducer()
            let reports = try await producer.send((0..<12).map { n in
                KafkaProducerMessage(topic: topic, partition: 0, key: keys[n % 3], value: "\(keys[n % 3])\(n / 3)")
            })
            await producer.shutdown()
            #expect(reports.map(\.offset) == Array(0..<12))
            let admin = try Env.makeAdmin()
            defer { admin.close() }

            let first = Journal()
            let stuck = Self.member(group: group, topic: topic, journal: first, refusing: "b0")
            let running = Task { try await stuck.run() }
            try await Self.until("a's and c's records handled past the stuck b0") { Self.values(first.handled, key: "a").count + Self.values(first.handled, key: "c").count == 8 }
            #expect(Self.values(first.handled, key: "a") == ["a0", "a1", "a2", "a3"], "one key's records in order")
            #expect(Self.values(first.handled, key: "c") == ["c0", "c1", "c2", "c3"])
            #expect(Self.values(first.handled, key: "b").isEmpty, "b's later records wait behind b0")
            #expect(first.mostAtOnce > 1, "records of different keys handled at once")
            #expect(first.mostAtOnce <= 8, "never more than sideBySide at once")
            // a0 (offset 0) is done: the offset may move to 1, never past b0.
            try await Self.until("the group's committed offset at b0") { try await admin.committedOffsets(group: group, partitions: [partition]) == [partition: 1] }
            running.cancel()
            try await running.value
            #expect(Set(Self.values(first.began, key: "b")) == ["b0"], "stopped while b0 was tried again: b1 to b3 never began")

            #expect(try await admin.committedOffsets(group: group, partitions: [partition]) == [partition: 1], "stopped, still before b0")
            let second = Journal()
            let next = Self.member(group: group, topic: topic, journal: second, refusing: nil)
            let again = Task { try await next.run() }
            try await Self.until("every record from b0 on handled by the second member") { Set(second.handled).count == 11 }
            #expect(Self.firsts(Self.values(second.handled, key: "b")) == ["b0", "b1", "b2", "b3"], "b0 read again, not skipped; then b's others, in order")
            #expect(Set(second.handled) == Set((1..<12).map { "\(keys[$0 % 3])\($0 / 3)" }), "everything from offset 1 on, read again")
            try await Self.until("the group's committed offset at the end") { try await admin.committedOffsets(group: group, partitions: [partition]) == [partition: 12] }
            again.cancel()
            try await again.value
        }
    }
}
