/// Something that can be one argument of a Redis command.
///
/// On the wire every argument is a length-prefixed byte string, so all an
/// argument has to say is its bytes. Text goes as UTF-8, numbers as the
/// decimal text Redis parses.
public protocol RedisArgument: Sendable {
    var redisBytes: [UInt8] { get }
}

extension String: RedisArgument {
    public var redisBytes: [UInt8] { Array(utf8) }
}

extension Substring: RedisArgument {
    public var redisBytes: [UInt8] { Array(utf8) }
}

extension Array: RedisArgument where Element == UInt8 {
    public var redisBytes: [UInt8] { self }
}

extension Int: RedisArgument {
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}

extension Double: RedisArgument {
    /// Swift prints infinities as "inf"/"-inf", which Redis accepts for
    /// scores; integral values print as "2.0", which Redis also accepts.
    public var redisBytes: [UInt8] { Array(String(self).utf8) }
}

/// A command as the server sees it: an argument vector, name first.
///
/// Commands are built as vectors, never by formatting a string, so a value
/// with spaces, quotes, newlines or NUL bytes goes through untouched. This is
/// also why the client calls hiredis's `redisCommandArgv` and not the
/// printf-style `redisCommand`.
///
///     let set: RedisCommand = ["SET", "greeting", bytes]   // mixed types
///     let get = RedisCommand(["GET", key])
public struct RedisCommand: Sendable, Hashable, ExpressibleByArrayLiteral, CustomStringConvertible {
    /// The arguments as sent, the command name first.
    public var arguments: [[UInt8]]

    public init(arguments: [[UInt8]]) {
        self.arguments = arguments
    }

    public init(_ arguments: [any RedisArgument]) {
        self.arguments = arguments.map(\.redisBytes)
    }

    public init(arrayLiteral elements: any RedisArgument...) {
        self.init(elements)
    }

    /// The command name, for messages ("GET", "EVALSHA").
    public var name: String {
        arguments.first.map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    public var description: String {
        arguments.map { RESPValue.bulkString($0).description }.joined(separator: " ")
    }
}

/// Where a Redis server listens.
public struct RedisAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String = "127.0.0.1", port: Int = 6379) {
        self.host = host
        self.port = port
    }

    /// Reads the host and port of `redis://host:port[/db]`, the form REDIS_URL
    /// usually has. (Password and database go in `RedisConfiguration`.)
    public init(url: String) throws(RedisError) {
        var rest = Substring(url)
        guard rest.hasPrefix("redis://") else {
            throw .invalidArgument("not a redis:// URL: \(url)")
        }
        rest = rest.dropFirst("redis://".count)
        if let slash = rest.firstIndex(of: "/") { rest = rest[..<slash] }
        if let at = rest.lastIndex(of: "@") { rest = rest[rest.index(after: at)...] }
        var host = rest
        var port = 6379
        if let colon = rest.lastIndex(of: ":"), !rest.hasSuffix("]") {
            guard let parsed = Int(rest[rest.index(after: colon)...]) else {
                throw .invalidArgument("bad port in \(url)")
            }
            port = parsed
            host = rest[..<colon]
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        self.init(host: host.isEmpty ? "127.0.0.1" : String(host), port: port)
    }

    /// "host:port", the form every error message uses.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// How a connection behaves. The defaults suit a service talking to a Redis
/// on the same network.
public struct RedisConfiguration: Sendable, Hashable {
    /// How long a TCP connect may take before it fails with `connectTimeout`.
    public var connectTimeout: Duration
    /// How long any one reply may take before it fails with `commandTimeout`.
    /// Blocking commands get their own wait added on top.
    public var commandTimeout: Duration
    /// Sent with AUTH right after connecting, when set.
    public var password: String?
    /// Selected with SELECT right after connecting, when set.
    public var database: Int?

    public init(
        connectTimeout: Duration = .seconds(2),
        commandTimeout: Duration = .seconds(5),
        password: String? = nil,
        database: Int? = nil
    ) {
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.password = password
        self.database = database
    }
}
