// `internal`: hiredis types may not appear in this module's public API, and
// the compiler now checks that, so users of `Redis` never see a C type.
internal import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns one `redisContext*`: the only type in the module that touches it.
///
/// Every call here blocks (connect, write, read), so an instance lives on its
/// connection's dedicated thread (`ConnectionThread`) and never leaves it:
/// it is deliberately not `Sendable`, and the compiler enforces that. Swift
/// code elsewhere sees `RESPValue` and `RedisError`, never a C type.
final class HiredisContext {
    private let context: UnsafeMutablePointer<redisContext>
    let address: RedisAddress
    /// The read/write timeout used when no blocking command is running.
    private let commandTimeout: Duration
    /// The socket timeout in force now, so a timeout error can say which.
    private var socketTimeout: Duration

    private init(context: UnsafeMutablePointer<redisContext>, address: RedisAddress, commandTimeout: Duration) {
        self.context = context
        self.address = address
        self.commandTimeout = commandTimeout
        self.socketTimeout = commandTimeout
    }

    deinit {
        // Closes the socket and frees the reader, the output buffer, the lot.
        redisFree(context)
    }

    /// Connects, sets the command timeout, authenticates and selects the
    /// database. Blocks for at most about `connectTimeout` + a few replies.
    static func connect(to address: RedisAddress, configuration: RedisConfiguration) throws(RedisError) -> HiredisContext {
        guard configuration.connectTimeout > .zero, configuration.commandTimeout > .zero else {
            throw .invalidArgument("timeouts must be positive")
        }
        // hiredis 0.14 uses this timeout only for the TCP connect: unlike
        // hiredis 1.x it has no separate command timeout, and the socket is
        // left with none at all (a read would wait forever). So we set the
        // command timeout ourselves right after.
        guard let raw = redisConnectWithTimeout(address.host, Int32(clamping: address.port), timeval(configuration.connectTimeout)) else {
            throw .connectFailed(address: address.description, reason: "out of memory")
        }
        // hiredis hands back a context even when connecting failed, with
        // `err` set; it is ours to free either way.
        if raw.pointee.err != 0 {
            let error = translate(raw, address: address, connecting: true, timeout: configuration.connectTimeout)
            redisFree(raw)
            throw error
        }
        let connection = HiredisContext(context: raw, address: address, commandTimeout: configuration.commandTimeout)
        try connection.setSocketTimeout(configuration.commandTimeout)
        if let password = configuration.password {
            _ = try connection.send(["AUTH", password]).checked()
        }
        if let database = configuration.database {
            _ = try connection.send(["SELECT", database]).checked()
        }
        return connection
    }

    // MARK: Commands

    /// Sends one command and waits for its reply. An error reply comes back
    /// as `.error`; the caller decides whether that is fatal.
    func send(_ command: RedisCommand) throws(RedisError) -> RESPValue {
        try validate(command)
        let reply = Self.withArgv(command.arguments) { argc, argv, lengths in
            redisCommandArgv(context, argc, argv, lengths)
        }
        return try takeReply(reply)
    }

