import Logging
import OrderedWork
import ServiceLifecycle
import Synchronization

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
///
/// One at a time, or side by side (`orderedBy`): up to `prefetch`
/// deliveries are handled at once, and the ones with the same key (an
/// order's id) one after another, in the order they arrived. Side by side
/// is what lets a burst of deliveries share the work that does not depend
/// on each: their database transactions share commits (`GroupCommit`), and
/// one acknowledgement settles many.
///
/// Acknowledgements are sent once the handler has returned, never before:
/// a process that dies after its commit and before its ack gets the message
/// again, and its handler's idempotency absorbs it. They are batched: the
/// oldest deliveries that are settled, in a row, are acknowledged with one
/// `basic.ack` (`multiple`), and queued to the connection's thread without
/// waiting for it (an ack has no answer to wait for; one lost with its
/// connection means a redelivery, as above).
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
    /// What must be handled in arrival order: deliveries with the same key.
    public typealias Key = @Sendable (Delivery) -> String

    let client: RabbitClient
    let queue: String
    let prefetch: UInt16
    let logger: Logger
    let orderedBy: Key?
    let handler: Handler

    /// A handler that throws counts as `.reject`: a message that fails the
    /// same way every time must not circle forever at the head of the queue.
    /// `orderedBy` nil: one delivery at a time, in order.
    public init(
        client: RabbitClient, queue: String, prefetch: UInt16 = 10,
        logger: Logger = Logger(label: "amqp.consumer"), orderedBy: Key? = nil, handler: @escaping Handler
    ) {
        self.client = client
        self.queue = queue
        self.prefetch = prefetch
        self.logger = logger
        self.orderedBy = orderedBy
        self.handler = handler
    }

    public func run() async throws {
        let consumer = client.consume(queue: queue, prefetch: prefetch)
        let acks = AckBatcher()
        try await withGracefulShutdownHandler {
            if let orderedBy {
                // Each delivery's place in its key's line is taken here, in
                // arrival order; its task waits for its turn.
                let lines = KeyedLines()
                try await withThrowingDiscardingTaskGroup { group in
                    for try await delivery in consumer {
                        acks.received(delivery)
                        let turn = lines.join(orderedBy(delivery))
                        group.addTask {
                            await turn.wait()
                            let outcome = await outcome(of: delivery)
                            turn.leave()
                            acks.settle(delivery, outcome)
                        }
                    }
                }
            } else {
                for try await delivery in consumer {
                    acks.received(delivery)
                    acks.settle(delivery, await outcome(of: delivery))
                }
            }
        } onGracefulShutdown: {
            Task { await consumer.stop() }
        }
        await consumer.close()
    }

    private func outcome(of delivery: Delivery) async -> Outcome {
        do {
            return try await handler(delivery)
        } catch {
            logger.error("handler failed; rejecting", metadata: ["queue": "\(queue)", "error": "\(error)"])
            return .reject
        }
    }
}

/// Settles deliveries in as few frames as it can. On each channel the
/// broker numbers deliveries 1, 2, 3…; an ack with `multiple` settles every
/// unsettled one up to its number. So an ack waits until every delivery
/// before it on its channel is settled, then one frame covers the run. A
/// requeue or a reject goes out at once, on its own, before the ack that
/// follows it (the connection's thread sends them in the order queued).
final class AckBatcher: Sendable {
    private struct Pending {
        let tag: UInt64
        var outcome: ConsumerService.Outcome?
    }

    /// Per channel (a reconnect brings a new one, numbered from 1 again),
    /// the deliveries not yet acknowledged, oldest first.
    private let channels = Mutex<[ObjectIdentifier: (channel: AMQPChannel, pending: [Pending])]>([:])

    func received(_ delivery: Delivery) {
        let id = ObjectIdentifier(delivery.channel)
        channels.withLock { channels in
            channels[id, default: (delivery.channel, [])].pending.append(Pending(tag: delivery.deliveryTag, outcome: nil))
        }
    }

    func settle(_ delivery: Delivery, _ outcome: ConsumerService.Outcome) {
        let id = ObjectIdentifier(delivery.channel)
        // Under the lock, so that frames leave in the order decided here.
        channels.withLock { channels in
            guard var entry = channels[id], let index = entry.pending.firstIndex(where: { $0.tag == delivery.deliveryTag }) else { return }
            switch outcome {
            case .ack: break
            case .requeue: entry.channel.sendNack(deliveryTag: delivery.deliveryTag, requeue: true)
            case .reject: entry.channel.sendReject(deliveryTag: delivery.deliveryTag, requeue: false)
            }
            entry.pending[index].outcome = outcome
            let settled = entry.pending.prefix { $0.outcome != nil }
            if let last = settled.last(where: { $0.outcome == .ack }) {
                entry.channel.sendAck(deliveryTag: last.tag, multiple: settled.count > 1)
            }
            entry.pending.removeFirst(settled.count)
            channels[id] = entry.pending.isEmpty ? nil : entry
        }
    }
}
