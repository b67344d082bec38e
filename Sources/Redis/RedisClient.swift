import Logging

/// How long `RedisClient` waits between reconnection attempts.
///
/// The first attempt after a connection breaks is made at once, on the next
/// call. If it fails, the next one is allowed after `initialDelay`, then
/// twice that, and so on up to `maximumDelay`. Calls made in between fail at
/// once with `.unavailable`, so a service with Redis down answers errors
/// quickly instead of piling up callers that each wait for a connect timeout.
public struct ReconnectPolicy: Sendable, Hashable {
    public var initialDelay: Duration
    public var maximumDelay: Duration
    public var multiplier: Double

    public init(initialDelay: Duration = .milliseconds(100), maximumDelay: Duration = .seconds(5), multiplier: Double = 2) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.multiplier = multiplier
    }

    /// The wait after `failures` failed attempts in a row (1, 2, ...).
    public func delay(afterFailures failures: Int) -> Duration {
        var delay = initialDelay
        for _ in 1..<max(failures, 1) {
            delay = delay * multiplier
            if delay >= maximumDelay { return maximumDelay }
        }
        return min(delay, maximumDelay)
    }
}

/// A Redis client that survives the server going away.
///
/// It holds one `RedisConnection`, opened on first use. When a call fails
/// with a connection error the connection is dropped, and the next call
/// opens a new one, with back-off while the server stays unreachable (see
/// `ReconnectPolicy`).
///
/// It never retries a command by itself: after a lost connection nobody
/// knows whether an INCR or an LPUSH reached the server, and only the caller
/// can tell whether doing it twice is harmless.
///
/// It is an actor because its state (which connection, how many failures)
/// changes from many tasks. The actor never blocks: the blocking work happens
/// on the connection's own thread, and the actor only awaits it.
public actor RedisClient: RedisCommandRunner {
    public nonisolated let address: RedisAddress
    public nonisolated let configuration: RedisConfiguration
    public nonisolated let reconnectPolicy: ReconnectPolicy
    private let logger: Logger
    private var state: State = .idle(lastFailure: nil)

    private enum State {
        /// No connection. After a failure, `lastFailure` says when the next
        /// attempt is allowed.
        case idle(lastFailure: Failure?)
        /// A connect is under way; concurrent callers wait for the same one
        /// rather than each opening their own.
        case connecting(Task<Result<RedisConnection, RedisError>, Never>, failuresSoFar: Int)
        case connected(RedisConnection)
        case closed
    }

    private struct Failure {
        var error: RedisError
        var failures: Int
        var retryAt: ContinuousClock.Instant
    }

    /// Creates the client; nothing connects until the first call.
    public init(
        address: RedisAddress,
        configuration: RedisConfiguration = RedisConfiguration(),
        reconnectPolicy: ReconnectPolicy = ReconnectPolicy(),
        logger: Logger = Logger(label: "redis")
    ) {
        self.address = address
        self.configuration = configuration
        self.reconnectPolicy = reconnectPolicy
        var logger = logger
        logger[metadataKey: "redis.address"] = "\(address)"
        self.logger = logger
    }

    /// Closes the connection; later calls fail with `.closed`.
    public func close() {
        if case .connected(let connection) = state { connection.close() }
        state = .closed
    }

    // MARK: RedisCommandRunner

    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        let connection = try await currentConnection()
        do throws(RedisError) {
            return try await connection.send(command)
        } catch {
            dropIfBroken(connection, error)
            throw error
        }
    }

    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RESPValue] {
        let connection = try await currentConnection()
        do throws(RedisError) {
            return try await connection.pipeline(commands)
        } catch {
            dropIfBroken(connection, error)
            throw error
        }
    }

    /// While this waits, every other call on this client waits behind it (it
    /// is one connection). Use a client of its own for blocking commands.
    public func sendBlocking(_ command: RedisCommand, serverTimeout: Duration) async throws(RedisError) -> RESPValue {
        let connection = try await currentConnection()
        do throws(RedisError) {
            return try await connection.sendBlocking(command, serverTimeout: serverTimeout)
        } catch {
            dropIfBroken(connection, error)
            throw error
        }
    }

    // MARK: Connection management

    private func currentConnection() async throws(RedisError) -> RedisConnection {
        switch state {
        case .connected(let connection):
            return connection
        case .closed:
            throw .closed(address: address.description)
        case .connecting(let task, _):
            return try await task.value.get()
        case .idle(let lastFailure):
            if let lastFailure {
                let now = ContinuousClock.now
                if now < lastFailure.retryAt {
                    throw .unavailable(
                        address: address.description,
                        retryIn: lastFailure.retryAt - now,
                        lastError: lastFailure.error
                    )
                }
            }
            return try await reconnect(failuresSoFar: lastFailure?.failures ?? 0)
        }
    }

    private func reconnect(failuresSoFar: Int) async throws(RedisError) -> RedisConnection {
        let address = address
        let configuration = configuration
        let task = Task { () -> Result<RedisConnection, RedisError> in
            do throws(RedisError) {
                return .success(try await RedisConnection.connect(to: address, configuration: configuration))
            } catch {
                return .failure(error)
            }
        }
        state = .connecting(task, failuresSoFar: failuresSoFar)
        let result = await task.value

        // The actor may have run other calls while we waited; only `close()`
        // can have changed the state, and then the new connection is unwanted.
        if case .closed = state {
            if case .success(let connection) = result { connection.close() }
            throw .closed(address: address.description)
        }
        switch result {
        case .success(let connection):
            state = .connected(connection)
            if failuresSoFar > 0 {
                logger.info("reconnected to Redis", metadata: ["failed_attempts": "\(failuresSoFar)"])
            }
            return connection
        case .failure(let error):
            let failures = failuresSoFar + 1
            let delay = reconnectPolicy.delay(afterFailures: failures)
            state = .idle(lastFailure: Failure(error: error, failures: failures, retryAt: .now + delay))
            logger.warning("cannot connect to Redis", metadata: [
                "error": "\(error)", "attempt": "\(failures)", "retry_in": "\(delay)",
            ])
            throw error
        }
    }

    /// Forgets `connection` if `error` means it is broken. The next call
    /// reconnects at once; back-off only starts if that attempt fails too.
    private func dropIfBroken(_ connection: RedisConnection, _ error: RedisError) {
        guard error.isConnectionError,
              case .connected(let current) = state, current === connection
        else { return }
        logger.warning("Redis connection lost", metadata: ["error": "\(error)"])
        connection.close()
        state = .idle(lastFailure: Failure(error: error, failures: 0, retryAt: .now))
    }
}
