import Foundation
import TestSupport
import Testing
@testable import Kafka

/// Brokers that are not there, or go away: bounded waits, clear messages,
/// recovery.
extension KafkaIntegrationTests {
    @Suite struct Failures {
        typealias Env = KafkaTestEnvironment

        /// librdkafka retries connecting forever; every call of ours must
        /// still come back, in bounded time, saying which address failed.
        @Test func unreachableBootstrapFailsInBoundedTime() async throws {
            // Port 1 on loopback: nothing listens, connects are refused at once.
            let address = "127.0.0.1:1"
            var adminConfiguration = KafkaAdminConfiguration(bootstrapServers: address)
            adminConfiguration.requestTimeout = .seconds(2)
            let admin = try KafkaAdmin.make(configuration: adminConfiguration, logger: Env.logger)
            defer { admin.close() }
            let clock = ContinuousClock()

            var start = clock.now
            let createError = await #expect(throws: KafkaError.self) { try await admin.createTopic("never", partitions: 1) }
            #expect(clock.now - start < .seconds(8))
            #expect(createError?.code == .timedOut)
            #expect(createError?.message.contains(address) == true, "\(createError?.message ?? "")")

            start = clock.now
            let metadataError = await #expect(throws: KafkaError.self) { _ = try await admin.topics() }
            #expect(clock.now - start < .seconds(8))
            #expect(metadataError?.message.contains(address) == true, "\(metadataError?.message ?? "")")

            var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: address)
            producerConfiguration.messageTimeout = .seconds(2)
            let producer = try KafkaProducer.make(configuration: producerConfiguration, logger: Env.logger)
            start = clock.now
            let sendError = await #expect(throws: KafkaError.self) {
                _ = try await producer.send(KafkaProducerMessage(topic: "never", key: "k", value: "v"))
            }
            #expect(clock.now - start < .seconds(8))
            #expect(sendError?.code == .timedOut)
            #expect(sendError?.message.contains(address) == true, "\(sendError?.message ?? "")")
            #expect(sendError?.message.contains("Connection refused") == true, "\(sendError?.message ?? "")")
            await producer.shutdown()

            // And a closed producer says so instead of waiting.
            let closedError = await #expect(throws: KafkaError.self) {
                _ = try await producer.send(KafkaProducerMessage(topic: "never", key: "k", value: "v"))
            }
            #expect(closedError?.code == .closed)
        }

        /// Tansu stopped mid-stream, then started again. With its durable
        /// storage (scripts/infra's default) it comes back with the topic and
        /// the group's committed offsets; with KAFKA_STORAGE=memory it comes
        /// back empty, and the topic is created again (as services do at
        /// start). Either way the clients carry on, except an idempotent
        /// producer whose send failed during the outage. (DurabilityTests
        /// checks the records themselves.)
        @Test func brokerStoppedMidStreamThenBack() async throws {
            try await Env.requireBroker()
            let topic = try await Env.createTopic("outage", partitions: 2)
            let producer = try Env.makeProducer(messageTimeout: .seconds(3))
            var plainConfiguration = KafkaProducerConfiguration(bootstrapServers: Env.bootstrapServers, clientID: "kafka-tests")
            plainConfiguration.idempotent = false
            plainConfiguration.messageTimeout = .seconds(3)
            let plain = try KafkaProducer.make(configuration: plainConfiguration, logger: Env.logger)
            var configuration = Env.consumerConfiguration(group: Env.uniqueName("outage"), topic: topic)
            configuration.commitTimeout = .seconds(3)
            configuration.closeTimeout = .seconds(5)
            let consumer = try KafkaConsumer.make(configuration: configuration, logger: Env.logger)

            _ = try await producer.send((0..<5).map { KafkaProducerMessage(topic: topic, key: "k\($0)", value: "before-\($0)") })
            _ = try await plain.send(KafkaProducerMessage(topic: topic, key: "k", value: "plain-before"))
            let before = try await collect(6, from: consumer)
            #expect(before.count == 6)

            try await Env.infra("down", "kafka")
            // Nothing below throws (failed expectations are recorded and the
            // test goes on), so the broker is always started again.
            do {
                let clock = ContinuousClock()
                var start = clock.now
                let sendError = await #expect(throws: KafkaError.self) {
                    _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "k", value: "during"))
                }
                #expect(clock.now - start < .seconds(10))
                #expect(sendError?.code == .timedOut, "\(sendError?.description ?? "")")
                #expect(sendError?.message.contains(Env.bootstrapServers) == true, "\(sendError?.message ?? "")")

                start = clock.now
                let commitError = await #expect(throws: KafkaError.self) {
                    try await consumer.commit(before[0])
                }
                #expect(clock.now - start < .seconds(10))
                #expect(commitError != nil)
            }
            try await Env.infra("up", "kafka")

            let admin = try Env.makeAdmin()
            if Env.durableStorage {
                #expect(try await admin.partitionCount(of: topic) == 2, "the topic did not survive the restart")
            } else {
                // In memory, a restart is a new, empty cluster.
                try await admin.createTopic(topic, partitions: 2)
            }
            admin.close()
            // A producer that is not idempotent simply reconnects and
            // carries on. The first sends may fail while metadata catches
            // up, so retry a while. (Poll.until keeps the last error for its
            // message if it never delivers.)
            let delivered = try await Poll.until("the plain producer delivers again", within: .seconds(30), every: .milliseconds(500)) {
                try await plain.send((0..<3).map { KafkaProducerMessage(topic: topic, key: "k\($0)", value: "after-\($0)") })
            }
            #expect(delivered.count == 3, "the plain producer did not recover")

            // The idempotent one (our default) cannot: its send failed during
            // the outage, so librdkafka asks for a new epoch of its producer
            // id before it sends again. In memory the restarted Tansu no
            // longer knows the id (UNKNOWN_PRODUCER_ID); with the durable log
            // it knows it and answers PRODUCER_FENCED. librdkafka will not
            // resend under a new id (that could duplicate), so its sends fail
            // (timed out, fatal, or fenced). An idempotent producer that did
            // not fail during the outage carries on, with the durable log.
            let staleError = await #expect(throws: KafkaError.self) {
                _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "k", value: "stale"))
            }
            let producerFenced: Int32 = 90  // RD_KAFKA_RESP_ERR_PRODUCER_FENCED
            #expect(staleError?.code == .timedOut || staleError?.code == .fatal || staleError?.rdkafkaCode == producerFenced,
                    "\(staleError?.description ?? "")")
            // A new idempotent producer works at once: what a service must
            // do with a producer that failed so.
            let fresh = try Env.makeProducer(messageTimeout: .seconds(10))
            let report = try await fresh.send(KafkaProducerMessage(topic: topic, key: "k9", value: "after-fresh"))
            #expect(report.offset >= 0)

            // Durable: the group and its commits are still there, so the
            // consumer goes on after the six it read, none of them again.
            // In memory the group is gone too: the consumer rejoins, finds its
            // old positions out of range and starts at the earliest offset.
            // Both read the same four.
            let after = try await collect(4, from: consumer, timeout: .seconds(45))
            #expect(Set(after.compactMap(\.valueString)) == ["after-0", "after-1", "after-2", "after-fresh"])
            await consumer.close()
            await fresh.shutdown()
            await plain.shutdown()
            await producer.shutdown()
        }
    }
}
