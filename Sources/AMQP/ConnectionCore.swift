internal import CRabbitMQ
import Foundation

// The state of one connection as its I/O thread sees it.
//
// `ConnectionCore` is confined to that thread: it is created there, every
// method runs there, and it is never shared (hence not `Sendable`). That is
// what makes it safe to keep plain mutable dictionaries and callbacks here,
// and to call librabbitmq, which has no locking of its own.
//
// The core does two kinds of work:
// - requests from the public API, arriving as jobs (declare, publish, ack...);
// - reading frames the broker sends on its own (deliveries, confirms, closes),
//   in `pump`, which the thread calls whenever the socket is readable and at
//   least every half heartbeat interval.

/// Where deliveries for one consumer go.
struct DeliverySink: Sendable {
    let continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
    /// The public channel object handed out with each delivery, so that
    /// `delivery.ack()` goes back to the channel the message came from.
    let channel: AMQPChannel
    /// Consumers of the reconnecting client outlive the connection: their
    /// stream stays open and is fed again after the client resubscribes.
    let survivesConnectionLoss: Bool
}

/// A publish waiting for `basic.ack` / `basic.nack`.
struct PendingConfirm {
    let sequence: UInt64
    /// For mandatory publishes: what a `basic.return` for it would carry.
    let returnKey: ReturnKey?
    var returned: (code: UInt16, text: String)?
    let completion: (Result<Void, AMQPError>) -> Void
}

struct ReturnKey: Equatable {
    let exchange: String
    let routingKey: String
    let messageID: String?
}

/// A message arriving in pieces: method frame, header frame, body frames.
struct IncomingContent {
    enum Kind {
        case delivery(consumerTag: String, deliveryTag: UInt64, redelivered: Bool, exchange: String, routingKey: String)
        case returned(code: UInt16, text: String, exchange: String, routingKey: String)
    }
    let kind: Kind
    var properties = BasicProperties()
    var bodySize = -1
    var body: [UInt8] = []
}

final class ChannelState {
    let id: UInt16
    /// Set once the channel is closed, by either side: the reason every
    /// later use of the channel is refused with.
    var failure: AMQPError?
    var confirmMode = false
    /// The broker numbers publishes on a confirm-mode channel from 1.
    var nextSequence: UInt64 = 1
    /// Ascending by sequence number.
    var pending: [PendingConfirm] = []
    var consumers: [String: DeliverySink] = [:]
    var incoming: IncomingContent?

    init(id: UInt16) { self.id = id }
}

/// `publish(contentsOf:window:)`: keeps up to `window` publishes unconfirmed
/// and sends the next one as each confirm comes back, all on the I/O thread,
/// so the caller's task is resumed once for the whole batch.
final class BatchPublish {
    let channel: UInt16
    let messages: [OutboundMessage]
    let window: Int
    var next = 0
    var inFlight = 0
    var failure: AMQPError?
    let completion: (Result<Void, AMQPError>) -> Void

    init(channel: UInt16, messages: [OutboundMessage], window: Int, completion: @escaping (Result<Void, AMQPError>) -> Void) {
        self.channel = channel
        self.messages = messages
        self.window = max(1, window)
        self.completion = completion
    }

    var isFinished: Bool { inFlight == 0 && (failure != nil || next == messages.count) }
}

final class ConnectionCore {
    let configuration: AMQPConfiguration
    private var handle: ConnectionHandle?
    /// Why the connection ended; nil while it is usable (or not yet open).
    private(set) var failure: AMQPError?
    private var channels: [UInt16: ChannelState] = [:]
    private var lastChannelID: UInt16 = 0
    private var closeObservers: [(AMQPError) -> Void] = []
    private var batches: [BatchPublish] = []
    /// The broker stopped reading from us (memory or disk alarm).
    private(set) var isBlocked = false

    init(configuration: AMQPConfiguration) {
        self.configuration = configuration
    }

    // MARK: Lifecycle

    /// Returns the negotiated heartbeat in seconds.
    func open() throws(AMQPError) -> Int {
        let opened = try ConnectionHandle.open(configuration)
        handle = opened
        return opened.heartbeat
    }

