import Foundation
import Synchronization
import TestSupport
import Testing
@testable import Kafka

/// Where a consumer starts, and what a group has committed, seen from
/// outside: `.stored` start positions, `KafkaAdmin.committedOffsets`,
/// `partitions(of:)` and `deleteTopics`.
extension KafkaIntegrationTests {
    @Suite struct Offsets {
        typealias Env = KafkaTestEnvironment

        /// `count` messages "m<partition>-<n>" to one partition each, in
        /// order, so that offsets are known in advance: partition p holds
        /// m<p>-0 at offset 0, m<p>-1 at 1, and so on.
        static func produce(_ count: Int, to topic: String, partition: Int32, from start: Int = 0) async throws {
            let producer = try Env.makeProducer()
            let reports = try await producer.send((start..<(start + count)).map {
                KafkaProducerMessage(topic: topic, partition: partition, key: "k", value: "m\(partition)-\($0)")
            })
            await producer.shutdown()
            #expect(reports.map(\.offset) == (start..<(start + count)).map(Int64.init), "offsets on \(topic)[\(partition)]")
        }

        static func offsets(_ messages: [KafkaConsumerMessage], on partition: Int32) -> [Int64] {
            messages.filter { $0.partition == partition }.map(\.offset)
        }

        /// The group committed 10 on both partitions; the read model's own
        /// database says 4 for partition 0 and knows nothing of partition 1.
        /// Partition 0 is read again from 4, partition 1 goes on from 10.
        @Test func storedOffsetsWinOverTheGroupsCommits() async throws {
            let topic = try await Env.createTopic("stored", partitions: 2)
            let group = Env.uniqueName("read-model")
            let p0 = KafkaTopicPartition(topic: topic, partition: 0)
            let p1 = KafkaTopicPartition(topic: topic, partition: 1)
            try await Self.produce(10, to: topic, partition: 0)
            try await Self.produce(10, to: topic, partition: 1)

            // The group reads everything and commits it.
            let reader = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            _ = try await collect(20, from: reader)
            await reader.close()
            let admin = try Env.makeAdmin()
            defer { admin.close() }
            #expect(try await admin.committedOffsets(group: group, partitions: [p0, p1]) == [p0: 10, p1: 10])

            try await Self.produce(5, to: topic, partition: 1, from: 10)
            let asked = Mutex<[[KafkaTopicPartition]]>([])
            var configuration = Env.consumerConfiguration(group: group, topic: topic)
            configuration.startPosition = .stored { partitions in
                asked.withLock { $0.append(partitions) }
                return [p0: 4]
            }
            let readModel = try KafkaConsumer.make(configuration: configuration, logger: Env.logger)
            let read = try await collect(6 + 5, from: readModel)
            await readModel.close()

            #expect(asked.withLock { $0 }.map(Set.init) == [[p0, p1]], "asked once, for both partitions")
            #expect(Self.offsets(read, on: 0) == Array(4..<10), "partition 0 from the stored 4, despite the commit of 10")
            #expect(Self.offsets(read, on: 1) == Array(10..<15), "partition 1, with no stored answer, from the committed 10")
            #expect(read.filter { $0.partition == 0 }.map(\.valueString) == (4..<10).map { "m0-\($0)" })
        }

