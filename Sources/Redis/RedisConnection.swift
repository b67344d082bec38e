/// One TCP connection to Redis, with its own thread.
///
/// Calls from many tasks are allowed and run one after another, in the order
/// they reached the thread. Commands that block on the server (BLPOP,
/// BZPOPMIN...) hold the connection for their whole wait, so give them a
/// connection of their own.
///
/// After a connection error (see `RedisError.isConnectionError`) this object
/// is done: every later call fails with the same error. `RedisClient` wraps
/// a connection and replaces it when that happens.
public final class RedisConnection: RedisCommandRunner, Sendable {
    public let address: RedisAddress
    public let configuration: RedisConfiguration
    private let thread: ConnectionThread

    private init(address: RedisAddress, configuration: RedisConfiguration, thread: ConnectionThread) {
        self.address = address
        self.configuration = configuration
        self.thread = thread
    }

    deinit {
        thread.shutdown()
    }

    /// Connects, failing within about `configuration.connectTimeout` with an
    /// error that names the address.
    public static func connect(
        to address: RedisAddress,
        configuration: RedisConfiguration = RedisConfiguration()
    ) async throws(RedisError) -> RedisConnection {
        let thread = ConnectionThread.forConnection(name: "redis \(address.port)")
        do throws(RedisError) {
            // Connecting blocks too, so it happens on the new thread, which
            // then keeps the handle for good.
            try await thread.run(closedError: .closed(address: address.description)) { state throws(RedisError) in
                state.context = try HiredisContext.connect(to: address, configuration: configuration)
            }
        } catch {
            thread.shutdown()
            throw error
        }
        return RedisConnection(address: address, configuration: configuration, thread: thread)
    }

    public static func connect(
        host: String = "127.0.0.1",
        port: Int = 6379,
        configuration: RedisConfiguration = RedisConfiguration()
    ) async throws(RedisError) -> RedisConnection {
        try await connect(to: RedisAddress(host: host, port: port), configuration: configuration)
    }

    /// Closes the connection once the calls already queued have run. Later
    /// calls fail with `.closed`.
    public func close() {
        thread.shutdown()
    }

    // MARK: RedisCommandRunner

    /// Sends one command and returns its reply. An error reply is thrown as
    /// `.server` (or `.noScript`), so a returned value is never `.error`.
    public func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue {
        try await perform { context throws(RedisError) in
            try context.send(command)
        }.checked()
    }

    /// Sends all commands in one write and reads all replies: one round
    /// trip. Error replies stay in the result as `.error` values, in place,
    /// since the commands around them did run; use `checked()` on each.
    public func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RESPValue] {
        if commands.isEmpty { return [] }
        return try await perform { context throws(RedisError) in
            try context.pipeline(commands)
        }
    }

    /// Sends a command that waits on the server for up to `serverTimeout`
    /// (which the command itself must carry as its timeout argument). The
    /// socket waits `serverTimeout + commandTimeout`, so the server's own
    /// "nothing came" reply always arrives before we would give up.
    public func sendBlocking(_ command: RedisCommand, serverTimeout: Duration) async throws(RedisError) -> RESPValue {
        guard serverTimeout >= .milliseconds(1) else {
            // Redis reads 0 as "block forever": a worker stuck on a dead
            // server would never notice. Ask for a bounded wait in a loop.
            throw .invalidArgument("a blocking command needs a timeout of at least 1 ms, got \(serverTimeout)")
        }
        let socketTimeout = serverTimeout + configuration.commandTimeout
        return try await perform { context throws(RedisError) in
            try context.withSocketTimeout(socketTimeout) { () throws(RedisError) in
                try context.send(command)
            }
        }.checked()
    }

    /// Runs `body` with the live context on the connection's thread, and
    /// retires the context on the first connection error: its socket is
    /// closed at once and later calls get the same error without touching it.
    private func perform<T: Sendable>(
        _ body: @escaping @Sendable (HiredisContext) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        let address = address.description
        return try await thread.run(closedError: .closed(address: address)) { state throws(RedisError) in
            if let failure = state.failure { throw failure }
            guard let context = state.context else { throw .closed(address: address) }
            do throws(RedisError) {
                return try body(context)
            } catch {
                if error.isConnectionError {
                    state.failure = error
                    state.context = nil
                }
                throw error
            }
        }
    }
}