    /// Our own goodbye: `connection.close`, then everything on it ends.
    /// Consumers' streams finish without error.
    func close() {
        guard failure == nil, let handle else { return }
        handle.closeGracefully()
        fail(.connectionClosed)
    }

    /// The thread is exiting: whatever is still open ends now.
    func shutDown() {
        fail(.connectionClosed)
        handle = nil
    }

    /// Called once with the reason, when the connection ends (at once if it
    /// already has).
    func onClose(_ observer: @escaping (AMQPError) -> Void) {
        if let failure { observer(failure) } else { closeObservers.append(observer) }
    }

    /// The connection is unusable from now on. Every waiting publish fails
    /// with `error`, every consumer stream ends with it, and the C state is
    /// freed (which closes the socket).
    func fail(_ error: AMQPError) {
        guard failure == nil else { return }
        failure = error
        for id in channels.keys.sorted() { failChannel(id, error, connectionLevel: true) }
        handle = nil
        let observers = closeObservers
        closeObservers = []
        for observer in observers { observer(error) }
        driveBatches()
    }

    private func failChannel(_ id: UInt16, _ error: AMQPError, connectionLevel: Bool = false) {
        guard let channel = channels[id], channel.failure == nil else { return }
        channel.failure = error
        channel.incoming = nil
        let pending = channel.pending
        channel.pending = []
        for confirm in pending { confirm.completion(.failure(error)) }
        let consumers = channel.consumers
        channel.consumers = [:]
        for (_, sink) in consumers {
            if error == .connectionClosed {
                sink.continuation.finish()
            } else if connectionLevel && sink.survivesConnectionLoss {
                // Left open: the reconnecting client feeds it again.
            } else {
                sink.continuation.finish(throwing: error)
            }
        }
    }

    // MARK: Running C calls

    /// Runs `body` with the handle, and files any error at the level it
    /// belongs to: a channel error closes that channel, anything else ends
    /// the connection (librabbitmq's state is not reusable after a failed
    /// read or write, and a timed-out RPC has already closed the socket).
    private func withHandle<T>(
        channel: UInt16? = nil, _ body: (ConnectionHandle) throws(AMQPError) -> T
    ) throws(AMQPError) -> T {
        if let failure { throw failure }
        guard let handle else { throw AMQPError.connectionClosed }
        if let channel {
            guard let state = channels[channel] else { throw AMQPError.protocolError("channel \(channel) is not open") }
            if let failure = state.failure { throw failure }
        }
        do {
            return try body(handle)
        } catch {
            if error.isChannelLevel {
                if let channel { failChannel(channel, error) }
            } else {
                fail(error)
            }
            throw error
        }
    }

    // MARK: Channels

