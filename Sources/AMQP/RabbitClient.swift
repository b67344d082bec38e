import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// A connection that comes back.
///
/// `run()` (a swift-service-lifecycle `Service`) connects, declares the
/// topology, subscribes the registered consumers, and waits; when the
/// connection ends (broker restart, network fault, missed heartbeats) it
/// backs off, reconnects, declares the topology again and resubscribes.
/// Publishing goes through one confirm-mode channel owned by the client.
///
/// What recovery does *not* do, on purpose:
/// - replay publishes. A publish in flight when the connection dies throws;
///   only the caller knows whether to send it again (at-least-once means the
///   broker may already have it, so consumers must tolerate duplicates).
/// - keep deliveries ackable. A delivery received on the old connection
///   cannot be settled on the new one; the broker redelivers it there with
///   `redelivered == true`.
public final class RabbitClient: Service, MessagePublisher {
    public struct Options: Sendable {
        /// First wait after a failed attempt; doubled per attempt up to
        /// `maximumBackoff`, with up to 20 % random extra so a fleet of
        /// services does not reconnect in lockstep.
        public var initialBackoff: Duration
        public var maximumBackoff: Duration

        public init(initialBackoff: Duration = .milliseconds(100), maximumBackoff: Duration = .seconds(5)) {
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
        }
    }

    /// What happened to the connection, for logs, metrics and tests.
    public enum Event: Sendable, Equatable {
        case connected(generation: Int)
        case disconnected(AMQPError)
        case connectFailed(AMQPError, attempt: Int)
    }

    /// Declares exchanges, queues and bindings on a fresh connection. Runs
    /// on every (re)connect, so it must be idempotent (declares are).
    public typealias Topology = @Sendable (AMQPChannel) async throws -> Void

    private struct Registration {
        let queue: String
        let prefetch: UInt16
        let continuation: AsyncThrowingStream<Delivery, any Error>.Continuation
        /// The connection generation it is subscribed on (0: none yet).
        var generation = 0
        var channel: AMQPChannel?
        var tag: String?
        /// `stop()` was called: not resubscribed after a reconnect.
        var stopped = false
    }

    private struct State {
        var connection: AMQPConnection?
        var publishChannel: AMQPChannel?
        var generation = 0
        var lastError: AMQPError?
        var shuttingDown = false
        var registrations: [Int: Registration] = [:]
        var nextID = 0
        var eventSinks: [Int: AsyncStream<Event>.Continuation] = [:]
    }

    public let configuration: AMQPConfiguration
    public let options: Options
    private let logger: Logger
    private let topology: Topology
    private let state = Mutex(State())

    public init(
        configuration: AMQPConfiguration, options: Options = Options(),
        logger: Logger = Logger(label: "amqp.client"), topology: @escaping Topology = { _ in }
    ) {
        self.configuration = configuration
        self.options = options
        self.logger = logger
        self.topology = topology
    }

    // MARK: Service

