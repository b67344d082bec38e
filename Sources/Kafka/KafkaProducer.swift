internal import CRdKafka
import Logging
import ServiceLifecycle
import Synchronization

/// Sends messages and tells each sender where its message was stored.
///
/// `send` returns once the broker has acknowledged the message (acks=all),
/// with its partition and offset. How: librdkafka sends in the background
/// and later hands back a "delivery report" for each message, carrying the
/// per-message pointer we gave it. We give it a retained `PendingDelivery`
/// that knows which waiting task to resume. The reports are served by
/// `rd_kafka_poll`, which the producer's own thread calls whenever it has
/// nothing else to do.
///
/// Run it as a `Service` (or call `shutdown()`): on graceful shutdown it
/// flushes what is still queued, so acknowledged means sent.
public final class KafkaProducer: Service, Sendable {
    public let configuration: KafkaProducerConfiguration
    private let handle: KafkaHandle
    private let thread: ClientThread
    private let logger: Logger
    /// `open` until shutdown starts. Sends hold this lock while they enqueue,
    /// so none can slip in after the final flush and wait forever.
    private let isOpen = Mutex(true)

    private init(configuration: KafkaProducerConfiguration, handle: KafkaHandle, logger: Logger) {
        self.configuration = configuration
        self.handle = handle
        self.logger = logger
        let client = handle
        // The thread's idle work is serving delivery reports; `rd_kafka_yield`
        // cuts a poll short when a job (flush) arrives.
        self.thread = ClientThread(
            name: "kafka-producer",
            idle: { _ = rd_kafka_poll(client.pointer, 100) },
            wake: { rd_kafka_yield(client.pointer) })
    }

    public static func make(
        configuration: KafkaProducerConfiguration, logger: Logger = Logger(label: "kafka.producer")
    ) throws(KafkaError) -> KafkaProducer {
        try RdKafkaLibrary.requireSupported()
        let config = try ConfigHandle.make(configuration.properties)
        rd_kafka_conf_set_dr_msg_cb(config.raw, deliveryCallback)
        let context = ClientContext(logger: logger, bootstrapServers: configuration.client.bootstrapServers)
        let handle = try KafkaHandle.make(type: RD_KAFKA_PRODUCER, config: config, context: context)
        return KafkaProducer(configuration: configuration, handle: handle, logger: logger)
    }

    deinit {
        // Without an explicit shutdown the thread still owns a reference to
        // the handle; ending it lets the handle be destroyed.
        thread.shutdown()
    }

    /// Sends one message and waits for the broker's acknowledgement.
    ///
    /// Cancelling the calling task does not un-send the message: once handed
    /// to librdkafka it will be delivered or fail within `messageTimeout`,
    /// and this call waits for that answer.
    public func send(_ message: KafkaProducerMessage) async throws(KafkaError) -> KafkaDeliveryReport {
        try await send([message])[0]
    }

    /// Sends several messages at once and waits for all acknowledgements
    /// (in the order given). Much cheaper per message than one `send` each:
    /// one suspension for the whole batch. Throws the first failure, after
    /// every message has its answer (none is left in flight).
    public func send(_ messages: [KafkaProducerMessage]) async throws(KafkaError) -> [KafkaDeliveryReport] {
        guard !messages.isEmpty else { return [] }
        let collector = DeliveryCollector(count: messages.count)
        for (index, message) in messages.enumerated() {
            while true {
                do {
                    try enqueue(message, PendingDelivery(collector: collector, index: index, topic: message.topic))
                    break
                } catch where error.code == .queueFull {
                    // librdkafka's local queue is full: the poll thread is
                    // draining it; give it a moment instead of failing.
                    try? await Task.sleep(for: .milliseconds(2))
                } catch {
                    collector.complete(index, .failure(error))
                    break
                }
            }
        }
        return try await collector.wait()
    }

    /// Waits until everything queued so far has been acknowledged, or
    /// throws `.timedOut`.
    public func flush(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        let client = handle
        try await thread.run("flush") { () throws(KafkaError) in
            try check(rd_kafka_flush(client.pointer, timeout.millisecondsInt32), "flush", detail: client.context.diagnostics)
        }
    }

