import AsyncStageSupport
import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// One trace id across stage 8's hops: the command appends events in the
/// request's trace, the event store keeps it with each event, the relay
/// sends it on the Kafka records (header and CloudEvents attribute) and in
/// the jobs the events imply (BullMQ's `opts.tm`), and every consumer
/// group, projection and job worker continues it.
///
/// A test of the stage's serialized suite: a suite of its own would start
/// its deployment beside the other tests' on two cores.
extension EventSourcingTests {
    @Test("one order's trace id reaches the Kafka consumers, the projections and the jobs")
    func oneTraceThroughTheLogAndTheJobs() async throws {
        let deployment = try await Deployment.start(stage: 8, ["LOG_LEVEL": "debug"])
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let traced = try await TracedOrder.place(in: deployment)
        let (placed, customer, traceId, callerSpan) = (traced.order, traced.customer, traced.traceId, traced.callerSpan)
        #expect(try await api.decidedOrder(placed.id, token: customer.token).status == .confirmed)

        // The order service asks the product service for prices; the query
        // service's projections and the analytics service read the log too.
        let expected: Set<String> = [
            "gateway", "order-service", "product-service", "inventory-service", "payment-service", "notification-service",
            "query-service", "analytics-service",
        ]
        // The confirmation's invoice (the order service's job) and its
        // e-mail (the notification service's) are the last hops.
        let jobs = ["job generate on invoices", "job send on emails"]
        let lines = try await Poll.until("every service has logged the order's trace", within: .seconds(30)) { () -> [LogLine]? in
            let lines = LogLine.lines(of: deployment.stage.logFile, trace: traceId)
            let names = Set(lines.filter { $0["msg"] == "span" }.compactMap { $0["span"] })
            let done = expected.isSubset(of: Set(lines.compactMap { $0["service"] })) && jobs.allSatisfy(names.contains)
            return done ? lines : nil
        }
        let spans = lines.filter { $0["msg"] == "span" }
        // Every consumer group of the log continued the trace from the
        // records' headers: the projections, the saga's participants, analytics.
        for group in ["order-views", "sales", "inventory", "payment", "notification", "analytics"] {
            #expect(spans.contains { $0["kind"] == "consumer" && $0["span"]?.hasSuffix(".\(group)") == true },
                    "no consumer span of the \(group) group")
        }
        #expect(spans.contains { $0["service"] == "order-service" && $0["span"] == "job generate on invoices" })
        #expect(spans.contains { $0["service"] == "notification-service" && $0["span"] == "job send on emails" })
        // One tree: every span's parent is the caller's span or another span of the trace.
        let spanIds = Set(spans.compactMap { $0["span_id"] }).union([callerSpan])
        for span in spans {
            #expect(span["parent_span_id"].map(spanIds.contains) == true, "a span whose parent is not in the trace: \(span.fields)")
        }
        try await deployment.finish()
    }
}