    /// Keeps a connection up until graceful shutdown, task cancellation or
    /// `shutdown()`.
    public func run() async throws {
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await supervise()
            } onGracefulShutdown: {
                self.shutdown()
            }
        } onCancel: {
            self.shutdown()
        }
    }

    /// Ends `run()`: closes the connection and finishes consumer streams.
    public func shutdown() {
        let connection = state.withLock { state -> AMQPConnection? in
            state.shuttingDown = true
            return state.connection
        }
        // Wakes the supervisor, which waits on `closed()`.
        if let connection { Task { await connection.close() } }
    }

    private var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    private func supervise() async {
        var attempt = 0
        while !isShuttingDown {
            do {
                let connection = try await AMQPConnection.connect(configuration)
                let publishChannel: AMQPChannel
                do {
                    let setup = try await connection.openChannel()
                    try await topology(setup)
                    try await setup.close()
                    publishChannel = try await connection.openChannel()
                    try await publishChannel.confirmSelect()
                } catch {
                    await connection.close()
                    throw error
                }
                attempt = 0
                let generation = state.withLock { state -> Int in
                    state.connection = connection
                    state.publishChannel = publishChannel
                    state.generation += 1
                    state.lastError = nil
                    return state.generation
                }
                if isShuttingDown { await connection.close() }
                await subscribePending(on: connection, generation: generation)
                logger.info("AMQP connected", metadata: ["address": "\(configuration.address)", "generation": "\(generation)"])
                emit(.connected(generation: generation))

                let reason = await connection.closed()
                state.withLock { state in
                    state.connection = nil
                    state.publishChannel = nil
                    state.lastError = reason
                }
                if isShuttingDown { break }
                logger.warning("AMQP connection lost; reconnecting", metadata: ["error": "\(reason)"])
                emit(.disconnected(reason))
            } catch {
                let failure = error as? AMQPError ?? .protocolError("\(error)")
                attempt += 1
                state.withLock { $0.lastError = failure }
                logger.warning("AMQP connect failed", metadata: ["attempt": "\(attempt)", "error": "\(failure)"])
                emit(.connectFailed(failure, attempt: attempt))
                await pause(backoff(attempt: attempt))
            }
        }
        let (connection, registrations, sinks) = state.withLock { state in
            defer {
                state.connection = nil
                state.publishChannel = nil
                state.registrations = [:]
                state.eventSinks = [:]
            }
            return (state.connection, Array(state.registrations.values), Array(state.eventSinks.values))
        }
        await connection?.close()
        for registration in registrations { registration.continuation.finish() }
        for sink in sinks { sink.finish() }
    }

    private func backoff(attempt: Int) -> Duration {
        let exponent = min(attempt - 1, 16)
        let base = min(options.initialBackoff * (1 << exponent), options.maximumBackoff)
        return base + base * Double.random(in: 0...0.2)
    }

    /// Sleeps in short slices so that shutdown is noticed quickly.
    private func pause(_ duration: Duration) async {
        let deadline = ContinuousClock.now + duration
        while !isShuttingDown, ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(.milliseconds(50), deadline - ContinuousClock.now))
        }
    }

    // MARK: Events

    /// A stream of connection events from now on. Ends at shutdown.
    public func events() -> AsyncStream<Event> {
        let (stream, continuation) = AsyncStream<Event>.makeStream()
        let id = state.withLock { state -> Int in
            state.nextID += 1
            state.eventSinks[state.nextID] = continuation
            return state.nextID
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.eventSinks.removeValue(forKey: id) }
        }
        return stream
    }

    private func emit(_ event: Event) {
        for sink in state.withLock({ Array($0.eventSinks.values) }) { sink.yield(event) }
    }

    // MARK: Connection access

    /// The current connection, if any. It may end at any moment.
    public var connection: AMQPConnection? { state.withLock { $0.connection } }

    /// Why the last connection or attempt ended, nil while connected.
    public var lastError: AMQPError? { state.withLock { $0.lastError } }

    /// Waits until connected (topology declared, consumers subscribed), or
    /// throws `.notConnected` with the last error after `timeout`.
    public func waitUntilConnected(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (ready, shuttingDown, lastError) = state.withLock { ($0.publishChannel != nil, $0.shuttingDown, $0.lastError) }
            if ready { return }
            if shuttingDown { throw AMQPError.connectionClosed }
            if ContinuousClock.now >= deadline {
                throw AMQPError.notConnected(reason: lastError.map { "\($0)" } ?? "still connecting to \(configuration.address)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Runs `body` on a short-lived channel of the current connection.
    public func withChannel<T: Sendable>(_ body: (AMQPChannel) async throws -> T) async throws -> T {
        guard let connection else { throw notConnected() }
        let channel = try await connection.openChannel()
        do {
            let result = try await body(channel)
            try? await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    private func notConnected() -> AMQPError {
        .notConnected(reason: lastError.map { "\($0)" } ?? "connecting to \(configuration.address)")
    }

    // MARK: Publishing

    /// Publishes on the client's confirm channel and returns once the broker
    /// confirmed. Throws `.notConnected` at once while reconnecting, and the
    /// connection's error if it dies before the confirm: the message may or
    /// may not have been taken, so publish it again (consumers deduplicate).
    public func publish(_ message: OutboundMessage) async throws {
        guard let channel = state.withLock({ $0.publishChannel }) else { throw notConnected() }
        try await channel.publish(message)
    }

    /// `AMQPChannel.publish(contentsOf:window:)` on the client's channel.
    public func publish(contentsOf messages: [OutboundMessage], window: Int = 256) async throws {
        guard let channel = state.withLock({ $0.publishChannel }) else { throw notConnected() }
        try await channel.publish(contentsOf: messages, window: window)
    }

    // MARK: Consuming

    /// Subscribes to `queue` now (if connected) and again after every
    /// reconnect; the returned sequence spans connections and only ends with
    /// `stop()` or the client's shutdown.
    public func consume(queue: String, prefetch: UInt16 = 10) -> RecoveringConsumer {
        let (stream, continuation) = AsyncThrowingStream<Delivery, any Error>.makeStream()
        let (id, connection, generation) = state.withLock { state in
            state.nextID += 1
            state.registrations[state.nextID] = Registration(queue: queue, prefetch: prefetch, continuation: continuation)
            return (state.nextID, state.connection, state.generation)
        }
        // Only cancellation (the consuming task went away) unregisters here.
        // A normal finish comes from `stop()`, after which the channel must
        // stay open until `close()` so that received deliveries can be acked.
        continuation.onTermination = { [weak self] termination in
            guard let self, case .cancelled = termination else { return }
            Task { await self.unregister(id) }
        }
        if let connection {
            Task { await subscribePending(on: connection, generation: generation) }
        }
        return RecoveringConsumer(id: id, client: self, stream: stream)
    }

    /// Subscribes every registration not yet subscribed on this generation.
    /// Claiming under the lock keeps the supervisor and `consume` from both
    /// subscribing the same registration.
    private func subscribePending(on connection: AMQPConnection, generation: Int) async {
        let claimed = state.withLock { state -> [(Int, Registration)] in
            guard state.generation == generation else { return [] }
            var claimed: [(Int, Registration)] = []
            for (id, registration) in state.registrations where registration.generation != generation && !registration.stopped {
                state.registrations[id]?.generation = generation
                claimed.append((id, registration))
            }
            return claimed
        }
        for (id, registration) in claimed {
            do {
                let channel = try await connection.openChannel()
                try await channel.qos(prefetchCount: registration.prefetch)
                let tag = try await channel.startConsumer(
                    queue: registration.queue, consumerTag: nil, exclusive: false, arguments: [:],
                    continuation: registration.continuation, survivesConnectionLoss: true)
                let stillWanted = state.withLock { state -> Bool in
                    guard state.registrations[id] != nil else { return false }
                    state.registrations[id]?.channel = channel
                    state.registrations[id]?.tag = tag
                    return true
                }
                if !stillWanted { try? await channel.close() }
            } catch {
                // A connection-level failure is handled by the supervisor's
                // reconnect. A channel-level one (the queue does not exist)
                // would repeat on every attempt: end the stream with it.
                if let failure = error as? AMQPError, failure.isChannelLevel {
                    logger.error("AMQP consumer failed", metadata: ["queue": "\(registration.queue)", "error": "\(failure)"])
                    registration.continuation.finish(throwing: failure)
                }
            }
        }
    }

    fileprivate func stop(_ id: Int) async {
        let registration = state.withLock { state -> Registration? in
            state.registrations[id]?.stopped = true
            return state.registrations[id]
        }
        guard let registration else { return }
        if let channel = registration.channel, let tag = registration.tag {
            try? await channel.cancelConsumer(tag: tag)
        }
        registration.continuation.finish()
    }

    fileprivate func unregister(_ id: Int) async {
        let registration = state.withLock { $0.registrations.removeValue(forKey: id) }
        guard let registration else { return }
        registration.continuation.finish()
        // Closing the channel returns its unacknowledged deliveries to the queue.
        try? await registration.channel?.close()
    }
}

/// The deliveries of a `RabbitClient` consumer, across reconnects.
public struct RecoveringConsumer: AsyncSequence, Sendable {
    public typealias Element = Delivery
    public typealias AsyncIterator = AsyncThrowingStream<Delivery, any Error>.Iterator

    let id: Int
    let client: RabbitClient
    let stream: AsyncThrowingStream<Delivery, any Error>

    public func makeAsyncIterator() -> AsyncIterator { stream.makeAsyncIterator() }

    /// Stops new deliveries (`basic.cancel`); the sequence ends after the
    /// ones already received. Their channel stays open so they can still be
    /// acked; `close()` closes it (what is still unacked goes back to the queue).
    public func stop() async {
        await client.stop(id)
    }

    public func close() async {
        await client.unregister(id)
    }
}
