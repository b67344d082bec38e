import Logging
import ServiceLifecycle

/// A consumer loop as a swift-service-lifecycle `Service`: runs a handler
/// for each delivery of a queue, settles the delivery by the handler's
/// answer, and on graceful shutdown stops taking new messages, finishes the
/// ones already received, and returns.
///
/// ```swift
/// let client = RabbitClient(configuration: config, topology: declareQueues)
/// let payments = ConsumerService(client: client, queue: "payments") { delivery in
///     try await handle(delivery)
///     return .ack
/// }
/// let group = ServiceGroup(services: [client, payments], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await group.run()
/// ```
public struct ConsumerService: Service {
    /// How to settle a delivery once the handler is done with it.
    public enum Outcome: Sendable {
        /// Processed: remove it from the queue.
        case ack
        /// Try again later: back to the queue, at its head.
        case requeue
        /// Give up: dead-letter it (reason `rejected`), or drop it when the
        /// queue has no dead-letter exchange. A retry ladder routes it to a
        /// TTL queue this way.
        case reject
    }

    public typealias Handler = @Sendable (Delivery) async throws -> Outcome

    let client: RabbitClient
    let queue: String
    let prefetch: UInt16
    let logger: Logger
    let handler: Handler

    /// A handler that throws counts as `.reject`: a message that fails the
    /// same way every time must not circle forever at the head of the queue.
    public init(
        client: RabbitClient, queue: String, prefetch: UInt16 = 10,
        logger: Logger = Logger(label: "amqp.consumer"), handler: @escaping Handler
    ) {
        self.client = client
        self.queue = queue
        self.prefetch = prefetch
        self.logger = logger
        self.handler = handler
    }

    public func run() async throws {
        let consumer = client.consume(queue: queue, prefetch: prefetch)
        try await withGracefulShutdownHandler {
            for try await delivery in consumer {
                let outcome: Outcome
                do {
                    outcome = try await handler(delivery)
                } catch {
                    logger.error("handler failed; rejecting", metadata: ["queue": "\(queue)", "error": "\(error)"])
                    outcome = .reject
                }
                do {
                    switch outcome {
                    case .ack: try await delivery.ack()
                    case .requeue: try await delivery.nack(requeue: true)
                    case .reject: try await delivery.reject(requeue: false)
                    }
                } catch {
                    // The connection it came on is gone; the broker will
                    // redeliver the message on the next one.
                    logger.warning("could not settle delivery", metadata: ["queue": "\(queue)", "error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            Task { await consumer.stop() }
        }
        await consumer.close()
    }
}
