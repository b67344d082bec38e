import Foundation

/// One message handed to a consumer.
public struct Delivery: Sendable {
    public let body: [UInt8]
    public let exchange: String
    public let routingKey: String
    /// The broker delivered this message before (to this or another consumer)
    /// without getting an ack: handle it idempotently.
    public let redelivered: Bool
    /// Identifies the delivery on its channel, for ack/nack/reject.
    public let deliveryTag: UInt64
    public let consumerTag: String
    public let properties: BasicProperties
    /// The channel it arrived on; settlements must go back to it.
    public let channel: AMQPChannel

    public var bodyString: String { String(decoding: body, as: UTF8.self) }

    public var headers: AMQPTable { properties.headers ?? [:] }

    /// RabbitMQ's dead-letter history, newest first: one entry per queue
    /// and reason, with a count.
    public var xDeath: [XDeathEntry] {
        headers["x-death"]?.arrayValue?.compactMap(XDeathEntry.init) ?? []
    }

    /// Done with it: the broker forgets the message.
    public func ack() async throws {
        try await channel.ack(deliveryTag: deliveryTag)
    }

    /// Not done: `requeue` puts it back in the queue, otherwise it is
    /// dead-lettered (or dropped when the queue has no dead-letter exchange).
    public func nack(requeue: Bool = true) async throws {
        try await channel.nack(deliveryTag: deliveryTag, requeue: requeue)
    }

    /// Like `nack` for one message; `requeue: false` dead-letters it with
    /// reason `rejected`.
    public func reject(requeue: Bool = false) async throws {
        try await channel.reject(deliveryTag: deliveryTag, requeue: requeue)
    }
}

/// The deliveries of one `basic.consume`, as an async sequence. The sequence
/// ends normally after `cancel()` or when the channel or connection is closed
/// by us, and throws when the broker or the network ends it.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = Delivery
    public typealias AsyncIterator = AsyncThrowingStream<Delivery, any Error>.Iterator

    public let tag: String
    public let channel: AMQPChannel
    let stream: AsyncThrowingStream<Delivery, any Error>

    public func makeAsyncIterator() -> AsyncIterator {
        stream.makeAsyncIterator()
    }

    /// `basic.cancel`: no more deliveries. Ones already received (and not
    /// yet settled) can still be acked; ones still on the wire go back to
    /// the queue.
    public func cancel() async throws {
        try await channel.cancelConsumer(tag: tag)
    }
}