    /// Pipelining: every command is written into hiredis's output buffer
    /// first, then the first `redisGetReply` flushes them all in one go and
    /// the replies are read back in order. N commands cost one round trip
    /// instead of N.
    func pipeline(_ commands: [RedisCommand]) throws(RedisError) -> [RESPValue] {
        for command in commands { try validate(command) }
        for command in commands {
            let status = Self.withArgv(command.arguments) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            try check(status == REDIS_OK)
        }
        var replies: [RESPValue] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var reply: UnsafeMutableRawPointer?
            try check(redisGetReply(context, &reply) == REDIS_OK)
            replies.append(try takeReply(reply))
        }
        return replies
    }

    /// Runs `body` with a longer socket timeout, for commands that are meant
    /// to wait on the server (BLPOP and friends). The timeout must be longer
    /// than the command's own, or we would give up on a reply that is still
    /// coming and lose the popped element with the connection.
    func withSocketTimeout<T>(_ timeout: Duration, _ body: () throws(RedisError) -> T) throws(RedisError) -> T {
        try setSocketTimeout(timeout)
        let result = Result { () throws(RedisError) -> T in try body() }
        // A broken connection is about to be thrown away: no point restoring.
        if case .failure(let error) = result, error.isConnectionError { throw error }
        try setSocketTimeout(commandTimeout)
        return try result.get()
    }

    // MARK: Failure handling

    /// The one place where hiredis's way of failing (NULL or REDIS_ERR, with
    /// `err`/`errstr` set on the context) becomes a `RedisError`.
    ///
    /// Once `err` is set, hiredis refuses every later call on the context, so
    /// any error thrown from here ends the connection.
    private func check(_ succeeded: Bool) throws(RedisError) {
        guard !succeeded else { return }
        throw Self.translate(context, address: address, connecting: false, timeout: socketTimeout)
    }

    /// Turns hiredis's error code and text into a case. hiredis 0.14 keeps no
    /// errno, only `strerror(errno)` in `errstr`, so we compare the text
    /// against `strerror` of the codes we care about (the same libc wrote
    /// both) rather than against English strings.
    private static func translate(
        _ context: UnsafeMutablePointer<redisContext>, address: RedisAddress, connecting: Bool, timeout: Duration
    ) -> RedisError {
        let code = context.pointee.err
        let text = withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let place = address.description
        switch code {
        case REDIS_ERR_IO where connecting && text == systemMessage(ECONNREFUSED):
            return .connectionRefused(address: place)
        case REDIS_ERR_IO where connecting && text == systemMessage(ETIMEDOUT):
            return .connectTimeout(address: place, timeout: timeout)
        case REDIS_ERR_IO where !connecting && text == systemMessage(EAGAIN):
            // SO_RCVTIMEO/SO_SNDTIMEO ran out: read(2) or write(2) failed
            // with EAGAIN, which hiredis (blocking mode) reports as I/O error.
            return .commandTimeout(address: place, timeout: timeout)
        case REDIS_ERR_PROTOCOL:
            return .protocolError(address: place, reason: text)
        default:
            return connecting
                ? .connectFailed(address: place, reason: text)
                : .connectionLost(address: place, reason: text)
        }
    }

    private static func systemMessage(_ code: Int32) -> String {
        String(cString: strerror(code))
    }

    // MARK: Plumbing

    private func setSocketTimeout(_ timeout: Duration) throws(RedisError) {
        try check(redisSetTimeout(context, timeval(timeout)) == REDIS_OK)
        socketTimeout = timeout
    }

    private func validate(_ command: RedisCommand) throws(RedisError) {
        guard !command.arguments.isEmpty, !command.arguments[0].isEmpty else {
            throw .invalidArgument("empty command")
        }
    }

    /// Copies a reply out of hiredis's tree into a `RESPValue` and frees the
    /// tree. NULL means the call failed; the context says why.
    private func takeReply(_ raw: UnsafeMutableRawPointer?) throws(RedisError) -> RESPValue {
        guard let raw else {
            try check(false)
            fatalError("unreachable: check(false) always throws")
        }
        defer { freeReplyObject(raw) }
        return try value(of: raw.assumingMemoryBound(to: redisReply.self))
    }

    private func value(of reply: UnsafePointer<redisReply>) throws(RedisError) -> RESPValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulkString(Array(UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(r.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var values: [RESPValue] = []
            values.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                guard let element = r.element[index] else { return .null }
                values.append(try value(of: element))
            }
            return .array(values)
        default:
            throw .protocolError(address: address.description, reason: "unknown reply type \(r.type)")
        }
    }

    /// Lays the arguments out the way `redisCommandArgv` wants them: an array
    /// of pointers and an array of lengths. All bytes go into one buffer so a
    /// command costs three allocations however many arguments it has. The
    /// pointers are only valid inside `body`; hiredis copies the bytes into
    /// its output buffer before returning, so that is enough.
    private static func withArgv<R>(
        _ arguments: [[UInt8]],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R
    ) -> R {
        var flat: [UInt8] = []
        flat.reserveCapacity(arguments.reduce(1) { $0 + $1.count })
        for argument in arguments { flat.append(contentsOf: argument) }
        // A non-empty buffer, so even a command of empty strings has a valid
        // base address to point into.
        flat.append(0)
        let lengths = arguments.map(\.count)
        return flat.withUnsafeBufferPointer { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self)
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(arguments.count)
            var offset = 0
            for length in lengths {
                pointers.append(base + offset)
                offset += length
            }
            return pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    body(Int32(arguments.count), argv.baseAddress!, argvlen.baseAddress!)
                }
            }
        }
    }
}

extension timeval {
    /// A socket timeout from a `Duration`, at least 1 ms: a zero `timeval`
    /// means "no timeout" to setsockopt and "give up at once" to poll, and
    /// neither is what a caller asking for a tiny timeout meant.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var microseconds = attoseconds / 1_000_000_000_000
        if seconds <= 0 && microseconds < 1000 { microseconds = 1000 }
        self.init(tv_sec: Int(max(seconds, 0)), tv_usec: .init(microseconds))
    }
}