    /// Flushes (up to `timeout`), fails whatever could not be sent with
    /// `.purged`, and stops the poll thread. Later sends fail with `.closed`.
    public func shutdown(timeout: Duration = .seconds(10)) async {
        let wasOpen = isOpen.withLock { open in
            defer { open = false }
            return open
        }
        guard wasOpen else { return }
        let client = handle
        let logger = self.logger
        _ = try? await thread.run("shutdown") { () throws(KafkaError) in
            let err = rd_kafka_flush(client.pointer, timeout.millisecondsInt32)
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                logger.warning("producer shutdown: \(rd_kafka_outq_len(client.pointer)) messages not delivered in \(timeout); dropping them")
                // Purged messages get a delivery report with an error, which
                // resumes their senders; serve those reports before we stop.
                _ = rd_kafka_purge(client.pointer, RdKafkaConstants.purgeQueue | RdKafkaConstants.purgeInflight)
                _ = rd_kafka_flush(client.pointer, 1000)
            }
        }
        thread.shutdown()
    }

    /// Service: runs until graceful shutdown (or cancellation), then shuts
    /// down as above. List the producer before the services that send with
    /// it: a service group shuts down the last listed first, so the senders
    /// stop before the final flush.
    public func run() async throws {
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Hands one message to librdkafka with `rd_kafka_produceva`, which takes
    /// an array of typed fields instead of C varargs (Swift cannot call
    /// variadic C functions). RD_KAFKA_MSG_F_COPY: librdkafka copies key,
    /// value and headers, so our buffers only need to live for the call.
    /// It only queues the message (it never blocks: without
    /// RD_KAFKA_MSG_F_BLOCK a full queue is an error), which is why it runs
    /// on the caller's task and not on the producer's thread.
    private func enqueue(_ message: KafkaProducerMessage, _ pending: PendingDelivery) throws(KafkaError) {
        // Topic, header names (NUL-terminated) and header values, packed in
        // one buffer so that a single `withUnsafeBytes` covers them all.
        var strings: [UInt8] = []
        strings.reserveCapacity(message.topic.utf8.count + 1 + message.headers.count * 32)
        strings += message.topic.utf8; strings.append(0)
        var headerOffsets: [(name: Int, value: Int?, size: Int)] = []
        for header in message.headers {
            let nameOffset = strings.count
            strings += header.name.utf8; strings.append(0)
            if let value = header.value {
                headerOffsets.append((nameOffset, strings.count, value.count))
                strings += value
            } else {
                headerOffsets.append((nameOffset, nil, -1))
            }
        }
        let opaque = Unmanaged.passRetained(pending).toOpaque()
        let outcome: EnqueueOutcome = strings.withUnsafeBytes { buffer in
            let base = buffer.baseAddress!
            var fields: [rd_kafka_vu_t] = []
            fields.reserveCapacity(6 + headerOffsets.count)
            func field(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t) -> Void) {
                var value = rd_kafka_vu_t()
                value.vtype = type
                fill(&value)
                fields.append(value)
            }
            field(RD_KAFKA_VTYPE_TOPIC) { $0.u.cstr = base.assumingMemoryBound(to: CChar.self) }
            if let partition = message.partition {
                field(RD_KAFKA_VTYPE_PARTITION) { $0.u.i32 = partition }
            }
            field(RD_KAFKA_VTYPE_MSGFLAGS) { $0.u.i = RdKafkaConstants.msgFlagCopy }
            field(RD_KAFKA_VTYPE_OPAQUE) { $0.u.ptr = opaque }
            for header in headerOffsets {
                field(RD_KAFKA_VTYPE_HEADER) {
                    $0.u.header.name = (base + header.name).assumingMemoryBound(to: CChar.self)
                    $0.u.header.val = header.value.map { UnsafeRawPointer(base + $0) }
                    $0.u.header.size = header.size
                }
            }
            return withBytes(message.key) { key, keySize in
                if message.key != nil {
                    field(RD_KAFKA_VTYPE_KEY) { $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: key); $0.u.mem.size = keySize }
                }
                return withBytes(message.value) { value, valueSize in
                    if message.value != nil {
                        field(RD_KAFKA_VTYPE_VALUE) { $0.u.mem.ptr = UnsafeMutableRawPointer(mutating: value); $0.u.mem.size = valueSize }
                    }
                    // The lock makes "is the producer open" and "enqueue"
                    // one step with respect to shutdown.
                    return isOpen.withLock { open -> EnqueueOutcome in
                        guard open else { return .closed }
                        let error = fields.withUnsafeBufferPointer { rd_kafka_produceva(handle.pointer, $0.baseAddress, $0.count) }
                        return error.map(EnqueueOutcome.rejected) ?? .accepted
                    }
                }
            }
        }
        switch outcome {
        case .accepted:
            return
        case .closed:
            // librdkafka never saw the message: the reference we made for it
            // is ours to drop.
            Unmanaged<PendingDelivery>.fromOpaque(opaque).release()
            throw KafkaError.closed("send to \(message.topic)")
        case .rejected(let error):
            Unmanaged<PendingDelivery>.fromOpaque(opaque).release()
            try check(consuming: error, "send to \(message.topic)")
        }
    }
}