        /// `.beginning` rewinds once per instance; `.stored` asks again on
        /// every assignment. A rebalance (a second member joins) hands the
        /// first member one partition again, and it starts there from what
        /// its database says at that moment, not from where it was.
        @Test func storedOffsetsAreAskedOnEveryAssignment() async throws {
            let topic = try await Env.createTopic("stored-rebalance", partitions: 2)
            let group = Env.uniqueName("read-model")
            let all = [KafkaTopicPartition(topic: topic, partition: 0), KafkaTopicPartition(topic: topic, partition: 1)]
            try await Self.produce(6, to: topic, partition: 0)
            try await Self.produce(6, to: topic, partition: 1)

            // The read model's "database": empty at first, so both
            // partitions start at the group's position (none: the beginning).
            let database = Mutex<[KafkaTopicPartition: Int64]>([:])
            let asked = Mutex<[[KafkaTopicPartition]]>([])
            var configuration = Env.consumerConfiguration(group: group, topic: topic)
            configuration.startPosition = .stored { partitions in
                asked.withLock { $0.append(partitions) }
                return database.withLock { $0 }
            }
            let first = try KafkaConsumer.make(configuration: configuration, logger: Env.logger)
            // Nothing is committed: the group's position stays "none".
            let before = try await collect(12, from: first, commit: false)
            #expect(Self.offsets(before, on: 0) == Array(0..<6))
            #expect(Self.offsets(before, on: 1) == Array(0..<6))
            // Say the database was restored from a backup taken at offset 3.
            database.withLock { $0 = [all[0]: 3, all[1]: 3] }

            // A second member (an ordinary one) joins: the group rebalances.
            // Both keep polling meanwhile, which is what lets the rebalance
            // run (callbacks are served from the poll).
            let second = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            async let secondRead = collect(6, from: second, commit: false)
            let firstRead = try await collect(3, from: first, commit: false)
            let secondMessages = try await secondRead
            await first.close()
            await second.close()

            let calls = asked.withLock { $0 }
            #expect(calls.count >= 2, "asked on the rebalance too: \(calls)")
            #expect(calls.first.map(Set.init) == Set(all))
            let kept = try #require(Set(firstRead.map(\.partition)).first)
            #expect(Set(firstRead.map(\.partition)) == [kept], "one partition after the rebalance")
            #expect(calls.last == [KafkaTopicPartition(topic: topic, partition: kept)], "the last assignment is the partition it kept")
            #expect(firstRead.map(\.offset) == [3, 4, 5], "from the database's 3, not from 6 where it was")
            // The newcomer has no stored position: it starts where the group
            // is, which is nowhere (nothing committed), so at the beginning.
            #expect(secondMessages.map(\.partition).allSatisfy { $0 != kept })
            #expect(secondMessages.map(\.offset) == Array(0..<6))
        }

        /// committedOffsets asks the coordinator without joining: the member
        /// reading the group keeps its partitions (no rebalance) and goes on
        /// consuming while it is asked again and again, and the answers are
        /// what it committed. confluent-kafka reads the same.
        @Test func committedOffsetsReadAGroupFromOutside() async throws {
            let topic = try await Env.createTopic("committed", partitions: 3)
            let group = Env.uniqueName("watched")
            try await Self.produce(4, to: topic, partition: 0)
            try await Self.produce(2, to: topic, partition: 1)
            // Partition 2 gets nothing, so the group never commits there.

            let admin = try Env.makeAdmin()
            defer { admin.close() }
            let partitions = try await admin.partitions(of: [topic])
            #expect(try await admin.committedOffsets(group: group, partitions: partitions).isEmpty, "nothing committed yet")

            let rebalances = Mutex<[KafkaRebalance]>([])
            var configuration = Env.consumerConfiguration(group: group, topic: topic)
            configuration.onRebalance = { event in rebalances.withLock { $0.append(event) } }
            let member = try KafkaConsumer.make(configuration: configuration, logger: Env.logger)
            _ = try await collect(6, from: member)
            #expect(Set(member.assignment) == Set(partitions))
            let p0 = partitions[0], p1 = partitions[1]
            #expect(try await admin.committedOffsets(group: group, partitions: partitions) == [p0: 4, p1: 2])

            // One more message per round, on partitions 0 and 1 in turn.
            var next: [KafkaTopicPartition: Int64] = [p0: 4, p1: 2]
            for round in 0..<8 {
                let partition = partitions[round % 2]
                try await Self.produce(1, to: topic, partition: partition.partition, from: Int(next[partition]!))
                // Asked while the member is fetching and committing.
                async let during = admin.committedOffsets(group: group, partitions: partitions)
                let read = try await collect(1, from: member)
                let answer = try await during
                #expect(read.map(\.offset) == [next[partition]!] && read.map(\.topicPartition) == [partition], "round \(round)")
                // Either side of the member's commit, never anything else.
                #expect(answer == next || answer == next.merging([partition: next[partition]! + 1]) { $1 }, "round \(round): \(answer)")
                next[partition]! += 1
                #expect(try await admin.committedOffsets(group: group, partitions: partitions) == next, "round \(round)")
            }

            #expect(Set(member.assignment) == Set(partitions), "still the only member, with every partition")
            #expect(rebalances.withLock { $0 }.count == 1, "no rebalance: \(rebalances.withLock { $0 })")
            let reference = try await ConfluentKafka.committed(group: group, topic: topic, partitions: 3)
            await member.close()
            #expect(reference == [0: 8, 1: 6], "confluent-kafka's view")
            #expect(try await admin.committedOffsets(group: group, partitions: partitions) == [p0: 8, p1: 6])
            // A group nobody ever used has committed nothing: no error, no entries.
            #expect(try await admin.committedOffsets(group: Env.uniqueName("never"), partitions: partitions).isEmpty)
        }

