import Foundation
import Logging
import Synchronization
import Tracing

// MARK: W3C Trace Context

/// One hop of a trace, as W3C Trace Context carries it between processes:
///
///     traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
///                  |  |                                |                |
///              version  trace id (the whole journey)   this span's id   flags (01: sampled)
///
/// The trace id stays the same from the request that started the journey to
/// the last e-mail it caused; every hop (an HTTP call, a message consumed, a
/// job run) gets a span id of its own and names its caller's span as its
/// parent. `tracestate` is vendor data we pass on untouched.
public struct TraceContext: Sendable, Hashable {
    /// 32 lowercase hex digits, not all zero.
    public let traceId: String
    /// 16 lowercase hex digits, not all zero: the span this context belongs to.
    public let spanId: String
    /// Bit 0 is "sampled": the caller records this trace. Passed on as it came.
    public let flags: UInt8
    public let traceState: String?

    public init(traceId: String, spanId: String, flags: UInt8 = 1, traceState: String? = nil) {
        self.traceId = traceId
        self.spanId = spanId
        self.flags = flags
        self.traceState = traceState
    }

    /// Reads a `traceparent` header; nil for anything the specification
    /// says to ignore (then the receiver starts a trace of its own). Version
    /// 00 is exactly 55 characters; a later version may append fields after
    /// a dash, which we do not read; version ff is invalid.
    public init?(traceparent raw: String, tracestate: String? = nil) {
        // Read in place: a header is parsed for every message and job handled.
        var raw = raw
        guard let fields = raw.withUTF8({ Self.fields(of: $0) }) else { return nil }
        self.init(
            traceId: fields.traceId, spanId: fields.spanId, flags: fields.flags,
            // Longer than the specification's 32 members of 256 bytes:
            // somebody else's problem, not to be carried on.
            traceState: tracestate.flatMap { $0.isEmpty || $0.utf8.count > 8_192 ? nil : $0 })
    }

    private static func fields(of utf8: UnsafeBufferPointer<UInt8>) -> (traceId: String, spanId: String, flags: UInt8)? {
        let dash = UInt8(ascii: "-")
        guard utf8.count >= 55, utf8[2] == dash, utf8[35] == dash, utf8[52] == dash,
              let version = hexByte(utf8[0], utf8[1]), version != 0xff else { return nil }
        if version == 0 {
            guard utf8.count == 55 else { return nil }
        } else if utf8.count > 55 {
            guard utf8[55] == dash else { return nil }
        }
        let traceId = UnsafeBufferPointer(rebasing: utf8[3..<35]), spanId = UnsafeBufferPointer(rebasing: utf8[36..<52])
        guard isLowerHex(traceId), isLowerHex(spanId),
              traceId.contains(where: { $0 != UInt8(ascii: "0") }),
              spanId.contains(where: { $0 != UInt8(ascii: "0") }),
              let flags = hexByte(utf8[53], utf8[54]) else { return nil }
        return (String(decoding: traceId, as: UTF8.self), String(decoding: spanId, as: UTF8.self), flags)
    }

    /// Two lower-case hex digits as a byte.
    private static func hexByte(_ high: UInt8, _ low: UInt8) -> UInt8? {
        guard let high = hexValue(high), let low = hexValue(low) else { return nil }
        return high << 4 | low
    }

    private static func hexValue(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }

    /// As sent: always version 00, the one version we write.
    public var traceparent: String {
        var text = "00-"
        text.reserveCapacity(55)
        text += traceId
        text += "-"
        text += spanId
        text += "-"
        text.unicodeScalars.append(Unicode.Scalar(Self.hexDigits[Int(flags >> 4)]))
        text.unicodeScalars.append(Unicode.Scalar(Self.hexDigits[Int(flags & 0xf)]))
        return text
    }

    /// A new journey: the request came without a trace (or with one we
    /// could not read).
    public static func root() -> TraceContext {
        var random = SystemRandomNumberGenerator()
        let high: UInt64 = random.next(), low: UInt64 = random.next()
        // An all-zero trace id is invalid; one in 2^128.
        return TraceContext(traceId: hex(high, low == 0 && high == 0 ? 1 : low), spanId: newSpanId(&random))
    }

    /// The next hop of the same journey.
    public func child() -> TraceContext {
        var random = SystemRandomNumberGenerator()
        return TraceContext(traceId: traceId, spanId: Self.newSpanId(&random), flags: flags, traceState: traceState)
    }

    static func newSpanId(_ random: inout SystemRandomNumberGenerator) -> String {
        let value: UInt64 = random.next()
        return hex(value == 0 ? 1 : value)
    }