private enum EnqueueOutcome {
    case accepted
    case rejected(OpaquePointer)
    case closed
}

/// Calls `body` with a pointer to the bytes (or nil) and their count.
private func withBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    return bytes.withUnsafeBytes { body($0.baseAddress, $0.count) }
}

/// What librdkafka carries for one message until its delivery report.
final class PendingDelivery: Sendable {
    let collector: DeliveryCollector
    let index: Int
    let topic: String

    init(collector: DeliveryCollector, index: Int, topic: String) {
        self.collector = collector
        self.index = index
        self.topic = topic
    }
}

/// Gathers the reports of one `send` call and resumes its task when the last
/// one is in. Reports may arrive before the task has started waiting (the
/// broker can be that fast), so the continuation is attached whenever it
/// comes and resumed by whichever side is last.
final class DeliveryCollector: Sendable {
    private struct State {
        var results: [Result<KafkaDeliveryReport, KafkaError>?]
        var remaining: Int
        var continuation: CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], Never>?
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
    }

    func complete(_ index: Int, _ result: Result<KafkaDeliveryReport, KafkaError>) {
        let (continuation, results) = state.withLock { state -> (CheckedContinuation<[Result<KafkaDeliveryReport, KafkaError>], Never>?, [Result<KafkaDeliveryReport, KafkaError>]) in
            state.results[index] = result
            state.remaining -= 1
            guard state.remaining == 0, let continuation = state.continuation else { return (nil, []) }
            state.continuation = nil
            return (continuation, state.results.map { $0! })
        }
        continuation?.resume(returning: results)
    }

    func wait() async throws(KafkaError) -> [KafkaDeliveryReport] {
        let results = await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [Result<KafkaDeliveryReport, KafkaError>]? in
                if state.remaining == 0 { return state.results.map { $0! } }
                state.continuation = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
        return try results.map { result throws(KafkaError) in try result.get() }
    }
}

/// librdkafka's delivery report, called from `rd_kafka_poll` on the
/// producer's thread, once per message.
private let deliveryCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    client, message, opaque in
    guard let message, let pointer = message.pointee._private else { return }
    // Balances the passRetained in `enqueue`: the report comes exactly once.
    let pending = Unmanaged<PendingDelivery>.fromOpaque(pointer).takeRetainedValue()
    let err = message.pointee.err
    if err == RD_KAFKA_RESP_ERR_NO_ERROR {
        pending.collector.complete(pending.index, .success(KafkaDeliveryReport(
            topic: pending.topic, partition: message.pointee.partition, offset: message.pointee.offset)))
        return
    }
    let context = "send to \(pending.topic)"
    let detail = ClientContext.from(opaque)?.diagnostics ?? ""
    // A message can fail with a broker code (UNKNOWN_PRODUCER_ID) that has
    // made the whole producer fail for good: ask, and say so.
    if let client {
        let (fatal, reason) = withErrorBuffer { rd_kafka_fatal_error(client, $0, $1) }
        if fatal != RD_KAFKA_RESP_ERR_NO_ERROR {
            // The usual case: an idempotent producer whose broker forgot its
            // producer id (Tansu's memory storage after a restart). It cannot
            // resend without risking duplicates, so librdkafka stops it.
            let error = KafkaError(err, context: context, detail: "\(reason); this producer is unusable now, create a new one; \(detail)")
            pending.collector.complete(pending.index, .failure(KafkaError(code: .fatal, message: error.message, rdkafkaCode: err.rawValue)))
            return
        }
    }
    pending.collector.complete(pending.index, .failure(KafkaError(err, context: context, detail: detail)))
}
