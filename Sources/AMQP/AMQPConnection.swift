import Foundation
import Synchronization

/// One AMQP connection to a broker, with its own I/O thread.
///
/// ```swift
/// let connection = try await AMQPConnection.connect(url: "amqp://guest:guest@127.0.0.1:5672/")
/// let channel = try await connection.openChannel()
/// try await channel.confirmSelect()
/// try await channel.publish(OutboundMessage(routingKey: "orders", body: Array("hi".utf8)))
/// await connection.close()
/// ```
///
/// A connection does not reconnect by itself; `RabbitClient` does.
public final class AMQPConnection: Sendable {
    public let configuration: AMQPConfiguration
    /// The heartbeat interval both sides agreed on (zero: none).
    public let heartbeat: Duration
    let io: IOThread
    private let ended = Mutex<AMQPError?>(nil)

    private init(configuration: AMQPConfiguration, heartbeat: Duration, io: IOThread) {
        self.configuration = configuration
        self.heartbeat = heartbeat
        self.io = io
    }

    deinit {
        // Nobody can use the connection any more: let the thread finish its
        // queue and exit. Dropping the C state closes the socket; the broker
        // sees an abrupt disconnect and requeues unacked messages.
        io.stop()
    }

    /// Connects, bounded by `configuration.connectTimeout`; errors name the
    /// address (`AMQPError.cannotConnect`).
    public static func connect(_ configuration: AMQPConfiguration) async throws -> AMQPConnection {
        let io = IOThread(configuration: configuration)
        io.start()
        do {
            let heartbeat = try await io.perform { core throws(AMQPError) in try core.open() }
            let connection = AMQPConnection(configuration: configuration, heartbeat: .seconds(heartbeat), io: io)
            // Weak: the core must not keep the public object (and so the
            // thread) alive; the object's deinit is what stops the thread.
            io.submit { [weak connection] core in
                core.onClose { error in connection?.ended.withLock { $0 = error } }
            }
            return connection
        } catch {
            io.stop()
            throw error
        }
    }

    public static func connect(url: String) async throws -> AMQPConnection {
        try await connect(AMQPConfiguration(url: url))
    }

    /// False once the connection has ended, for whatever reason.
    public var isOpen: Bool { ended.withLock { $0 == nil } }

    /// Waits until the connection ends and returns why:
    /// `.connectionClosed` after `close()`, otherwise the failure.
    public func closed() async -> AMQPError {
        await withCheckedContinuation { continuation in
            let accepted = io.submit { core in
                core.onClose { continuation.resume(returning: $0) }
            }
            if !accepted { continuation.resume(returning: .connectionClosed) }
        }
    }

    public func openChannel() async throws -> AMQPChannel {
        let id = try await io.perform { core throws(AMQPError) in try core.openChannel() }
        return AMQPChannel(connection: self, id: id)
    }

    /// Sends `connection.close`, ends every channel and consumer (streams
    /// finish without error), and stops the I/O thread. Idempotent.
    public func close() async {
        _ = try? await io.perform { core throws(AMQPError) in core.close() }
        io.stop()
    }

    /// Ends the connection abruptly, as a crash or network fault would:
    /// the socket is dropped without an AMQP goodbye. For tests of recovery.
    public func simulateConnectionLoss() async {
        _ = try? await io.perform { core throws(AMQPError) in
            core.fail(.connectionLost(address: core.configuration.address, reason: "simulated"))
        }
    }
}

/// A channel: the unit AMQP runs requests, publishes and consumers on.
/// Cheap to open; a broker-side error closes only the channel it happened on.
public final class AMQPChannel: MessagePublisher {
    public let connection: AMQPConnection
    public let id: UInt16
    private var io: IOThread { connection.io }

    init(connection: AMQPConnection, id: UInt16) {
        self.connection = connection
        self.id = id
    }

    // MARK: Topology