    func openChannel() throws(AMQPError) -> UInt16 {
        let id = try withHandle { handle throws(AMQPError) in
            let id = try freeChannelID(max: handle.channelMax)
            _ = amqp_channel_open(handle.state, id)
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "channel.open")
            return id
        }
        channels[id] = ChannelState(id: id)
        return id
    }

    /// Channel numbers are not reused while a number further up is free:
    /// a late `basic.ack` for a message received on an old channel must not
    /// land on a new channel that happens to share its number.
    private func freeChannelID(max: Int) throws(AMQPError) -> UInt16 {
        let limit = max == 0 ? 2047 : min(max, Int(UInt16.max))
        for _ in 0..<limit {
            lastChannelID = lastChannelID >= limit ? 1 : lastChannelID + 1
            if let existing = channels[lastChannelID] {
                guard existing.failure != nil else { continue }
                channels[lastChannelID] = nil
            }
            return lastChannelID
        }
        throw .protocolError("all \(limit) channels are in use")
    }

    func closeChannel(_ id: UInt16) throws(AMQPError) {
        guard let channel = channels[id] else { return }
        if channel.failure != nil { return }
        try withHandle(channel: id) { handle throws(AMQPError) in
            try handle.check(amqp_channel_close(handle.state, id, AMQP_REPLY_SUCCESS), channel: id, "channel.close")
        }
        // Kept (marked closed) so that later use says "closed" rather than
        // "unknown channel"; the number is reused once others run out.
        failChannel(id, .connectionClosed)
    }

    // MARK: Topology

    func exchangeDeclare(on id: UInt16, name: String, type: String, durable: Bool, autoDelete: Bool, isInternal: Bool, arguments: AMQPTable) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            _ = amqp_exchange_declare(
                handle.state, id, arena.bytes(name), arena.bytes(type), 0, durable ? 1 : 0,
                autoDelete ? 1 : 0, isInternal ? 1 : 0, arena.table(arguments))
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "exchange.declare '\(name)'")
        }
    }

    func exchangeDelete(on id: UInt16, name: String, ifUnused: Bool) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            _ = amqp_exchange_delete(handle.state, id, arena.bytes(name), ifUnused ? 1 : 0)
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "exchange.delete '\(name)'")
        }
    }

    func queueDeclare(on id: UInt16, name: String, passive: Bool, durable: Bool, exclusive: Bool, autoDelete: Bool, arguments: AMQPTable) throws(AMQPError) -> QueueInfo {
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            let ok = amqp_queue_declare(
                handle.state, id, arena.bytes(name), passive ? 1 : 0, durable ? 1 : 0,
                exclusive ? 1 : 0, autoDelete ? 1 : 0, arena.table(arguments))
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "queue.declare '\(name)'")
            guard let ok else { throw .protocolError("queue.declare '\(name)': empty reply") }
            return QueueInfo(
                name: String(ok.pointee.queue), messageCount: ok.pointee.message_count,
                consumerCount: ok.pointee.consumer_count)
        }
    }

    func queueBind(on id: UInt16, queue: String, exchange: String, routingKey: String, arguments: AMQPTable) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            _ = amqp_queue_bind(
                handle.state, id, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey),
                arena.table(arguments))
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "queue.bind '\(queue)' to '\(exchange)'")
        }
    }

    func queueUnbind(on id: UInt16, queue: String, exchange: String, routingKey: String, arguments: AMQPTable) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            _ = amqp_queue_unbind(
                handle.state, id, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey),
                arena.table(arguments))
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "queue.unbind '\(queue)'")
        }
    }

    func queuePurge(on id: UInt16, name: String) throws(AMQPError) -> UInt32 {
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            let ok = amqp_queue_purge(handle.state, id, arena.bytes(name))
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "queue.purge '\(name)'")
            return ok?.pointee.message_count ?? 0
        }
    }

    func queueDelete(on id: UInt16, name: String, ifUnused: Bool, ifEmpty: Bool) throws(AMQPError) -> UInt32 {
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            let ok = amqp_queue_delete(handle.state, id, arena.bytes(name), ifUnused ? 1 : 0, ifEmpty ? 1 : 0)
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "queue.delete '\(name)'")
            return ok?.pointee.message_count ?? 0
        }
    }

    func qos(on id: UInt16, prefetchCount: UInt16, global: Bool) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            _ = amqp_basic_qos(handle.state, id, 0, prefetchCount, global ? 1 : 0)
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "basic.qos")
        }
    }

    // MARK: Publishing

    func confirmSelect(on id: UInt16) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            _ = amqp_confirm_select(handle.state, id)
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "confirm.select")
        }
        channels[id]?.confirmMode = true
    }

    /// Sends one message. On a confirm-mode channel `completion` runs when
    /// the broker acks or nacks it (or the channel dies); otherwise as soon
    /// as it is written.
    func publish(_ message: OutboundMessage, on id: UInt16, completion: @escaping (Result<Void, AMQPError>) -> Void) {
        do {
            try withHandle(channel: id) { handle throws(AMQPError) in
                let arena = CArena()
                var properties = arena.properties(message.properties)
                let exchange = arena.bytes(message.exchange)
                let routingKey = arena.bytes(message.routingKey)
                let status = message.body.withUnsafeBytes { body in
                    amqp_basic_publish(
                        handle.state, id, exchange, routingKey, message.mandatory ? 1 : 0, 0, &properties,
                        amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
                }
                withExtendedLifetime(arena) {}
                try handle.check(status: status, "basic.publish")
            }
        } catch {
            completion(.failure(error))
            return
        }
        guard let channel = channels[id], channel.confirmMode else {
            completion(.success(()))
            return
        }
        let sequence = channel.nextSequence
        channel.nextSequence += 1
        let returnKey = message.mandatory
            ? ReturnKey(exchange: message.exchange, routingKey: message.routingKey, messageID: message.properties.messageID)
            : nil
        channel.pending.append(PendingConfirm(sequence: sequence, returnKey: returnKey, completion: completion))
    }

    func publishBatch(_ batch: BatchPublish) {
        batches.append(batch)
        driveBatches()
    }

    /// Tops every batch up to its window, and completes finished ones.
    /// Called after each job and each pump, i.e. whenever confirms may have
    /// freed room.
    func driveBatches() {
        var index = 0
        while index < batches.count {
            let batch = batches[index]
            while batch.failure == nil, batch.next < batch.messages.count, batch.inFlight < batch.window {
                let message = batch.messages[batch.next]
                batch.next += 1
                batch.inFlight += 1
                publish(message, on: batch.channel) { result in
                    batch.inFlight -= 1
                    if case .failure(let error) = result, batch.failure == nil { batch.failure = error }
                }
            }
            if batch.isFinished {
                batches.remove(at: index)
                batch.completion(batch.failure.map { .failure($0) } ?? .success(()))
            } else {
                index += 1
            }
        }
    }

    // MARK: Consuming

    func consume(on id: UInt16, queue: String, tag: String, exclusive: Bool, arguments: AMQPTable, sink: DeliverySink) throws(AMQPError) -> String {
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            // no_ack = 0: every delivery waits for our ack, nack or reject.
            let ok = amqp_basic_consume(
                handle.state, id, arena.bytes(queue), arena.bytes(tag), 0, 0, exclusive ? 1 : 0,
                arena.table(arguments))
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "basic.consume '\(queue)'")
            let actual = ok.map { String($0.pointee.consumer_tag) } ?? tag
            channels[id]?.consumers[actual] = sink
            return actual
        }
    }

    /// `basic.cancel`; the stream ends without error. Deliveries already
    /// on the wire are handed back (nack with requeue) as they arrive.
    func cancelConsumer(on id: UInt16, tag: String) throws(AMQPError) {
        guard let channel = channels[id], let sink = channel.consumers.removeValue(forKey: tag) else { return }
        sink.continuation.finish()
        guard channel.failure == nil, failure == nil else { return }
        try withHandle(channel: id) { handle throws(AMQPError) in
            let arena = CArena()
            _ = amqp_basic_cancel(handle.state, id, arena.bytes(tag))
            try handle.check(amqp_get_rpc_reply(handle.state), channel: id, "basic.cancel")
        }
    }

    func ack(on id: UInt16, deliveryTag: UInt64, multiple: Bool) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            try handle.check(status: amqp_basic_ack(handle.state, id, deliveryTag, multiple ? 1 : 0), "basic.ack")
        }
    }

    func nack(on id: UInt16, deliveryTag: UInt64, multiple: Bool, requeue: Bool) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            try handle.check(
                status: amqp_basic_nack(handle.state, id, deliveryTag, multiple ? 1 : 0, requeue ? 1 : 0), "basic.nack")
        }
    }

    func reject(on id: UInt16, deliveryTag: UInt64, requeue: Bool) throws(AMQPError) {
        try withHandle(channel: id) { handle throws(AMQPError) in
            try handle.check(status: amqp_basic_reject(handle.state, id, deliveryTag, requeue ? 1 : 0), "basic.reject")
        }
    }

    // MARK: Reading frames

    var socketDescriptor: Int32 { handle?.socketDescriptor ?? -1 }

    var hasBufferedInput: Bool { handle?.hasBufferedInput ?? false }

    /// How long the thread may sleep in `poll` with nothing to do. librabbitmq
    /// sends heartbeats and notices a silent broker only inside its own
    /// calls, so with heartbeats on, the thread has to come back at least
    /// every half interval and call in.
    var idleTimeoutMilliseconds: Int32 {
        guard let handle else { return -1 }
        let heartbeat = handle.heartbeat
        return heartbeat > 0 ? Int32(max(50, heartbeat * 500)) : -1
    }

    /// Reads and handles every frame that is already available, without
    /// waiting for more. Returns true if it stopped early (more may be
    /// there), so the thread comes back before sleeping.
    func pump(maxFrames: Int = 512) -> Bool {
        guard failure == nil, let handle else { return false }
        var frame = amqp_frame_t()
        // One microsecond, not zero. With {0, 0} librabbitmq treats the
        // deadline as "immediate" and never compares it with its heartbeat
        // deadline, so a broker that went silent would never be noticed.
        // With one microsecond the read still does not block (the C library
        // rounds down to a 0 ms poll), but an overdue heartbeat deadline is
        // earlier than ours and wins: the call then fails with
        // AMQP_STATUS_HEARTBEAT_TIMEOUT. The same call sends our heartbeat
        // when one is due.
        var nearlyNow = timeval(tv_sec: 0, tv_usec: 1)
        for _ in 0..<maxFrames {
            let status = amqp_simple_wait_frame_noblock(handle.state, &frame, &nearlyNow)
            if status == AMQP_STATUS_TIMEOUT.rawValue {
                // Nothing more to read: everything handled has been copied
                // out, so the pools holding decoded frames can be recycled.
                amqp_maybe_release_buffers(handle.state)
                return false
            }
            if status != AMQP_STATUS_OK.rawValue {
                fail(handle.error(status: status, "reading from the broker"))
                return false
            }
            handleFrame(frame, handle)
            if failure != nil { return false }
        }
        return true
    }

    private func handleFrame(_ frame: amqp_frame_t, _ handle: ConnectionHandle) {
        let id = frame.channel
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            handleMethod(frame.payload.method, channel: id, handle)
        case AMQP_FRAME_HEADER:
            guard let channel = channels[id], channel.incoming != nil,
                let decoded = frame.payload.properties.decoded
            else { return }
            let size = Int(frame.payload.properties.body_size)
            channel.incoming!.properties = decodeProperties(
                decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
            channel.incoming!.bodySize = size
            channel.incoming!.body.reserveCapacity(size)
            if size == 0 { completeContent(channel, handle) }
        case AMQP_FRAME_BODY:
            guard let channel = channels[id], channel.incoming != nil else { return }
            let fragment = frame.payload.body_fragment
            if let base = fragment.bytes, fragment.len > 0 {
                channel.incoming!.body.append(contentsOf: UnsafeRawBufferPointer(start: base, count: fragment.len))
            }
            if channel.incoming!.body.count >= channel.incoming!.bodySize { completeContent(channel, handle) }
        default:
            break
        }
    }

    private func handleMethod(_ method: amqp_method_t, channel id: UInt16, _ handle: ConnectionHandle) {
        guard let decoded = method.decoded else { return }
        switch method.id {
        case amqp_method_number_t(CRABBITMQ_CONNECTION_CLOSE):
            let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            handle.acknowledgeConnectionClose()
            fail(.connectionClosedByBroker(code: close.reply_code, text: String(close.reply_text)))
        case amqp_method_number_t(CRABBITMQ_CHANNEL_CLOSE):
            let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            handle.acknowledgeChannelClose(id)
            failChannel(id, .channelClosed(code: close.reply_code, text: String(close.reply_text)))
        case amqp_method_number_t(CRABBITMQ_BASIC_DELIVER):
            let deliver = decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            channels[id]?.incoming = IncomingContent(
                kind: .delivery(
                    consumerTag: String(deliver.consumer_tag), deliveryTag: deliver.delivery_tag,
                    redelivered: deliver.redelivered != 0, exchange: String(deliver.exchange),
                    routingKey: String(deliver.routing_key)))
        case amqp_method_number_t(CRABBITMQ_BASIC_RETURN):
            let returned = decoded.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            channels[id]?.incoming = IncomingContent(
                kind: .returned(
                    code: returned.reply_code, text: String(returned.reply_text),
                    exchange: String(returned.exchange), routingKey: String(returned.routing_key)))
        case amqp_method_number_t(CRABBITMQ_BASIC_ACK):
            let ack = decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            settle(channel: id, upTo: ack.delivery_tag, multiple: ack.multiple != 0, acked: true)
        case amqp_method_number_t(CRABBITMQ_BASIC_NACK):
            let nack = decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            settle(channel: id, upTo: nack.delivery_tag, multiple: nack.multiple != 0, acked: false)
        case amqp_method_number_t(CRABBITMQ_BASIC_CANCEL):
            // The broker cancelled a consumer (its queue was deleted, or the
            // node holding it went away).
            let cancel = decoded.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = String(cancel.consumer_tag)
            if let sink = channels[id]?.consumers.removeValue(forKey: tag) {
                sink.continuation.finish(throwing: AMQPError.consumerCancelled(tag: tag))
            }
        case amqp_method_number_t(CRABBITMQ_CONNECTION_BLOCKED):
            isBlocked = true
        case amqp_method_number_t(CRABBITMQ_CONNECTION_UNBLOCKED):
            isBlocked = false
        default:
            break
        }
    }

    private func completeContent(_ channel: ChannelState, _ handle: ConnectionHandle) {
        guard let content = channel.incoming else { return }
        channel.incoming = nil
        switch content.kind {
        case .delivery(let consumerTag, let deliveryTag, let redelivered, let exchange, let routingKey):
            guard let sink = channel.consumers[consumerTag] else {
                // The consumer was cancelled while this message was on its
                // way: hand it back so another consumer gets it.
                try? withHandle(channel: channel.id) { handle throws(AMQPError) in
                    try handle.check(status: amqp_basic_nack(handle.state, channel.id, deliveryTag, 0, 1), "basic.nack")
                }
                return
            }
            let delivery = Delivery(
                body: content.body, exchange: exchange, routingKey: routingKey, redelivered: redelivered,
                deliveryTag: deliveryTag, consumerTag: consumerTag, properties: content.properties,
                channel: sink.channel)
            if case .terminated = sink.continuation.yield(delivery) {
                // Nobody iterates the stream any more; its termination
                // handler has queued the basic.cancel. Until that runs, hand
                // messages back.
                try? withHandle(channel: channel.id) { handle throws(AMQPError) in
                    try handle.check(status: amqp_basic_nack(handle.state, channel.id, deliveryTag, 0, 1), "basic.nack")
                }
            }
        case .returned(let code, let text, let exchange, let routingKey):
            // basic.return carries no publish sequence number. RabbitMQ sends
            // it before the ack for the same message, so mark the oldest
            // unconfirmed mandatory publish that matches; the ack then
            // completes it with `.returned`.
            let key = ReturnKey(exchange: exchange, routingKey: routingKey, messageID: content.properties.messageID)
            if let index = channel.pending.firstIndex(where: { $0.returnKey == key && $0.returned == nil }) {
                channel.pending[index].returned = (code, text)
            }
        }
    }

    private func settle(channel id: UInt16, upTo tag: UInt64, multiple: Bool, acked: Bool) {
        guard let channel = channels[id] else { return }
        var settled: [PendingConfirm] = []
        if multiple {
            let count = channel.pending.prefix(while: { $0.sequence <= tag }).count
            settled = Array(channel.pending.prefix(count))
            channel.pending.removeFirst(count)
        } else if let index = channel.pending.firstIndex(where: { $0.sequence == tag }) {
            settled = [channel.pending.remove(at: index)]
        }
        for confirm in settled {
            if !acked {
                confirm.completion(.failure(.publishNotConfirmed(reason: "broker sent basic.nack for publish \(confirm.sequence)")))
            } else if let returned = confirm.returned {
                confirm.completion(.failure(.returned(code: returned.code, text: returned.text)))
            } else {
                confirm.completion(.success(()))
            }
        }
    }
}
