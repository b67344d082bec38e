/// Every way a Redis call can fail, as one enum with stable cases.
///
/// Callers switch on the case, never on the text: the text is for people
/// reading logs, and says which server was involved so that "connection
/// refused" in a log with three Redis servers in it is still useful.
///
/// The cases fall into two groups, told apart by `isConnectionError`:
/// - the connection is gone or out of step (refused, timeouts, lost,
///   protocol): the connection that saw it can't be used again, and
///   `RedisClient` opens a new one on the next call;
/// - the server answered, just not what you wanted (`server`, `noScript`,
///   `unexpectedReply`): the connection is fine and stays in use.
public enum RedisError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Nothing listens at the address (the TCP connect was refused).
    case connectionRefused(address: String)
    /// The TCP connect did not finish within the connect timeout: a host that
    /// drops packets, or a server too busy to accept.
    case connectTimeout(address: String, timeout: Duration)
    /// Connecting failed for another reason (a host name that does not
    /// resolve, for instance); `reason` is hiredis's text.
    case connectFailed(address: String, reason: String)
    /// A command was sent but no reply came within the socket timeout. The
    /// reply may still arrive later, so the connection is out of step and is
    /// dropped.
    case commandTimeout(address: String, timeout: Duration)
    /// The connection broke while in use: the server closed it, was killed,
    /// or the network failed. `reason` is hiredis's text.
    case connectionLost(address: String, reason: String)
    /// The bytes from the server were not valid RESP.
    case protocolError(address: String, reason: String)
    /// The server answered with an error reply, e.g. "WRONGTYPE Operation
    /// against a key holding the wrong kind of value". The message is the
    /// server's, prefix included.
    case server(message: String)
    /// EVALSHA named a script the server does not have (after a restart or a
    /// SCRIPT FLUSH). `RedisCommandRunner.evaluate` recovers from it by itself.
    case noScript(message: String)
    /// The connection or client was closed by its owner.
    case closed(address: String)
    /// `RedisClient` is waiting before it tries to reconnect; `lastError` is
    /// why the last attempt failed. Returned at once, so a caller never hangs
    /// on a server that is down.
    indirect case unavailable(address: String, retryIn: Duration, lastError: RedisError)
    /// The reply had another shape than the decoder asked for.
    case unexpectedReply(expected: String, got: RESPValue)
    /// The caller passed something Redis can't be asked (an empty command, a
    /// zero timeout on a blocking command...).
    case invalidArgument(String)

    /// Builds the right case from an error reply's text.
    public init(serverMessage: String) {
        if serverMessage.hasPrefix("NOSCRIPT") {
            self = .noScript(message: serverMessage)
        } else {
            self = .server(message: serverMessage)
        }
    }

    /// True when the connection that produced this error must be thrown away.
    public var isConnectionError: Bool {
        switch self {
        case .connectionRefused, .connectTimeout, .connectFailed, .commandTimeout,
             .connectionLost, .protocolError, .unavailable:
            return true
        case .server, .noScript, .closed, .unexpectedReply, .invalidArgument:
            return false
        }
    }

    /// The first word of a server error reply ("ERR", "WRONGTYPE",
    /// "NOSCRIPT", "BUSYGROUP"...), which is what code should compare.
    public var serverErrorCode: String? {
        switch self {
        case .server(let message), .noScript(let message):
            return message.split(separator: " ", maxSplits: 1).first.map(String.init)
        default:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .connectionRefused(let address):
            return "Redis at \(address) refused the connection (is redis-server running?)"
        case .connectTimeout(let address, let timeout):
            return "could not connect to Redis at \(address) within \(timeout)"
        case .connectFailed(let address, let reason):
            return "could not connect to Redis at \(address): \(reason)"
        case .commandTimeout(let address, let timeout):
            return "Redis at \(address) did not reply within \(timeout)"
        case .connectionLost(let address, let reason):
            return "connection to Redis at \(address) lost: \(reason)"
        case .protocolError(let address, let reason):
            return "protocol error from Redis at \(address): \(reason)"
        case .server(let message):
            return "Redis error: \(message)"
        case .noScript(let message):
            return "Redis script not loaded: \(message)"
        case .closed(let address):
            return "connection to Redis at \(address) is closed"
        case .unavailable(let address, let retryIn, let lastError):
            return "Redis at \(address) is unavailable, next reconnect in \(retryIn) (last error: \(lastError))"
        case .unexpectedReply(let expected, let got):
            return "expected \(expected) from Redis, got \(got)"
        case .invalidArgument(let text):
            return "invalid Redis call: \(text)"
        }
    }
}
