import Foundation
import Testing
@testable import Kafka

/// The same bytes on both sides: Swift ↔ confluent-kafka through Tansu.
extension KafkaIntegrationTests {
    @Suite struct Interop {
        typealias Env = KafkaTestEnvironment

        /// Keys, values and headers a real event stream carries, plus the odd
        /// cases: a null key pinned to a partition, a header without a value,
        /// a header name used twice, bytes that are not UTF-8.
        static func sampleMessages(topic: String) -> [KafkaProducerMessage] {
            var messages = (0..<12).map { index in
                KafkaProducerMessage(
                    topic: topic, key: "order-\(index % 4)", value: #"{"event":"OrderPlaced","n":\#(index)}"#,
                    headers: [
                        KafkaHeader(name: "event-type", value: "OrderPlaced"),
                        KafkaHeader(name: "seq", value: "\(index)"),
                        KafkaHeader(name: "trace", value: nil),
                        KafkaHeader(name: "seq", value: "again-\(index)"),
                    ])
            }
            messages.append(KafkaProducerMessage(
                topic: topic, partition: 1, key: nil, value: [0x00, 0xff, 0x80, 0x7f],
                headers: [KafkaHeader(name: "binary", value: [0xde, 0xad])]))
            return messages
        }

        @Test func swiftProducesConfluentKafkaConsumes() async throws {
            let topic = try await Env.createTopic("swift-to-python", partitions: 3)
            let producer = try Env.makeProducer()
            let messages = Self.sampleMessages(topic: topic)
            let reports = try await producer.send(messages)
            await producer.shutdown()

            #expect(reports[12].partition == 1, "an explicit partition is kept")
            let records = try await ConfluentKafka.consume(topic: topic, count: messages.count)
            #expect(records.count == messages.count)
            let byPosition = Dictionary(uniqueKeysWithValues: records.map { ("\($0.partition)@\($0.offset)", $0) })
            for (message, report) in zip(messages, reports) {
                let record = try #require(byPosition["\(report.partition)@\(report.offset)"], "confluent-kafka did not see \(report)")
                #expect(record.key == message.key?.hex)
                #expect(record.value == message.value?.hex)
                #expect(record.headers == message.headers.map { [$0.name, $0.value?.hex] })
            }
            // One key, one partition.
            let partitionsByKey = Dictionary(grouping: records.filter { $0.key != nil }, by: \.key).mapValues { Set($0.map(\.partition)) }
            #expect(partitionsByKey.count == 4)
            #expect(partitionsByKey.values.allSatisfy { $0.count == 1 })
        }

        @Test func confluentKafkaProducesSwiftConsumes() async throws {
            let topic = try await Env.createTopic("python-to-swift", partitions: 3)
            let outgoing = Self.sampleMessages(topic: topic).map { message in
                ConfluentKafka.Outgoing(
                    key: message.key?.hex, value: message.value?.hex,
                    headers: message.headers.map { [$0.name, $0.value?.hex] }, partition: message.partition)
            }
            let delivered = try await ConfluentKafka.produce(topic: topic, messages: outgoing)
            #expect(delivered.count == outgoing.count)

            let consumer = try KafkaConsumer.make(
                configuration: Env.consumerConfiguration(group: Env.uniqueName("interop"), topic: topic), logger: Env.logger)
            let received = try await collect(outgoing.count, from: consumer)
            await consumer.close()

            let byPosition = Dictionary(uniqueKeysWithValues: received.map { ("\($0.partition)@\($0.offset)", $0) })
            for (sent, report) in zip(outgoing, delivered) {
                let message = try #require(byPosition["\(report.partition)@\(report.offset)"], "Swift did not see \(report)")
                #expect(message.topic == topic)
                #expect(message.key?.hex == sent.key)
                #expect(message.value?.hex == sent.value)
                #expect(message.headers.map { [$0.name, $0.value?.hex] } == sent.headers)
                #expect(message.timestampMilliseconds != nil)
                if let timestamp = message.timestamp { #expect(abs(timestamp.timeIntervalSinceNow) < 120) }
            }

            // Both producers hash keys alike (murmur2, as Java does): the same
            // key goes to the same partition whichever client sent it.
            let producer = try Env.makeProducer()
            let keys = (0..<4).map { "order-\($0)" }
            let ours = try await producer.send(keys.map { KafkaProducerMessage(topic: topic, key: $0, value: "x") })
            await producer.shutdown()
            for (key, report) in zip(keys, ours) {
                let theirs = delivered.first { $0.key == Array(key.utf8).hex }
                #expect(theirs?.partition == report.partition, "key \(key)")
            }
        }

        @Test func sameKeySamePartitionInOrder() async throws {
            let topic = try await Env.createTopic("ordering", partitions: 3)
            let producer = try Env.makeProducer()
            let keys = (0..<6).map { "customer-\($0)" }
            let perKey = 20
            // Interleaved, as events of different aggregates are, and sent
            // from several tasks at once (each task owns some keys, so each
            // key's sends stay in order).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for slice in [Array(keys[0..<3]), Array(keys[3..<6])] {
                    group.addTask {
                        for sequence in 0..<perKey {
                            _ = try await producer.send(slice.map {
                                KafkaProducerMessage(topic: topic, key: $0, value: "\(sequence)")
                            })
                        }
                    }
                }
                try await group.waitForAll()
            }
            await producer.shutdown()

            let consumer = try KafkaConsumer.make(
                configuration: Env.consumerConfiguration(group: Env.uniqueName("ordering"), topic: topic), logger: Env.logger)
            let received = try await collect(keys.count * perKey, from: consumer)
            await consumer.close()

            for key in keys {
                let mine = received.filter { $0.keyString == key }
                #expect(mine.count == perKey)
                #expect(Set(mine.map(\.partition)).count == 1, "\(key) is spread over partitions")
                #expect(mine.map(\.valueString) == (0..<perKey).map { "\($0)" }, "\(key) out of order")
                #expect(mine.map(\.offset) == mine.map(\.offset).sorted())
            }
            #expect(Set(received.map(\.partition)).count > 1, "six keys should use more than one of three partitions")
        }
    }
}