    /// Lower-case hex, 16 digits a value, written straight into the string
    /// (a span id is made for every request, call and message).
    static func hex(_ values: UInt64...) -> String {
        String(unsafeUninitializedCapacity: values.count * 16) { buffer in
            var at = 0
            for value in values {
                for shift in stride(from: 60, through: 0, by: -4) {
                    buffer[at] = hexDigits[Int(truncatingIfNeeded: (value >> UInt64(shift)) & 0xf)]
                    at += 1
                }
            }
            return at
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func isLowerHex(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}

/// Where a `TraceContext` lives in swift-distributed-tracing's task-local
/// `ServiceContext`: set for the length of a span, read by whatever runs
/// inside it (a log line, a call to another service, a message written).
public enum TraceContextKey: ServiceContextKey {
    public typealias Value = TraceContext
    public static var nameOverride: String? { "traceparent" }
}

extension ServiceContext {
    public var trace: TraceContext? {
        get { self[TraceContextKey.self] }
        set { self[TraceContextKey.self] = newValue }
    }
}

// MARK: The tracer

/// swift-distributed-tracing's `Tracer` for the shop: it propagates W3C
/// Trace Context and gives each span its id. It exports nothing over the
/// network (docs/traces.md says why there is no OTLP exporter); with `LOG_LEVEL=debug` every finished span is one log line,
/// so `grep trace_id=…` over the processes' logs shows the whole journey
/// with each hop's duration.
public struct ShopTracer: Tracer {
    public typealias Span = ShopSpan

    let logger: Logger

    public init(logger: Logger = Logger(label: "trace")) { self.logger = logger }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> ShopSpan {
        var context = context()
        let parent = context.trace
        context.trace = parent?.child() ?? .root()
        return ShopSpan(operationName, context: context, parent: parent, kind: kind, start: instant().nanosecondsSinceEpoch, logger: logger)
    }

    public func forceFlush() {}

    public func inject<Carrier, Inject>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject: Injector, Carrier == Inject.Carrier {
        guard let trace = context.trace else { return }
        injector.inject(trace.traceparent, forKey: TraceHeader.traceparent, into: &carrier)
        if let state = trace.traceState { injector.inject(state, forKey: TraceHeader.tracestate, into: &carrier) }
    }

    public func extract<Carrier, Extract>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract: Extractor, Carrier == Extract.Carrier {
        guard let raw = extractor.extract(key: TraceHeader.traceparent, from: carrier),
              let trace = TraceContext(traceparent: raw, tracestate: extractor.extract(key: TraceHeader.tracestate, from: carrier))
        else { return }
        context.trace = trace
    }
}

/// The header (and message-header, and CloudEvents attribute) names.
public enum TraceHeader {
    public static let traceparent = "traceparent"
    public static let tracestate = "tracestate"
}

/// One hop: a request served, a call made, a message or a job handled.
public final class ShopSpan: Tracing.Span {
    public let context: ServiceContext
    let parent: TraceContext?
    let kind: SpanKind
    let start: UInt64
    let logger: Logger

    private struct State {
        var name: String
        var attributes = SpanAttributes()
        var status: SpanStatus?
        var error: String?
        var ended = false
    }
    private let state: Mutex<State>

    init(_ name: String, context: ServiceContext, parent: TraceContext?, kind: SpanKind, start: UInt64, logger: Logger) {
        self.context = context
        self.parent = parent
        self.kind = kind
        self.start = start
        self.logger = logger
        self.state = Mutex(State(name: name))
    }

    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }

    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }

    public var isRecording: Bool { state.withLock { !$0.ended } }

    public func setStatus(_ status: SpanStatus) { state.withLock { $0.status = status } }

    public func addEvent(_ event: SpanEvent) {}

    public func addLink(_ link: SpanLink) {}

    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        state.withLock { $0.error = String(describing: error) }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        guard let finished = state.withLock({ state -> State? in
            guard !state.ended else { return nil }
            state.ended = true
            return state
        }) else { return }
        // The export: one debug line per span. Checked first, so that a
        // process at `info` pays nothing for it.
        guard logger.logLevel <= .debug, let own = context.trace else { return }
        let elapsed = Double(instant().nanosecondsSinceEpoch &- start) / 1e6
        var metadata: Logger.Metadata = [
            "trace_id": .string(own.traceId), "span_id": .string(own.spanId),
            "span": .string(finished.name), "kind": .string("\(kind)"),
            "ms": .string(String(format: "%.2f", elapsed)),
        ]
        if let parent { metadata["parent_span_id"] = .string(parent.spanId) }
        if let error = finished.error { metadata["error"] = .string(error) }
        if finished.status?.code == .error { metadata["status"] = "error" }
        logger.debug("span", metadata: metadata)
    }
}

// MARK: Using it

