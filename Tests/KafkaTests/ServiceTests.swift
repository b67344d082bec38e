import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing
@testable import Kafka

/// Producer and consumer as services: graceful shutdown ends the message
/// stream, closes the consumer (final commit, leaves the group) and flushes
/// the producer.
extension KafkaIntegrationTests {
    @Suite struct Services {
        typealias Env = KafkaTestEnvironment

        /// A processing loop: what a stage's event handler looks like. On
        /// graceful shutdown it stops taking messages (finishing the one in
        /// hand) via `cancelOnGracefulShutdown()`; without it, the group
        /// would wait for it forever, since the sequence only ends when the
        /// consumer closes, and the consumer is shut down after it.
        final class Processor: Service {
            let consumer: KafkaConsumer
            let seen = Mutex<[String]>([])

            init(consumer: KafkaConsumer) { self.consumer = consumer }

            func run() async throws {
                for try await message in consumer.messages.cancelOnGracefulShutdown() {
                    seen.withLock { $0.append(message.valueString ?? "") }
                    try consumer.commitAsync(message)
                }
            }
        }

        @Test func gracefulShutdownClosesConsumerAndFlushesProducer() async throws {
            let topic = try await Env.createTopic("services", partitions: 1)
            let group = Env.uniqueName("services")
            let producer = try Env.makeProducer()
            let consumer = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            let processor = Processor(consumer: consumer)
            // A group shuts its services down one at a time, last listed
            // first: the processor stops, then the consumer closes (final
            // commit, leaves the group), then the producer flushes.
            var configuration = ServiceGroupConfiguration(
                services: [
                    .init(service: producer),
                    .init(service: consumer),
                    .init(service: processor, successTerminationBehavior: .gracefullyShutdownGroup),
                ],
                logger: Env.logger)
            configuration.maximumGracefulShutdownDuration = .seconds(30)
            let services = ServiceGroup(configuration: configuration)

            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                _ = try await producer.send((0..<10).map { KafkaProducerMessage(topic: topic, key: "k", value: "v\($0)") })
                // Not `try`: the services are shut down either way, and the
                // expectation after the group says what was missing.
                _ = try? await Poll.until("the processor has seen all 10 messages", within: .seconds(30), every: .milliseconds(100)) {
                    processor.seen.withLock { $0.count } >= 10 ? true : nil
                }
                await services.triggerGracefulShutdown()
                try await group.waitForAll()
            }
            #expect(processor.seen.withLock { $0 } == (0..<10).map { "v\($0)" })
            #expect(consumer.assignment.isEmpty)
            let sendError = await #expect(throws: KafkaError.self) {
                _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "k", value: "late"))
            }
            #expect(sendError?.code == .closed)

            // The asynchronous commits were all made, at the latest by close:
            // the group resumes after message 10.
            let producer2 = try Env.makeProducer()
            _ = try await producer2.send(KafkaProducerMessage(topic: topic, key: "k", value: "v10"))
            await producer2.shutdown()
            let again = try KafkaConsumer.make(configuration: Env.consumerConfiguration(group: group, topic: topic), logger: Env.logger)
            let next = try await collect(1, from: again)
            await again.close()
            #expect(next.map(\.valueString) == ["v10"])
        }
    }
}
