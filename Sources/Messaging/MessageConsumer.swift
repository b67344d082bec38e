import AMQP
import Common
import Foundation
import Logging
import Observability
import ServiceLifecycle
import Storage

/// A service's consumer of its work queue: at-least-once processing with a
/// retry ladder and dead letters.
///
/// For each delivery, in order:
/// 1. read its id and type; without them it is poison;
/// 2. run the handler registered for its type (no handler: poison). The
///    handler does its work in one database transaction with the record of
///    the message id (`Inbox.once`), so a duplicate changes nothing;
/// 3. settle it, *after* the handler's transaction committed:
///    - done: ack;
///    - `MessageFailure.poison`: publish it to the dead letters with the
///      reason, then ack;
///    - any other error: publish it to the next step of the retry ladder
///      with the attempt count in a header, then ack; after the last step,
///      to the dead letters instead.
///
/// The copy is published (and confirmed) before the original is acked. A
/// crash between the two leaves both: the original comes back, and the
/// handler's idempotency absorbs the copy. The other order could lose it.
public struct MessageConsumer: Service {
    public typealias Handler = @Sendable (IncomingMessage) async throws -> Void

    let client: RabbitClient
    let topology: MessageTopology
    let queue: String
    let prefetch: UInt16
    let handlers: [String: Handler]
    let logger: Logger
    /// Log a line for every message handled (stage 6: so that grepping an
    /// order's id across the services' logs shows its whole story).
    let logEachMessage: Bool

    /// `queue` is the short name (`payment`); `handlers` maps message types
    /// to what to do with them.
    public init(
        client: RabbitClient, topology: MessageTopology, queue: String, prefetch: UInt16 = 32,
        logger: Logger, logEachMessage: Bool = false, handlers: [String: Handler]
    ) {
        self.logEachMessage = logEachMessage
        self.client = client
        self.topology = topology
        self.queue = queue
        self.prefetch = prefetch
        self.handlers = handlers
        self.logger = logger
    }

    public func run() async throws {
        // Side by side, up to `prefetch` at once; one order's messages one
        // after another, in the order they came (a saga's steps, an order's
        // emails). Messages about no order are independent of each other.
        let service = ConsumerService(
            client: client, queue: topology.queue(queue), prefetch: prefetch, logger: logger,
            orderedBy: { $0.properties.correlationID ?? $0.properties.messageID ?? "delivery \($0.deliveryTag)" }
        ) { delivery in
            await handle(delivery)
        }
        try await service.run()
    }

    func handle(_ delivery: Delivery) async -> ConsumerService.Outcome {
        // The handling is a span of the trace the message carries: its log
        // lines show the order's trace id, and what it sends carries it on.
        let type = delivery.properties.type ?? delivery.routingKey
        return await Observability.withSpan(
            "\(type) from \(queue)", ofKind: .consumer,
            continuing: delivery.headers[MessageHeader.traceparent]?.stringValue
        ) {
            await handleInSpan(delivery)
        }
    }

    private func handleInSpan(_ delivery: Delivery) async -> ConsumerService.Outcome {
        let started = ContinuousClock.now
        let (outcome, settled) = await settle(delivery)
        // Counted once the delivery is settled: `requeue` means it comes
        // back, and is counted then.
        if outcome == .ack {
            MessagingMetrics.consumed(queue: queue, settled, since: started)
        }
        return outcome
    }

    private func settle(_ delivery: Delivery) async -> (ConsumerService.Outcome, MessagingMetrics.Settled) {
        var logger = logger
        logger[metadataKey: "queue"] = .string(queue)
        let failure: any Error
        let attempt = max(1, Int(delivery.headers[MessageHeader.attempt]?.intValue ?? 1))
        do {
            let message = try IncomingMessage(delivery)
            logger[metadataKey: "message_id"] = .string(message.id)
            logger[metadataKey: "type"] = .string(message.type)
            if let correlation = message.correlationId {
                logger[metadataKey: "correlation_id"] = .string(correlation)
                // Stage 4's name for it, which its tools and docs grep for.
                logger[metadataKey: "order_id"] = .string(correlation)
            }
            if message.redelivered { logger.notice("redelivered message (a consumer died before acking it)") }
            guard let handler = handlers[message.type] else {
                throw MessageFailure.poison("no handler for message type '\(message.type)' on queue \(queue)")
            }
            do {
                try await handler(message)
                if logEachMessage { logger.info("handled") }
                return (.ack, .handled)
            } catch {
                failure = error
            }
        } catch {
            failure = error
        }

        let reason: String
        if case MessageFailure.poison(let why) = failure {
            reason = "poison: \(why)"
        } else if attempt < topology.maxAttempts {
            let step = attempt
            let delay = topology.retryDelays[step - 1]
            logger.info("processing failed; retrying later", metadata: [
                "attempt": "\(attempt)", "retry_in": "\(delay)", "error": "\(failure)"])
            return (await forward(delivery, to: "", routingKey: topology.retryQueue(queue, step: step), headers: [
                MessageHeader.attempt: .int(Int64(attempt + 1)),
            ], logger: logger), .retried)
        } else {
            reason = "gave up after \(attempt) attempts: \(failure)"
        }
        logger.error("message set aside as a dead letter", metadata: ["reason": .string(reason), "attempts": "\(attempt)"])
        return (await forward(delivery, to: topology.deadLetterExchange, routingKey: queue, headers: [
            MessageHeader.reason: .string(reason),
            MessageHeader.sourceQueue: .string(queue),
            MessageHeader.attempts: .int(Int64(attempt)),
            MessageHeader.deadLetteredAt: .int(Date().databaseMilliseconds),
            MessageHeader.deadLetterId: .string(ID.make("dlq")),
        ], logger: logger), .deadLettered)
    }

    /// Publishes a copy of the delivery (same body, id and type; headers
    /// merged) and answers ack once it is confirmed. If it cannot be sent,
    /// the original goes back to the queue to be tried again.
    private func forward(_ delivery: Delivery, to exchange: String, routingKey: String, headers: AMQPTable, logger: Logger) async -> ConsumerService.Outcome {
        var properties = delivery.properties
        properties.deliveryMode = .persistent
        properties.headers = (properties.headers ?? [:]).merging(headers) { $1 }
        do {
            try await client.publish(OutboundMessage(exchange: exchange, routingKey: routingKey, body: delivery.body, properties: properties, mandatory: true))
            return .ack
        } catch {
            logger.warning("could not forward the message; it goes back to its queue", metadata: ["error": "\(error)"])
            try? await Task.sleep(for: .milliseconds(200))
            return .requeue
        }
    }
}