extension Observability {
    /// Makes `ShopTracer` the process's tracer. Once per process; the server
    /// runner calls it. A tool that never calls it traces nothing: no span,
    /// no `traceparent` sent.
    public static func installTracer() {
        let first = tracerInstalled.withLock { done in defer { done = true }; return !done }
        guard first else { return }
        // Libraries that trace through the global (Hummingbird's own
        // middleware, for one) get the same tracer.
        InstrumentationSystem.bootstrap(tracer)
        tracing.store(true, ordering: .releasing)
    }

    private static let tracerInstalled = Mutex(false)
    /// The shop's own calls use the tracer directly: reading the library's
    /// global takes a lock each time, and every request, call and message
    /// asks for it (it showed in profiles).
    static let tracer = ShopTracer()
    private static let tracing = Atomic(false)

    /// The trace the current task is in, if any.
    public static var currentTrace: TraceContext? { ServiceContext.current?.trace }

    /// The `traceparent` to store with work that runs later, elsewhere: a
    /// message in the outbox, a job, an event. Nil outside any trace.
    public static var currentTraceparent: String? { currentTrace?.traceparent }

    /// The trace a carrier (an HTTP request's headers) says it continues,
    /// on top of the current context.
    public static func context<Carrier, Extract: Extractor>(extracting carrier: Carrier, using extractor: Extract) -> ServiceContext
    where Extract.Carrier == Carrier {
        var context = ServiceContext.current ?? .topLevel
        if tracing.load(ordering: .acquiring) { tracer.extract(carrier, into: &context, using: extractor) }
        return context
    }

    /// Writes the current span's `traceparent` (and `tracestate`) into a
    /// carrier (an outgoing call's headers).
    public static func inject<Carrier, Inject: Injector>(into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let context = ServiceContext.current else { return }
        tracer.inject(context, into: &carrier, using: injector)
    }

    /// Runs `body` as a span of `context`'s trace (a new trace when it has
    /// none). Everything `body` logs carries the trace id, and everything it
    /// sends carries the trace on. Without an installed tracer, just `body`.
    public static func withSpan<T>(
        _ name: String, ofKind kind: SpanKind, context: ServiceContext? = nil,
        isolation: isolated (any Actor)? = #isolation, _ body: (ShopSpan?) async throws -> T
    ) async rethrows -> T {
        guard tracing.load(ordering: .acquiring) else { return try await body(nil) }
        let span = tracer.startSpan(name, context: context ?? ServiceContext.current ?? .topLevel, ofKind: kind)
        defer { span.end() }
        do {
            return try await ServiceContext.$current.withValue(span.context, operation: { try await body(span) }, isolation: isolation)
        } catch {
            span.recordError(error)
            throw error
        }
    }

    /// The same, continuing the trace in `traceparent` (a message's header,
    /// a job's field, a record's header), or a new trace when there is none.
    public static func withSpan<T>(
        _ name: String, ofKind kind: SpanKind, continuing traceparent: String?, tracestate: String? = nil,
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> T
    ) async rethrows -> T {
        var context = ServiceContext.current ?? .topLevel
        if let parent = traceparent.flatMap({ TraceContext(traceparent: $0, tracestate: tracestate) }) {
            context.trace = parent
        }
        return try await withSpan(name, ofKind: kind, context: context, isolation: isolation) { _ in try await body() }
    }
}

extension Observability {
    /// Runs `body` inside the trace in `traceparent`, without a span of its
    /// own: for work done on behalf of something stored earlier (a relay
    /// deriving jobs from a stored event).
    public static func inTrace<T>(_ traceparent: String?, _ body: () throws -> T) rethrows -> T {
        guard let trace = traceparent.flatMap({ TraceContext(traceparent: $0) }) else { return try body() }
        var context = ServiceContext.current ?? .topLevel
        context.trace = trace
        return try ServiceContext.$current.withValue(context) { try body() }
    }
}

extension Logger.MetadataProvider {
    /// Adds `trace_id` and `span_id` to every log line written inside a
    /// span, whichever logger writes it.
    public static let traceIds = Logger.MetadataProvider {
        guard let trace = ServiceContext.current?.trace else { return [:] }
        return ["trace_id": .string(trace.traceId), "span_id": .string(trace.spanId)]
    }
}

// MARK: Carriers

/// Headers as name-value pairs (an HTTP call's, a message's): names are
/// matched without regard to case, as HTTP's are.
public struct HeaderPairsCarrier: Injector, Extractor {
    public init() {}

    public func inject(_ value: String, forKey key: String, into carrier: inout [(String, String)]) {
        carrier.append((key, value))
    }

    public func extract(key: String, from carrier: [(String, String)]) -> String? {
        carrier.first { $0.0.caseInsensitiveCompare(key) == .orderedSame }?.1
    }
}