        @Test func partitionsOfTopicsComeFromMetadata() async throws {
            let three = try await Env.createTopic("three", partitions: 3)
            let one = try await Env.createTopic("one", partitions: 1)
            let admin = try Env.makeAdmin()
            defer { admin.close() }
            let listed = try await admin.partitions(of: [three, one, three])
            #expect(listed == [
                KafkaTopicPartition(topic: three, partition: 0), KafkaTopicPartition(topic: three, partition: 1),
                KafkaTopicPartition(topic: three, partition: 2), KafkaTopicPartition(topic: one, partition: 0),
            ])
            #expect(try await admin.partitions(of: []).isEmpty)

            let missing = Env.uniqueName("missing")
            let error = await #expect(throws: KafkaError.self) { _ = try await admin.partitions(of: [one, missing]) }
            #expect(error?.code == .unknownTopicOrPartition)
            #expect(error?.message.contains(missing) == true, "\(error?.message ?? "")")
            #expect(error?.message.contains(one) == false, "names only the missing one: \(error?.message ?? "")")
        }

        /// Tansu supports DeleteTopics: the topic leaves the metadata, and a
        /// topic created again under the same name starts empty, without
        /// the old group's commits.
        @Test func deleteTopicsRemovesThemAndIgnoresUnknownOnes() async throws {
            let topic = try await Env.createTopic("doomed", partitions: 2)
            let group = Env.uniqueName("doomed")
            try await Self.produce(3, to: topic, partition: 0)
            let reader = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            _ = try await collect(3, from: reader)
            await reader.close()

            let admin = try Env.makeAdmin()
            defer { admin.close() }
            let p0 = KafkaTopicPartition(topic: topic, partition: 0)
            #expect(try await admin.committedOffsets(group: group, partitions: [p0]) == [p0: 3])
            try await admin.deleteTopics([topic, Env.uniqueName("never-created")])
            try await Poll.until("\(topic) leaves the metadata", within: .seconds(10), every: .milliseconds(50)) {
                try await admin.partitionCount(of: topic) == nil ? true : nil
            }
            // Deleting it again is not an error: it is gone, as asked.
            try await admin.deleteTopics([topic])
            try await admin.deleteTopics([])

            try await admin.createTopic(topic, partitions: 1)
            #expect(try await admin.partitions(of: [topic]) == [p0])
            try await Self.produce(1, to: topic, partition: 0)  // expects offset 0: the old log is gone
            #expect(try await admin.committedOffsets(group: group, partitions: [p0]).isEmpty, "the old commits went with the topic")
            try await admin.deleteTopics([topic])
        }

        /// Every new admin call gives up within the request timeout, naming
        /// the address, when nothing answers there.
        @Test func offsetQueriesFailInBoundedTimeWhenUnreachable() async throws {
            let address = "127.0.0.1:1"
            var configuration = KafkaAdminConfiguration(bootstrapServers: address)
            configuration.requestTimeout = .seconds(2)
            let admin = try KafkaAdmin.make(configuration: configuration, logger: Env.logger)
            defer { admin.close() }
            let clock = ContinuousClock()
            let calls: [(String, @Sendable () async throws -> Void)] = [
                ("committedOffsets", { _ = try await admin.committedOffsets(group: "g", partitions: [KafkaTopicPartition(topic: "t", partition: 0)]) }),
                ("partitions(of:)", { _ = try await admin.partitions(of: ["t"]) }),
                ("deleteTopics", { try await admin.deleteTopics(["t"]) }),
            ]
            for (name, call) in calls {
                let start = clock.now
                let error = await #expect(throws: KafkaError.self, "\(name)") { try await call() }
                #expect(clock.now - start < .seconds(8), "\(name) took \(clock.now - start)")
                #expect(error?.code == .timedOut || error?.code == .brokerUnreachable, "\(name): \(error?.description ?? "")")
                #expect(error?.message.contains(address) == true, "\(name): \(error?.message ?? "")")
            }
        }
    }
}