    public func exchangeDeclare(
        _ name: String, type: ExchangeType = .direct, durable: Bool = true, autoDelete: Bool = false,
        internal isInternal: Bool = false, arguments: AMQPTable = [:]
    ) async throws {
        try await io.perform { [id] core throws(AMQPError) in
            try core.exchangeDeclare(
                on: id, name: name, type: type.rawValue, durable: durable, autoDelete: autoDelete,
                isInternal: isInternal, arguments: arguments)
        }
    }

    public func exchangeDelete(_ name: String, ifUnused: Bool = false) async throws {
        try await io.perform { [id] core throws(AMQPError) in try core.exchangeDelete(on: id, name: name, ifUnused: ifUnused) }
    }

    /// Declares (creates or checks) a queue. An empty name asks the broker
    /// to pick one; the answer carries it, and the current counts.
    @discardableResult
    public func queueDeclare(
        _ name: String = "", durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: QueueArguments = QueueArguments()
    ) async throws -> QueueInfo {
        let table = arguments.table
        return try await io.perform { [id] core throws(AMQPError) in
            try core.queueDeclare(
                on: id, name: name, passive: false, durable: durable, exclusive: exclusive,
                autoDelete: autoDelete, arguments: table)
        }
    }

    /// Reads a queue's counts without creating it. A missing queue is a
    /// channel error, 404 NOT_FOUND, which closes this channel.
    public func queueDeclarePassive(_ name: String) async throws -> QueueInfo {
        try await io.perform { [id] core throws(AMQPError) in
            try core.queueDeclare(
                on: id, name: name, passive: true, durable: false, exclusive: false, autoDelete: false,
                arguments: [:])
        }
    }

