/// Everything the client throws. The cases are stable: callers (and the
/// reconnecting client) switch on them to decide what to retry.
///
/// AMQP has two levels of failure, and the cases keep them apart:
/// - a *channel* error (`channelClosed`) ends one channel; the connection and
///   its other channels go on. Declaring a queue that does not exist
///   passively (404 NOT_FOUND) or redeclaring one with other arguments
///   (406 PRECONDITION_FAILED) are the usual causes.
/// - a *connection* error (everything that names the connection or the
///   address) ends every channel on it. Only a new connection helps.
public enum AMQPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `amqp://` URL could not be read.
    case invalidURL(String)
    /// No AMQP session could be opened: TCP refused or timed out, or the
    /// broker did not answer the handshake in time.
    case cannotConnect(address: String, reason: String)
    /// The broker closed the connection (`connection.close`): 320
    /// CONNECTION_FORCED when it shuts down, 403 ACCESS_REFUSED for a bad
    /// login, 541 INTERNAL_ERROR, ...
    case connectionClosedByBroker(code: UInt16, text: String)
    /// The broker closed a channel (`channel.close`): 404 NOT_FOUND,
    /// 405 RESOURCE_LOCKED, 406 PRECONDITION_FAILED, ...
    case channelClosed(code: UInt16, text: String)
    /// The TCP connection broke without an AMQP goodbye (peer reset, broker
    /// killed, network gone).
    case connectionLost(address: String, reason: String)
    /// Nothing arrived from the broker for two heartbeat intervals: it is
    /// dead or unreachable even though the socket looks open.
    case heartbeatTimeout(address: String)
    /// A request got no answer in time. librabbitmq closes the socket when
    /// an RPC times out, so the connection is gone too.
    case timeout(operation: String)
    /// The broker answered a publish with `basic.nack`: it did not take
    /// responsibility for the message. Publish it again.
    case publishNotConfirmed(reason: String)
    /// A `mandatory` publish could not be routed to any queue
    /// (`basic.return`, usually 312 NO_ROUTE).
    case returned(code: UInt16, text: String)
    /// The broker cancelled a consumer, for example because its queue was
    /// deleted.
    case consumerCancelled(tag: String)
    /// The connection (or channel) was closed by this client, and used
    /// again; also how consumer streams learn of our own close.
    case connectionClosed
    /// The reconnecting client has no connection at the moment.
    case notConnected(reason: String)
    /// Anything else librabbitmq reported: a bug, a protocol violation.
    case protocolError(String)

    public var description: String {
        switch self {
        case .invalidURL(let url): "invalid AMQP URL '\(url)'"
        case .cannotConnect(let address, let reason): "cannot connect to \(address): \(reason)"
        case .connectionClosedByBroker(let code, let text): "connection closed by broker: \(code) \(text)"
        case .channelClosed(let code, let text): "channel closed by broker: \(code) \(text)"
        case .connectionLost(let address, let reason): "connection to \(address) lost: \(reason)"
        case .heartbeatTimeout(let address): "no heartbeat from \(address): broker presumed dead"
        case .timeout(let operation): "\(operation) timed out (connection closed)"
        case .publishNotConfirmed(let reason): "publish not confirmed: \(reason)"
        case .returned(let code, let text): "message returned as unroutable: \(code) \(text)"
        case .consumerCancelled(let tag): "consumer \(tag) cancelled by broker"
        case .connectionClosed: "connection or channel closed by this client"
        case .notConnected(let reason): "not connected: \(reason)"
        case .protocolError(let text): "AMQP error: \(text)"
        }
    }

    /// The AMQP reply code for broker-side closes, nil otherwise.
    public var replyCode: UInt16? {
        switch self {
        case .connectionClosedByBroker(let code, _), .channelClosed(let code, _), .returned(let code, _): code
        default: nil
        }
    }

    /// True when only one channel is affected and the connection lives on.
    /// Every other error from a C call leaves the connection unusable.
    var isChannelLevel: Bool {
        if case .channelClosed = self { return true }
        return false
    }
}
