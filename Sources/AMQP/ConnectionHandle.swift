internal import CRabbitMQ
import Foundation

/// Owns one `amqp_connection_state_t`: created by `open`, freed by `deinit`.
///
/// librabbitmq is not thread-safe per connection, so a handle is only ever
/// touched by its connection's I/O thread (see `IOThread`); the class is
/// deliberately not `Sendable`. Every C result goes through `check`, which
/// turns status codes and RPC replies into `AMQPError`.
final class ConnectionHandle {
    let state: amqp_connection_state_t
    let address: String

    private init(state: amqp_connection_state_t, address: String) {
        self.state = state
        self.address = address
    }

    deinit {
        // Closes the socket (if still open) and frees every pool. No AMQP
        // goodbye is sent here; `closeGracefully` does that first when there
        // is time for it.
        amqp_destroy_connection(state)
    }

    /// TCP connect, AMQP handshake and login, all within
    /// `configuration.connectTimeout`. Any failure is `.cannotConnect`
    /// naming host:port, so the message alone says which broker was meant.
    static func open(_ configuration: AMQPConfiguration) throws(AMQPError) -> ConnectionHandle {
        let address = configuration.address
        guard let state = amqp_new_connection() else {
            throw .cannotConnect(address: address, reason: "out of memory")
        }
        // From here on the handle owns `state`: every early throw frees it.
        let handle = ConnectionHandle(state: state, address: address)
        guard let socket = amqp_tcp_socket_new(state) else {
            throw .cannotConnect(address: address, reason: "cannot create a socket")
        }

        let started = ContinuousClock.now
        var connectTimeout = configuration.connectTimeout.timeval
        // The non-blocking variant honours the timeout; the plain
        // `amqp_socket_open` would wait for the kernel's own TCP timeout
        // (minutes) on an address that drops packets.
        let opened = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &connectTimeout)
        if opened != AMQP_STATUS_OK.rawValue {
            throw .cannotConnect(address: address, reason: connectFailure(opened, errno: errno, timeout: configuration.connectTimeout))
        }

        // The handshake gets what is left of the same budget, so the caller's
        // bound holds for the whole of `open`.
        let left = max(configuration.connectTimeout - (ContinuousClock.now - started), .milliseconds(100))
        var handshakeTimeout = left.timeval
        amqp_set_handshake_timeout(state, &handshakeTimeout)
        // Without this, a request to a broker that stopped answering would
        // wait forever (the default is no timeout).
        var rpcTimeout = configuration.rpcTimeout.timeval
        amqp_set_rpc_timeout(state, &rpcTimeout)

