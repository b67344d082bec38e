/// Anything that can run Redis commands: a single `RedisConnection`, or a
/// `RedisClient` that reconnects. The typed helpers below are written once,
/// here, on top of the three primitives.
public protocol RedisCommandRunner: Sendable {
    /// One command, one reply; an error reply is thrown.
    func send(_ command: RedisCommand) async throws(RedisError) -> RESPValue
    /// N commands, N replies, one round trip; error replies are returned.
    func pipeline(_ commands: [RedisCommand]) async throws(RedisError) -> [RESPValue]
    /// A command that waits on the server for up to `serverTimeout`.
    func sendBlocking(_ command: RedisCommand, serverTimeout: Duration) async throws(RedisError) -> RESPValue
}

/// What a blocking list pop returns: the list it came from and the element.
public struct PoppedElement: Sendable, Hashable {
    public var key: String
    public var value: [UInt8]

    public init(key: String, value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// What BZPOPMIN returns: the sorted set, the member and its score.
public struct PoppedMember: Sendable, Hashable {
    public var key: String
    public var member: [UInt8]
    public var score: Double

    public init(key: String, member: [UInt8], score: Double) {
        self.key = key
        self.member = member
        self.score = score
    }
}

// MARK: - Everyday commands

extension RedisCommandRunner {
    @discardableResult
    public func ping() async throws(RedisError) -> String {
        try await send(["PING"]).string
    }

    public func get(_ key: String) async throws(RedisError) -> String? {
        try await send(["GET", key]).optionalString
    }

    public func getBytes(_ key: String) async throws(RedisError) -> [UInt8]? {
        try await send(["GET", key]).optionalBytes
    }

    /// SET, with PX when `expiresIn` is given.
    public func set(_ key: String, to value: some RedisArgument, expiresIn: Duration? = nil) async throws(RedisError) {
        var command: RedisCommand = ["SET", key, value]
        if let expiresIn {
            command.arguments += [Array("PX".utf8), Array(String(Self.milliseconds(expiresIn)).utf8)]
        }
        _ = try await send(command)
    }

    /// DEL; returns how many keys existed.
    @discardableResult
    public func delete(_ keys: String...) async throws(RedisError) -> Int {
        try await send(RedisCommand(["DEL"] + keys)).int
    }

    @discardableResult
    public func increment(_ key: String, by amount: Int = 1) async throws(RedisError) -> Int {
        try await send(["INCRBY", key, amount]).int
    }

    /// LPUSH; returns the list's new length.
    @discardableResult
    public func leftPush(_ key: String, _ values: any RedisArgument...) async throws(RedisError) -> Int {
        try await send(RedisCommand(["LPUSH", key] + values)).int
    }

    /// ZADD of one member; returns 1 if it was new.
    @discardableResult
    public func sortedSetAdd(_ key: String, member: some RedisArgument, score: Double) async throws(RedisError) -> Int {
        try await send(["ZADD", key, score, member]).int
    }
}

// MARK: - Blocking commands

/// These wait on the server, holding their connection for the whole wait.
/// Run them on a connection (or client) of their own, never on the one the
/// rest of the program shares: everything queued behind them would wait too.
extension RedisCommandRunner {
    /// BLPOP: the first element of the first non-empty list, or nil when
    /// `timeout` passes with all of them empty.
    public func blockingLeftPop(_ keys: [String], timeout: Duration) async throws(RedisError) -> PoppedElement? {
        try await blockingListPop("BLPOP", keys, timeout: timeout)
    }

    /// BRPOP: the last element of the first non-empty list, or nil.
    public func blockingRightPop(_ keys: [String], timeout: Duration) async throws(RedisError) -> PoppedElement? {
        try await blockingListPop("BRPOP", keys, timeout: timeout)
    }

    /// BRPOPLPUSH: moves the last element of `source` to the head of
    /// `destination` and returns it, or nil after `timeout`. (Deprecated in
    /// Redis 6.2 in favour of BLMOVE, but it is what BullMQ-style queues
    /// use and what older servers have.)
    public func blockingRightPopLeftPush(
        from source: String, to destination: String, timeout: Duration
    ) async throws(RedisError) -> [UInt8]? {
        let reply = try await sendBlocking(
            ["BRPOPLPUSH", source, destination, Self.serverSeconds(timeout)],
            serverTimeout: timeout
        )
        return try reply.optionalBytes
    }

    /// BZPOPMIN: the lowest-scored member of the first non-empty sorted set,
    /// or nil after `timeout`.
    public func blockingPopMin(_ keys: [String], timeout: Duration) async throws(RedisError) -> PoppedMember? {
        let reply = try await sendBlocking(
            RedisCommand(["BZPOPMIN"] + keys + [Self.serverSeconds(timeout)]),
            serverTimeout: timeout
        )
        guard let parts = try reply.optionalElements else { return nil }
        guard parts.count == 3 else { throw .unexpectedReply(expected: "[key, member, score]", got: reply) }
        return PoppedMember(key: try parts[0].string, member: try parts[1].bytes, score: try parts[2].double)
    }

    private func blockingListPop(_ name: String, _ keys: [String], timeout: Duration) async throws(RedisError) -> PoppedElement? {
        let reply = try await sendBlocking(
            RedisCommand([name] + keys + [Self.serverSeconds(timeout)]),
            serverTimeout: timeout
        )
        guard let parts = try reply.optionalElements else { return nil }
        guard parts.count == 2 else { throw .unexpectedReply(expected: "[key, value]", got: reply) }
        return PoppedElement(key: try parts[0].string, value: try parts[1].bytes)
    }

    /// The timeout argument as Redis wants it: seconds, with up to three
    /// decimals (Redis 6+ accepts fractions). Rounded up to a whole
    /// millisecond, because Redis truncates to milliseconds and a value that
    /// truncates to 0 would mean "block forever".
    static func serverSeconds(_ timeout: Duration) -> String {
        let ms = max(milliseconds(timeout), 1)
        let fraction = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        let ms = Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
        let rest = attoseconds % 1_000_000_000_000_000
        return rest > 0 ? ms + 1 : ms
    }
}

// MARK: - Lua scripts

extension RedisCommandRunner {
    /// Runs `script` by its SHA-1 (EVALSHA), so the source crosses the
    /// network only when the server does not know the script yet. When it
    /// answers NOSCRIPT (a restart, a failover, SCRIPT FLUSH), the script is
    /// sent whole with EVAL, which also caches it again for next time.
    ///
    /// Scripts are safe to run twice this way only because EVALSHA that
    /// fails with NOSCRIPT ran nothing.
    public func evaluate(
        _ script: RedisScript,
        keys: [any RedisArgument] = [],
        arguments: [any RedisArgument] = []
    ) async throws(RedisError) -> RESPValue {
        let tail: [any RedisArgument] = [keys.count] + keys + arguments
        do throws(RedisError) {
            return try await send(RedisCommand(["EVALSHA", script.sha1] + tail))
        } catch {
            guard case .noScript = error else { throw error }
            return try await send(RedisCommand(["EVAL", script.source] + tail))
        }
    }

    /// SCRIPT LOAD, checking that the server computed the same SHA-1 we did.
    /// Useful at start-up, so the first EVALSHA does not miss.
    public func load(_ script: RedisScript) async throws(RedisError) {
        let sha1 = try await send(["SCRIPT", "LOAD", script.source]).string
        guard sha1 == script.sha1 else {
            throw .unexpectedReply(expected: "SHA-1 \(script.sha1)", got: .bulkString(Array(sha1.utf8)))
        }
    }
}