    public func queueBind(queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) async throws {
        try await io.perform { [id] core throws(AMQPError) in
            try core.queueBind(on: id, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
        }
    }

    public func queueUnbind(queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) async throws {
        try await io.perform { [id] core throws(AMQPError) in
            try core.queueUnbind(on: id, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
        }
    }

    /// Drops every ready message; returns how many.
    @discardableResult
    public func queuePurge(_ name: String) async throws -> UInt32 {
        try await io.perform { [id] core throws(AMQPError) in try core.queuePurge(on: id, name: name) }
    }

    @discardableResult
    public func queueDelete(_ name: String, ifUnused: Bool = false, ifEmpty: Bool = false) async throws -> UInt32 {
        try await io.perform { [id] core throws(AMQPError) in
            try core.queueDelete(on: id, name: name, ifUnused: ifUnused, ifEmpty: ifEmpty)
        }
    }

    // MARK: Publishing

    /// Puts the channel in confirm mode: from now on the broker acks every
    /// publish once it has taken responsibility for it (for a persistent
    /// message on a durable queue: written to disk).
    public func confirmSelect() async throws {
        try await io.perform { [id] core throws(AMQPError) in try core.confirmSelect(on: id) }
    }

    /// Publishes one message. In confirm mode, returns when the broker has
    /// confirmed it, and throws `.publishNotConfirmed` for a nack,
    /// `.returned` for an unroutable mandatory message, or the channel or
    /// connection error that ended the wait. Without confirm mode, returns
    /// once the message is written to the socket.
    public func publish(_ message: OutboundMessage) async throws {
        try await io.performWaiting { [id] core, done in core.publish(message, on: id, completion: done) }
    }

    /// Publishes many messages with at most `window` of them unconfirmed
    /// at any time, and returns when all are confirmed. The first failure is
    /// thrown after the messages already sent have settled; messages after
    /// it are not sent. Without confirm mode, all are simply written.
    public func publish(contentsOf messages: [OutboundMessage], window: Int = 256) async throws {
        try await io.performWaiting { [id] core, done in
            core.publishBatch(BatchPublish(channel: id, messages: messages, window: window, completion: done))
        }
    }

    // MARK: Consuming

    /// At most `prefetchCount` deliveries unacknowledged on this channel at
    /// once (0: no limit). Set it before `consume`.
    public func qos(prefetchCount: UInt16, global: Bool = false) async throws {
        try await io.perform { [id] core throws(AMQPError) in try core.qos(on: id, prefetchCount: prefetchCount, global: global) }
    }

    /// Subscribes to a queue with manual acknowledgements. Iterate the
    /// result; settle every delivery with `ack`, `nack` or `reject`.
    public func consume(
        queue: String, consumerTag: String? = nil, exclusive: Bool = false, arguments: AMQPTable = [:]
    ) async throws -> AMQPConsumer {
        let (stream, continuation) = AsyncThrowingStream<Delivery, any Error>.makeStream()
        let tag = try await startConsumer(
            queue: queue, consumerTag: consumerTag, exclusive: exclusive, arguments: arguments,
            continuation: continuation, survivesConnectionLoss: false)
        return AMQPConsumer(tag: tag, channel: self, stream: stream)
    }

    /// Shared by `consume` and the reconnecting client, which passes its
    /// own long-lived stream.
    func startConsumer(
        queue: String, consumerTag: String?, exclusive: Bool, arguments: AMQPTable,
        continuation: AsyncThrowingStream<Delivery, any Error>.Continuation, survivesConnectionLoss: Bool
    ) async throws -> String {
        let tag = consumerTag ?? "swift-\(queue)-\(UUID().uuidString.prefix(8))"
        let sink = DeliverySink(continuation: continuation, channel: self, survivesConnectionLoss: survivesConnectionLoss)
        if !survivesConnectionLoss {
            // The consuming task stopped iterating (cancelled, or the
            // sequence was dropped): stop the broker sending more.
            continuation.onTermination = { [io, id] _ in
                io.submit { core in try? core.cancelConsumer(on: id, tag: tag) }
            }
        }
        do {
            return try await io.perform { [id] core throws(AMQPError) in
                try core.consume(on: id, queue: queue, tag: tag, exclusive: exclusive, arguments: arguments, sink: sink)
            }
        } catch {
            if !survivesConnectionLoss { continuation.finish(throwing: error) }
            throw error
        }
    }

    func cancelConsumer(tag: String) async throws {
        try await io.perform { [id] core throws(AMQPError) in try core.cancelConsumer(on: id, tag: tag) }
    }

    public func ack(deliveryTag: UInt64, multiple: Bool = false) async throws {
        try await io.perform { [id] core throws(AMQPError) in try core.ack(on: id, deliveryTag: deliveryTag, multiple: multiple) }
    }

    public func nack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) async throws {
        try await io.perform { [id] core throws(AMQPError) in
            try core.nack(on: id, deliveryTag: deliveryTag, multiple: multiple, requeue: requeue)
        }
    }

    public func reject(deliveryTag: UInt64, requeue: Bool) async throws {
        try await io.perform { [id] core throws(AMQPError) in try core.reject(on: id, deliveryTag: deliveryTag, requeue: requeue) }
    }

    // Settling without waiting: queued to the connection's thread, sent in
    // the order queued, and not awaited (the broker does not answer them).
    // If the connection is gone the frame is not sent, and the broker
    // delivers the message again on the next one.

    public func sendAck(deliveryTag: UInt64, multiple: Bool = false) {
        io.submit { [id] core in try? core.ack(on: id, deliveryTag: deliveryTag, multiple: multiple) }
    }

    public func sendNack(deliveryTag: UInt64, multiple: Bool = false, requeue: Bool) {
        io.submit { [id] core in try? core.nack(on: id, deliveryTag: deliveryTag, multiple: multiple, requeue: requeue) }
    }

    public func sendReject(deliveryTag: UInt64, requeue: Bool) {
        io.submit { [id] core in try? core.reject(on: id, deliveryTag: deliveryTag, requeue: requeue) }
    }

    /// Closes the channel. Unacknowledged deliveries go back to their queues.
    public func close() async throws {
        try await io.perform { [id] core throws(AMQPError) in try core.closeChannel(id) }
    }
}
