import AsyncStageSupport
import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// One trace id across every hop of stage 4: the caller's W3C `traceparent`
/// is continued at the gateway, carried on the HTTP call to the order
/// service, stored with the outbox's messages, sent as their AMQP header,
/// and continued by every consumer; every log line written inside it has
/// its `trace_id`. Read from the real processes' logs.
///
/// A test of the stage's serialized suite: a suite of its own would start
/// its deployment beside the other tests' on two cores.
extension MessagingTests {
    @Test("one order's trace id is on the log lines of every service that handled it, and nowhere else")
    func oneTraceAcrossEveryHop() async throws {
        // Debug: every finished span is a line, so a consumer that logs
        // nothing at info still shows the hop.
        let deployment = try await Deployment.start(stage: 4, ["LOG_LEVEL": "debug"])
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let traced = try await TracedOrder.place(in: deployment)
        let (placed, product, customer) = (traced.order, traced.product, traced.customer)
        let (traceId, callerSpan) = (traced.traceId, traced.callerSpan)
        // A second order without a trace: it must get a trace of its own.
        let other: API.Order = try await api.placeOrder([(product.id, 1)], token: customer.token).expect(201)
        #expect(try await api.decidedOrder(placed.id, token: customer.token).status == .confirmed)
        #expect(try await api.decidedOrder(other.id, token: customer.token).status == .confirmed)

        // The order service asks the product service for prices; the last
        // hop is the confirmation e-mail, whose span's line is written once
        // the notification service has handled it.
        let expected: Set<String> = [
            "gateway", "order-service", "product-service", "inventory-service", "payment-service", "notification-service",
        ]
        let lines = try await Poll.until("every service has logged the order's trace", within: .seconds(15)) { () -> [LogLine]? in
            let lines = LogLine.lines(of: deployment.stage.logFile, trace: traceId)
            return expected.isSubset(of: Set(lines.compactMap { $0["service"] })) ? lines : nil
        }
        let services = Set(lines.compactMap { $0["service"] })
        #expect(services.isSubset(of: expected.union(["stage-4"])), "only the services on the order's path: \(services)")

        // The gateway continued the caller's trace: its request span names
        // the caller's span as its parent, and its access line has the id.
        let gatewaySpan = lines.first { $0["service"] == "gateway" && $0["msg"] == "span" && $0["kind"] == "server" }
        #expect(gatewaySpan?["parent_span_id"] == callerSpan, "\(lines.filter { $0["service"] == "gateway" })")
        #expect(lines.contains { $0["service"] == "gateway" && $0["msg"] == "request" && $0["path"] == "/orders" })
        #expect(lines.contains { $0["service"] == "order-service" && $0["msg"] == "request" && $0["path"] == "/orders" })
        // Every hop is a span of its own with a parent in the same trace
        // (the caller's span or another of this trace's spans).
        let spans = lines.filter { $0["msg"] == "span" }
        let spanIds = Set(spans.compactMap { $0["span_id"] }).union([callerSpan])
        #expect(spans.count >= 10, "\(spans.count) spans")
        for span in spans {
            #expect(span["parent_span_id"].map(spanIds.contains) == true, "a span whose parent is not in the trace: \(span)")
        }
        // Each consumer continued the trace from the message's header.
        for service in ["inventory-service", "payment-service", "notification-service", "order-service"] {
            #expect(spans.contains { $0["service"] == service && $0["kind"] == "consumer" }, "no consumer span at \(service)")
        }

        // The untraced order was given a trace of its own, unlike ours.
        let text = try String(contentsOf: deployment.stage.logFile, encoding: .utf8)
        let all: [LogLine] = text.split(separator: "\n").map { LogLine($0) }
        let placements: [LogLine] = all.filter { line in
            line["service"] == "gateway" && line["msg"] == "request" && line["path"] == "/orders"
        }
        let orderTraces = Set(placements.compactMap { line in line["trace_id"] })
        #expect(orderTraces.count == 2 && orderTraces.contains(traceId), "two orders, two traces: \(orderTraces)")
        #expect(orderTraces.allSatisfy { id in id.count == 32 && id.allSatisfy { $0.isHexDigit } })

        // A `traceparent` that breaks the specification (upper-case hex) is
        // ignored: the request starts a trace of its own and is served.
        let bad = "00-\(traceId.uppercased())-\(callerSpan)-01"
        let answer = try await api.call("GET", "/products", token: nil, headers: [("traceparent", bad)])
        #expect(answer.status == 200)
        try await deployment.finish()
    }

}
