import Foundation
import TestSupport
import Testing
@testable import Kafka

/// The log is durable: scripts/infra runs Tansu over SeaweedFS's S3, so what
/// the broker acknowledged and where each group got to outlive a restart of
/// the broker and of its storage. This is what lets a stage 7 service
/// replay a topic, or resume after a deployment, without a lost event.
///
/// It stops and starts the shared broker, so scripts/test runs it on its
/// own, after everything else (its name starts with `brokerRestart`). It
/// restarts whatever scripts/infra started on KAFKA_PORT and SEAWEEDFS_PORT
/// (9092 and 8333 unless set), as Stage 4's BrokerRestartTests does RabbitMQ.
extension KafkaIntegrationTests {
    @Suite struct Durability {
        typealias Env = KafkaTestEnvironment

        /// Everything the broker holds of `topic`, read from the beginning
        /// by confluent-kafka: "partition@offset" → value.
        static func stored(_ topic: String, count: Int) async throws -> [String: String] {
            let records = try await ConfluentKafka.consume(topic: topic, count: count)
            return Dictionary(
                records.map { ("\($0.partition)@\($0.offset)", String(decoding: $0.value?.hexBytes ?? [], as: UTF8.self)) },
                uniquingKeysWith: { first, _ in first })
        }

        /// The group's committed offsets, asked until the broker answers
        /// (its group coordinator may need a moment after a restart); a
        /// wrong answer is returned at once, not retried.
        static func committed(_ group: String, _ topic: String) async throws -> [Int32: Int64] {
            try await Poll.until("the broker answers an offset fetch for \(group)", within: .seconds(30), every: .milliseconds(500)) {
                try await ConfluentKafka.committed(group: group, topic: topic, partitions: 2)
            }
        }

        /// Offsets are per partition: "p@o" → its partition's number.
        static func ends(_ positions: some Sequence<String>) -> [Int32: Int64] {
            var ends: [Int32: Int64] = [:]
            for position in positions {
                let parts = position.split(separator: "@")
                let partition = Int32(parts[0])!, offset = Int64(parts[1])!
                ends[partition] = max(ends[partition] ?? 0, offset + 1)
            }
            return ends
        }

        @Test func brokerRestartKeepsRecordsAndCommittedOffsets() async throws {
            let hint = "(is Tansu running with KAFKA_STORAGE=memory? see `scripts/infra status kafka`)"
            let topic = try await Env.createTopic("durable", partitions: 2)
            let group = Env.uniqueName("durable")
            let total = 40, readBeforeRestart = 15

            let producer = try Env.makeProducer()
            let reports = try await producer.send((0..<total).map {
                KafkaProducerMessage(topic: topic, key: "order-\($0 % 7)", value: "m\($0)")
            })
            await producer.shutdown()
            var written: [String: String] = [:]
            for (index, report) in reports.enumerated() { written["\(report.partition)@\(report.offset)"] = "m\(index)" }
            #expect(written.count == total)
            #expect(Set(reports.map(\.partition)) == [0, 1], "seven keys should use both partitions")

            // The group reads part of the topic and commits where it got to,
            // partition by partition ("next to read").
            let reader = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            let firstBatch = try await collect(readBeforeRestart, from: reader, commit: false)
            let committed = Self.ends(firstBatch.map { "\($0.partition)@\($0.offset)" })
            try await reader.commit(offsets: Dictionary(uniqueKeysWithValues: committed.map {
                (KafkaTopicPartition(topic: topic, partition: $0.key), $0.value)
            }))
            await reader.close()
            #expect(try await Self.committed(group, topic) == committed)

            // 1. Broker and storage stopped, then started again. Nothing
            // between down and up throws, so the broker always comes back.
            try await Env.infra("down", "kafka")
            #expect(!Env.canConnect(port: Env.port), "the broker on \(Env.port) is not this checkout's, so it was not restarted")
            #expect(!Env.canConnect(port: Env.storagePort), "its storage still answers on \(Env.storagePort)")
            try await Env.infra("up", "kafka")

            let admin = try Env.makeAdmin()
            #expect(try await admin.partitionCount(of: topic) == 2, "the topic is gone \(hint)")
            admin.close()
            #expect(try await Self.stored(topic, count: total) == written, "records lost or changed \(hint)")
            #expect(try await Self.committed(group, topic) == committed, "the group's offsets are lost \(hint)")

            // The log goes on where it ended: new records get the next
            // offsets of their partitions, none overwrites an old one.
            let endsBefore = Self.ends(written.keys)
            let later = try Env.makeProducer()
            let laterReports = try await later.send((total..<(total + 6)).map {
                KafkaProducerMessage(topic: topic, key: "order-\($0 % 7)", value: "m\($0)")
            })
            await later.shutdown()
            for partition in Set(laterReports.map(\.partition)) {
                let offsets = laterReports.filter { $0.partition == partition }.map(\.offset)
                let end = endsBefore[partition] ?? 0
                #expect(offsets == Array(end..<(end + Int64(offsets.count))), "partition \(partition) after the restart")
            }
            for (index, report) in laterReports.enumerated() { written["\(report.partition)@\(report.offset)"] = "m\(total + index)" }

            // 2. The storage alone, under the running broker.
            try await Env.infra("down", "seaweedfs")
            #expect(!Env.canConnect(port: Env.storagePort), "the storage on \(Env.storagePort) is not this checkout's, so it was not restarted")
            #expect(Env.canConnect(port: Env.port), "the broker stopped with its storage")
            try await Env.infra("up", "seaweedfs")

            #expect(try await Self.stored(topic, count: written.count) == written, "records lost after the storage restarted")
            #expect(try await Self.committed(group, topic) == committed, "the group's offsets are lost after the storage restarted")

            // 3. The group itself resumes where it committed: each record
            // it had not read, once, and none it had.
            let resumed = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            let rest = try await collect(written.count - readBeforeRestart, from: resumed)
            await resumed.close()
            let readFirst = Set(firstBatch.map { "\($0.partition)@\($0.offset)" })
            let readAfter = rest.map { "\($0.partition)@\($0.offset)" }
            #expect(Set(readAfter).count == readAfter.count, "read twice after the restarts")
            #expect(Set(readAfter) == Set(written.keys).subtracting(readFirst))
            for message in rest { #expect(message.valueString == written["\(message.partition)@\(message.offset)"]) }
        }
    }
}