        // Capabilities we handle: the broker only sends basic.cancel for a
        // deleted queue, and connection.blocked under resource alarms, to
        // clients that say they understand them. librabbitmq merges this
        // table into its own client properties.
        var properties: AMQPTable = [
            "capabilities": [
                "consumer_cancel_notify": true,
                "connection.blocked": true,
                "publisher_confirms": true,
                "basic.nack": true,
            ],
            "product": "swift-amqp (rabbitmq-c)",
        ]
        if let name = configuration.connectionName { properties["connection_name"] = .string(name) }
        let arena = CArena()
        var table = arena.table(properties)
        let reply = crabbitmq_login_plain(
            state, configuration.vhost, 0, Int32(configuration.frameMax),
            Int32(configuration.heartbeat.wholeSeconds), &table,
            configuration.user, configuration.password)
        withExtendedLifetime(arena) {}
        do {
            try handle.check(reply, channel: 0, "login")
        } catch .timeout {
            throw .cannotConnect(address: address, reason: "AMQP handshake timed out after \(configuration.connectTimeout)")
        } catch {
            throw .cannotConnect(address: address, reason: error.description)
        }
        return handle
    }

    /// Words for a failed `amqp_socket_open_noblock`.
    private static func connectFailure(_ status: Int32, errno code: Int32, timeout: Duration) -> String {
        if status == AMQP_STATUS_TIMEOUT.rawValue { return "TCP connect timed out after \(timeout)" }
        guard status == AMQP_STATUS_SOCKET_ERROR.rawValue else { return statusText(status) }
        // The non-blocking connect in librabbitmq 0.11 reads the outcome
        // with getsockopt(SO_ERROR) but throws the code away, so errno
        // still says EINPROGRESS from the connect() call. All that is known
        // then is that the kernel gave up on the connection.
        if code == EINPROGRESS || code == 0 {
            return "TCP connect failed (connection refused or host unreachable; librabbitmq does not say which)"
        }
        return "TCP connect failed: \(String(cString: strerror(code)))"
    }

    /// The heartbeat interval both sides settled on, in seconds (0: none).
    var heartbeat: Int { Int(amqp_get_heartbeat(state)) }

    var channelMax: Int { Int(amqp_get_channel_max(state)) }

    var socketDescriptor: Int32 { amqp_get_sockfd(state) }

    /// Frames already read but not yet handed out (queued while an RPC
    /// waited for its own reply), or bytes read but not yet decoded. A
    /// `poll` on the socket would not see either.
    var hasBufferedInput: Bool {
        amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
    }

    /// Sends `connection.close` and waits briefly for the reply.
    func closeGracefully() {
        // A broker that stopped answering must not hold the caller for the
        // whole RPC timeout.
        var short = Duration.seconds(2).timeval
        amqp_set_rpc_timeout(state, &short)
        _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
    }

    // MARK: check

    /// Turns an RPC reply into success or a typed error. A broker-side
    /// close is answered with close-ok here, as AMQP requires, so callers
    /// only have to file the error.
    func check(_ reply: amqp_rpc_reply_t, channel: UInt16, _ operation: @autoclosure () -> String) throws(AMQPError) {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw error(status: reply.library_error, operation())
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case amqp_method_number_t(CRABBITMQ_CHANNEL_CLOSE):
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                acknowledgeChannelClose(channel)
                throw .channelClosed(code: close.reply_code, text: String(close.reply_text))
            case amqp_method_number_t(CRABBITMQ_CONNECTION_CLOSE):
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                acknowledgeConnectionClose()
                throw .connectionClosedByBroker(code: close.reply_code, text: String(close.reply_text))
            default:
                throw .protocolError("\(operation()): unexpected reply \(String(cString: amqp_method_name(reply.reply.id)))")
            }
        default:
            throw .protocolError("\(operation()): no reply")
        }
    }

    /// Status codes (negative on failure) from the non-RPC calls.
    func check(status: Int32, _ operation: @autoclosure () -> String) throws(AMQPError) {
        if status < 0 { throw error(status: status, operation()) }
    }

    func error(status: Int32, _ operation: String) -> AMQPError {
        switch status {
        case AMQP_STATUS_TIMEOUT.rawValue:
            return .timeout(operation: operation)
        case AMQP_STATUS_HEARTBEAT_TIMEOUT.rawValue:
            return .heartbeatTimeout(address: address)
        case AMQP_STATUS_SOCKET_ERROR.rawValue, AMQP_STATUS_TCP_ERROR.rawValue:
            return .connectionLost(
                address: address,
                reason: "\(operation): \(Self.statusText(status)) (\(String(cString: strerror(errno))))")
        case AMQP_STATUS_CONNECTION_CLOSED.rawValue, AMQP_STATUS_SOCKET_CLOSED.rawValue:
            return .connectionLost(address: address, reason: "\(operation): \(Self.statusText(status))")
        default:
            return .protocolError("\(operation): \(Self.statusText(status)) (\(status))")
        }
    }

    static func statusText(_ status: Int32) -> String {
        String(cString: amqp_error_string2(status))
    }

    func acknowledgeChannelClose(_ channel: UInt16) {
        var ok = amqp_channel_close_ok_t()
        _ = amqp_send_method(state, channel, amqp_method_number_t(CRABBITMQ_CHANNEL_CLOSE_OK), &ok)
    }

    func acknowledgeConnectionClose() {
        var ok = amqp_connection_close_ok_t()
        _ = amqp_send_method(state, 0, amqp_method_number_t(CRABBITMQ_CONNECTION_CLOSE_OK), &ok)
    }
}
