import Logging
import Testing
import Tracing

@testable import Observability

/// W3C Trace Context as the specification reads it, and the tracer that
/// carries it. The tracer is used as an instance here: the process-wide one
/// is the server runner's business.
@Suite("Tracing")
struct TracingTests {
    static let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test("a valid traceparent is read field by field and written back unchanged")
    func readsAndWrites() throws {
        let trace = try #require(TraceContext(traceparent: Self.valid, tracestate: "congo=t61rcWkgMzE"))
        #expect(trace.traceId == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(trace.spanId == "00f067aa0ba902b7")
        #expect(trace.flags == 1)
        #expect(trace.traceState == "congo=t61rcWkgMzE")
        #expect(trace.traceparent == Self.valid)
        #expect(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")?.traceparent.hasSuffix("-00") == true)
    }

    @Test("anything the specification says to ignore is ignored", arguments: [
        "",
        "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // all-zero parent id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // version ff
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  // version 00 is exactly 55
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",  // dashes misplaced
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",  // flags not hex
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",  // a later version's fields follow a dash
    ])
    func ignoresInvalid(_ header: String) {
        #expect(TraceContext(traceparent: header) == nil)
    }

    @Test("a later version is read by its first four fields")
    func laterVersion() {
        let trace = TraceContext(traceparent: "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds")
        #expect(trace?.traceId == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(trace?.traceparent == Self.valid.replacingOccurrences(of: "cc-", with: "00-"))
    }

    @Test("a new trace is valid; a child keeps the trace and gets a span of its own")
    func rootAndChild() throws {
        let root = TraceContext.root()
        #expect(TraceContext(traceparent: root.traceparent) == root)
        let child = root.child()
        #expect(child.traceId == root.traceId)
        #expect(child.flags == root.flags)
        #expect(child.spanId != root.spanId)
        #expect(TraceContext.root().traceId != root.traceId)
    }

    @Test("the tracer continues a trace it extracts, and injects the span's own id for the next hop")
    func extractSpanInject() throws {
        let tracer = ShopTracer()
        var context = ServiceContext.topLevel
        // Header names are matched without regard to case, as HTTP's are.
        tracer.extract([("TraceParent", Self.valid), ("tracestate", "k=v")], into: &context, using: HeaderPairsCarrier())
        #expect(context.trace?.spanId == "00f067aa0ba902b7")

        let span = tracer.startSpan("hop", context: context, ofKind: .server)
        let own = try #require(span.context.trace)
        #expect(own.traceId == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(own.spanId != "00f067aa0ba902b7")
        #expect(span.parent?.spanId == "00f067aa0ba902b7")

        var headers: [(String, String)] = []
        tracer.inject(span.context, into: &headers, using: HeaderPairsCarrier())
        #expect(headers.first { $0.0 == "traceparent" }?.1 == "00-4bf92f3577b34da6a3ce929d0e0e4736-\(own.spanId)-01")
        #expect(headers.first { $0.0 == "tracestate" }?.1 == "k=v")
        span.end()
        #expect(!span.isRecording)

        // Nothing to continue: a trace of its own; a broken header: the same.
        #expect(tracer.startSpan("fresh", context: .topLevel).parent == nil)
        var broken = ServiceContext.topLevel
        tracer.extract([("traceparent", "00-zz")], into: &broken, using: HeaderPairsCarrier())
        #expect(broken.trace == nil)
        // Outside a trace nothing is injected.
        var none: [(String, String)] = []
        tracer.inject(.topLevel, into: &none, using: HeaderPairsCarrier())
        #expect(none.isEmpty)
    }

    @Test("log lines inside a trace carry its ids; outside one they carry none")
    func logMetadata() throws {
        #expect(Logger.MetadataProvider.traceIds.get().isEmpty)
        var context = ServiceContext.topLevel
        context.trace = TraceContext(traceparent: Self.valid)
        let inside = ServiceContext.$current.withValue(context) { Logger.MetadataProvider.traceIds.get() }
        #expect(inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(inside["span_id"] == "00f067aa0ba902b7")
        // Work done later for something stored in this trace (a relay) joins it.
        #expect(Observability.inTrace(Self.valid) { Observability.currentTraceparent } == Self.valid)
        #expect(Observability.inTrace(nil) { Observability.currentTraceparent } == nil)
    }
}
