import Foundation

/// Where and how to connect.
public struct AMQPConfiguration: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var vhost: String
    public var user: String
    public var password: String
    /// Proposed heartbeat interval, whole seconds; the broker's proposal wins
    /// when it is smaller. Zero turns heartbeats off (a dead broker is then
    /// noticed only when TCP gives up, which can take many minutes).
    public var heartbeat: Duration
    /// Bound on TCP connect plus the AMQP handshake.
    public var connectTimeout: Duration
    /// Bound on each synchronous request (declare, bind, consume, close...).
    /// librabbitmq closes the socket when it expires.
    public var rpcTimeout: Duration
    /// Largest frame; bigger bodies are split. The broker may lower it.
    public var frameMax: Int
    /// Shown in the management UI and in `rabbitmqctl list_connections`.
    public var connectionName: String?

    public init(
        host: String = "127.0.0.1", port: Int = 5672, vhost: String = "/",
        user: String = "guest", password: String = "guest",
        heartbeat: Duration = .seconds(10), connectTimeout: Duration = .seconds(5),
        rpcTimeout: Duration = .seconds(15), frameMax: Int = 131_072, connectionName: String? = nil
    ) {
        self.host = host
        self.port = port
        self.vhost = vhost
        self.user = user
        self.password = password
        self.heartbeat = heartbeat
        self.connectTimeout = connectTimeout
        self.rpcTimeout = rpcTimeout
        self.frameMax = frameMax
        self.connectionName = connectionName
    }

    /// Reads `amqp://user:password@host:port/vhost`. Missing parts take the
    /// defaults above. The vhost is the path without its leading slash,
    /// percent-decoded (`%2F` is "/"); an empty path means "/", as pika and
    /// most clients read it.
    public init(url: String) throws {
        guard let components = URLComponents(string: url), components.scheme == "amqp" else {
            throw AMQPError.invalidURL(url)
        }
        self.init()
        if let host = components.host, !host.isEmpty { self.host = host }
        if let port = components.port { self.port = port }
        if let user = components.user { self.user = user }
        if let password = components.password { self.password = password }
        let path = components.percentEncodedPath
        if path.count > 1 {
            guard let decoded = String(path.dropFirst()).removingPercentEncoding else {
                throw AMQPError.invalidURL(url)
            }
            vhost = decoded
        }
    }

    /// `host:port`, as every connection error names it.
    public var address: String { "\(host):\(port)" }
}

extension Duration {
    /// Whole seconds, rounded down, for the protocol fields that take them.
    var wholeSeconds: Int { Int(components.seconds) }

    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }

    /// As the `struct timeval` the C library's timeouts use.
    var timeval: timeval {
        let (seconds, attoseconds) = components
        return Foundation.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
