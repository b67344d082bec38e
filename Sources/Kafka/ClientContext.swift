internal import CRdKafka
import Logging
import Synchronization

/// What librdkafka's C callbacks need to reach Swift: the logger, the
/// address we were told to connect to, the last broker-level error, and for
/// a consumer the group state the rebalance callback updates.
///
/// C callbacks cannot capture anything, so librdkafka hands each of them an
/// untyped "opaque" pointer, which is this object (unretained: `KafkaHandle`
/// keeps it alive for as long as librdkafka may call back). Callbacks run on
/// librdkafka's own threads (logs) or on ours (everything served by a poll),
/// so all mutable state sits behind a `Mutex`.
final class ClientContext: Sendable {
    let logger: Logger
    let bootstrapServers: String
    private let lastBrokerError = Mutex<(text: String, at: ContinuousClock.Instant)?>(nil)
    /// Only for consumers.
    let group: ConsumerGroupState?

    init(logger: Logger, bootstrapServers: String, group: ConsumerGroupState? = nil) {
        self.logger = logger
        self.bootstrapServers = bootstrapServers
        self.group = group
    }

    var opaque: UnsafeMutableRawPointer { Unmanaged.passUnretained(self).toOpaque() }

    static func from(_ opaque: UnsafeMutableRawPointer?) -> ClientContext? {
        opaque.map { Unmanaged<ClientContext>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Extra words for error messages: which address, and what the
    /// connection said last. "Timed out" alone does not tell anybody that
    /// nothing listens on 127.0.0.1:9092.
    var diagnostics: String {
        var text = "bootstrap.servers=\(bootstrapServers)"
        if let last = lastBrokerError.withLock({ $0 }) {
            // The age tells a current outage from one that is over.
            let age = (ContinuousClock.now - last.at).components.seconds
            text += "; last broker error (\(age) s ago): \(last.text)"
        }
        return text
    }

    func recordBrokerError(_ text: String) {
        lastBrokerError.withLock { $0 = (text, ContinuousClock.now) }
    }

    /// Points the configuration's callbacks and opaque at this context.
    func install(on config: ConfigHandle) {
        rd_kafka_conf_set_opaque(config.raw, opaque)
        rd_kafka_conf_set_log_cb(config.raw, logCallback)
        rd_kafka_conf_set_error_cb(config.raw, errorCallback)
    }
}

/// librdkafka's own log lines (syslog levels), into swift-log. Called on
/// librdkafka's internal threads; `Logger` is thread-safe.
private let logCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
    client, level, facility, text in
    guard let client, let context = ClientContext.from(rd_kafka_opaque(client)) else { return }
    let swiftLevel: Logger.Level
    switch level {
    case ...3: swiftLevel = .error
    case 4: swiftLevel = .warning
    case 5: swiftLevel = .notice
    case 6: swiftLevel = .info
    default: swiftLevel = .debug
    }
    let message = text.map { String(cString: $0) } ?? ""
    let tag = facility.map { String(cString: $0) } ?? ""
    context.logger.log(level: swiftLevel, "rdkafka \(tag): \(message)")
}

/// Client-level errors: connection refused, all brokers down, fatal errors.
/// librdkafka retries most of them by itself, so they are not thrown from
/// here; we log them and keep the last one for the next error message.
private let errorCallback: @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
    _, code, reason, opaque in
    guard let context = ClientContext.from(opaque) else { return }
    let text = reason.map { String(cString: $0) } ?? "error \(code)"
    context.recordBrokerError(text)
    let fatal = code == RD_KAFKA_RESP_ERR__FATAL.rawValue
    context.logger.log(level: fatal ? .error : .warning, "kafka client error: \(text)")
}
