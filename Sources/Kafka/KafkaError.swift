internal import CRdKafka

/// Everything that can go wrong in this module, as one error type.
///
/// librdkafka reports failures as `rd_kafka_resp_err_t`, a C enum with more
/// than a hundred values, some negative (detected by the client, "Local: …")
/// and some positive (sent by the broker). Callers want to branch on a
/// handful of them, so `code` folds them into a small set of cases that will
/// not change when librdkafka adds new numbers, and `message` keeps the full
/// story for people: librdkafka's own text (rd_kafka_err2str) plus what we
/// were doing and which broker address we were talking to.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// A request, a delivery (`message.timeout.ms`), a commit or a close
        /// did not finish in time. Usually the broker is down or unreachable.
        case timedOut
        /// No broker could be reached (connection refused, name not resolved,
        /// all brokers down).
        case brokerUnreachable
        /// Creating a topic that is already there. `KafkaAdmin.createTopic`
        /// treats this as success; it is here for completeness.
        case topicAlreadyExists
        /// The topic or partition does not exist (yet).
        case unknownTopicOrPartition
        /// librdkafka's local send queue is full (`queue.buffering.max.*`).
        case queueFull
        /// A setting was rejected, by us or by librdkafka.
        case invalidConfiguration
        /// The librdkafka loaded at run time is too old (see `RdKafkaLibrary`).
        case unsupportedLibrary
        /// The client was shut down or closed before, or while, doing this.
        case closed
        /// A message was still queued when the producer shut down and was
        /// dropped without being sent.
        case purged
        /// librdkafka gave up on the client for good (e.g. an idempotent
        /// producer that lost its sequence): create a new one.
        case fatal
        /// Any other librdkafka error; the raw value is in `rdkafkaCode`.
        case other
    }

    public let code: Code
    /// Human-readable: what failed, librdkafka's explanation, and context.
    public let message: String
    /// The `rd_kafka_resp_err_t` value, when the error came from librdkafka.
    public let rdkafkaCode: Int32?

    public init(code: Code, message: String, rdkafkaCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.rdkafkaCode = rdkafkaCode
    }

    public var description: String { "KafkaError.\(code): \(message)" }

    static func closed(_ what: String) -> KafkaError {
        KafkaError(code: .closed, message: "\(what): the client is closed")
    }

    static func configuration(_ message: String) -> KafkaError {
        KafkaError(code: .invalidConfiguration, message: message)
    }

    /// Builds the error for a librdkafka code. `context` says what we were
    /// doing ("produce to orders", "commit"); `detail` adds what we know
    /// beyond librdkafka's text, such as the bootstrap address and the last
    /// error the broker connection reported.
    init(_ err: rd_kafka_resp_err_t, context: String, detail: String? = nil) {
        let text = String(cString: rd_kafka_err2str(err))
        var message = "\(context): \(text)"
        if let detail, !detail.isEmpty { message += " (\(detail))" }
        self.init(code: Self.code(for: err), message: message, rdkafkaCode: err.rawValue)
    }

    static func code(for err: rd_kafka_resp_err_t) -> Code {
        switch err {
        case RD_KAFKA_RESP_ERR__TIMED_OUT, RD_KAFKA_RESP_ERR__MSG_TIMED_OUT,
             RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
            return .timedOut
        case RD_KAFKA_RESP_ERR__TRANSPORT, RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN,
             RD_KAFKA_RESP_ERR__RESOLVE:
            return .brokerUnreachable
        case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
            return .topicAlreadyExists
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
             RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            return .unknownTopicOrPartition
        case RD_KAFKA_RESP_ERR__QUEUE_FULL:
            return .queueFull
        case RD_KAFKA_RESP_ERR__INVALID_ARG, RD_KAFKA_RESP_ERR__UNKNOWN_PROTOCOL:
            return .invalidConfiguration
        case RD_KAFKA_RESP_ERR__DESTROY:
            return .closed
        case RD_KAFKA_RESP_ERR__PURGE_QUEUE, RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
            return .purged
        case RD_KAFKA_RESP_ERR__FATAL:
            return .fatal
        default:
            return .other
        }
    }
}

/// The one place that turns a librdkafka result code into a thrown error.
/// `RD_KAFKA_RESP_ERR_NO_ERROR` passes; anything else throws `KafkaError`.
@inline(__always)
func check(
    _ err: rd_kafka_resp_err_t,
    _ context: @autoclosure () -> String,
    detail: @autoclosure () -> String? = nil
) throws(KafkaError) {
    guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
    throw KafkaError(err, context: context(), detail: detail())
}

/// Newer librdkafka calls (produceva, consumer_close_queue) return an
/// `rd_kafka_error_t` object instead of a code. It is never kept: this takes
/// ownership, copies code and text out, and destroys it on the spot.
func check(consuming error: OpaquePointer?, _ context: @autoclosure () -> String) throws(KafkaError) {
    guard let error else { return }
    defer { rd_kafka_error_destroy(error) }
    let err = rd_kafka_error_code(error)
    let text = String(cString: rd_kafka_error_string(error))
    var code = KafkaError.code(for: err)
    if rd_kafka_error_is_fatal(error) != 0 { code = .fatal }
    throw KafkaError(code: code, message: "\(context()): \(text)", rdkafkaCode: err.rawValue)
}

/// Like `check(consuming:)` for an `rd_kafka_error_t` that belongs to
/// something else (a per-group admin result): read it, never destroy it.
func check(borrowing error: OpaquePointer?, _ context: @autoclosure () -> String) throws(KafkaError) {
    guard let error else { return }
    let err = rd_kafka_error_code(error)
    guard err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
    let text = String(cString: rd_kafka_error_string(error))
    throw KafkaError(code: KafkaError.code(for: err), message: "\(context()): \(text)", rdkafkaCode: err.rawValue)
}
