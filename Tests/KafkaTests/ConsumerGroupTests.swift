import Foundation
import Synchronization
import Testing
@testable import Kafka

/// Committed offsets, resuming, replaying.
extension KafkaIntegrationTests {
    @Suite struct ConsumerGroup {
        typealias Env = KafkaTestEnvironment

        static func produce(_ count: Int, to topic: String, from start: Int = 0) async throws {
            let producer = try Env.makeProducer()
            _ = try await producer.send((start..<(start + count)).map {
                KafkaProducerMessage(topic: topic, key: "k\($0 % 5)", value: "m\($0)")
            })
            await producer.shutdown()
        }

        @Test func resumesFromTheCommittedOffsetAfterARestart() async throws {
            let topic = try await Env.createTopic("resume", partitions: 2)
            let group = Env.uniqueName("billing")
            try await Self.produce(30, to: topic)

            // First life: process 12 messages, committing each, then stop.
            let rebalances = Mutex<[KafkaRebalance]>([])
            var configuration = Env.consumerConfiguration(group: group, topic: topic)
            configuration.onRebalance = { event in rebalances.withLock { $0.append(event) } }
            let first = try KafkaConsumer.make(configuration: configuration, logger: Env.logger)
            let firstBatch = try await collect(12, from: first)
            #expect(Set(first.assignment.map(\.partition)) == [0, 1])
            await first.close()
            #expect(first.assignment.isEmpty, "close revokes the assignment")
            #expect(rebalances.withLock { $0 }.first == .assigned([
                KafkaTopicPartition(topic: topic, partition: 0), KafkaTopicPartition(topic: topic, partition: 1),
            ]))
            #expect(rebalances.withLock { $0 }.contains { if case .revoked = $0 { true } else { false } })

            // Second life, a new instance in the same group: the other 18,
            // none of the first 12 again.
            let second = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            var secondBatch: [KafkaConsumerMessage] = []
            for try await message in second.messages {
                secondBatch.append(message)
                // The asynchronous commit this time: close commits whatever
                // it had not finished.
                try second.commitAsync(message)
                if secondBatch.count == 18 { break }
            }
            await second.close()

            let firstValues = Set(firstBatch.compactMap(\.valueString))
            let secondValues = Set(secondBatch.compactMap(\.valueString))
            #expect(firstValues.isDisjoint(with: secondValues), "reprocessed: \(firstValues.intersection(secondValues))")
            #expect(firstValues.union(secondValues) == Set((0..<30).map { "m\($0)" }), "lost messages")
            // Per partition, the second life starts right after the first's last commit.
            for partition: Int32 in [0, 1] {
                let lastFirst = firstBatch.filter { $0.partition == partition }.map(\.offset).max() ?? -1
                let firstSecond = secondBatch.filter { $0.partition == partition }.map(\.offset).min()
                if let firstSecond { #expect(firstSecond == lastFirst + 1, "partition \(partition)") }
            }

            // Third life: everything is committed, so only what is new arrives.
            try await Self.produce(1, to: topic, from: 1000)
            let third = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            let thirdBatch = try await collect(1, from: third)
            await third.close()
            #expect(thirdBatch.map(\.valueString) == ["m1000"])
        }

        @Test func replaysFromTheBeginning() async throws {
            let topic = try await Env.createTopic("replay", partitions: 3)
            let group = Env.uniqueName("projections")
            try await Self.produce(24, to: topic)

            // The group reads and commits everything.
            let reader = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            _ = try await collect(24, from: reader)
            await reader.close()

            // Replay in the same group: rewound to offset 0 despite the commits.
            var replay = Env.consumerConfiguration(group: group, topic: topic)
            replay.startPosition = .beginning
            let replayer = try KafkaConsumer.make(configuration: replay, logger: Env.logger)
            let replayed = try await collect(24, from: replayer)
            await replayer.close()
            #expect(Set(replayed.compactMap(\.valueString)) == Set((0..<24).map { "m\($0)" }))
            for partition: Int32 in [0, 1, 2] {
                let offsets = replayed.filter { $0.partition == partition }.map(\.offset)
                #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(partition) replayed from 0 in order")
            }

            // A fresh group id with auto.offset.reset=earliest reads it all too.
            let fresh = try KafkaConsumer.make(
                configuration: Env.consumerConfiguration(group: Env.uniqueName("rebuild"), topic: topic), logger: Env.logger)
            let all = try await collect(24, from: fresh, commit: false)
            await fresh.close()
            #expect(all.count == 24)

            // The replay committed as it went: the group resumes after it.
            try await Self.produce(1, to: topic, from: 500)
            let after = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            let next = try await collect(1, from: after)
            await after.close()
            #expect(next.map(\.valueString) == ["m500"])
        }

        /// Closing while librdkafka still holds fetched, unread messages:
        /// close must drop them (not crash on them) and commit nothing for
        /// them, so the next member starts right after the last commit.
        @Test func closesWithUnreadMessagesBuffered() async throws {
            let topic = try await Env.createTopic("close-buffered", partitions: 1)
            let group = Env.uniqueName("close")
            try await Self.produce(2_000, to: topic)
            for round in 0..<3 {
                let consumer = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
                let read = try await collect(1, from: consumer)
                #expect(read.first?.offset == Int64(round))
                await consumer.close()
            }
        }
    }
}
