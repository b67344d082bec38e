import AsyncStageSupport
import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// Every process's `GET /metrics`, read by the reference parser of the
/// format (python's prometheus_client) and by a real Prometheus: the
/// figures exist, parse, and move by exactly what a known set of orders
/// makes them move. Stage 1 (one process), stage 4 (messaging) and stage 8
/// (the newest: event store, projections, jobs, consumer lag).
@Suite("Metrics", .serialized)
struct MetricsTests {
    /// One sample as the parser read it.
    struct Sample: Decodable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// Scrapes each address with prometheus_client's text parser; a page it
    /// cannot parse fails the test with the parser's error.
    static func scrape(_ urls: [String]) async throws -> [String: [Sample]] {
        let output = try await PythonPeer.run("""
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            pages = {}
            for url in sys.argv[1:]:
                with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
                    kind = response.headers.get("Content-Type", "")
                    text = response.read().decode("utf-8")
                if not kind.startswith("text/plain; version=0.0.4"):
                    raise SystemExit(f"{url}/metrics answered Content-Type {kind!r}")
                pages[url] = [{"name": s.name, "labels": s.labels, "value": s.value}
                              for family in text_string_to_metric_families(text) for s in family.samples]
            print(json.dumps(pages))
            """, arguments: urls)
        return try JSONDecoder().decode([String: [Sample]].self, from: Data(output.utf8))
    }

    /// The sum of the samples called `name` whose labels include `labels`.
    static func value(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }.reduce(0) { $0 + $1.value }
    }

    static func has(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Bool {
        samples.contains { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
    }

    /// A product, and orders that end each way: `approved` confirmed, one
    /// declined card, one order for more than the stock (cancelled out of
    /// stock). Answers once every one is decided.
    static func placeKnownOrders(_ api: ShopAPI, admin: String, approved: Int) async throws -> [API.Order] {
        let customer = try await api.newCustomer("metrics")
        let product = try await api.createProduct(
            .init(sku: "MET-\(ID.make("x").dropFirst(2))", name: "Metered", priceCents: 500, initialStock: approved + 1), adminToken: admin)
        var ids: [String] = []
        for _ in 0..<approved {
            ids.append(try await api.placeOrder([(product.id, 1)], token: customer.token).decode(API.Order.self).id)
        }
        ids.append(try await api.placeOrder([(product.id, 1)], card: SimulatedCardProcessor.declinedCard, token: customer.token).decode(API.Order.self).id)
        ids.append(try await api.placeOrder([(product.id, 50)], token: customer.token).decode(API.Order.self).id)
        var decided: [API.Order] = []
        for id in ids {
            decided.append(try await Poll.until("order \(id) is decided", within: .seconds(30)) {
                let order = try await api.order(id, token: customer.token)
                return order.status.isDecided ? order : nil
            })
        }
        return decided
    }

    /// What the orders must have counted where orders are counted: one
    /// placement each, and one decision each by its outcome and reason.
    static func expectOrderCounters(_ samples: [Sample], _ orders: [API.Order]) {
        #expect(value(samples, "shop_orders_placed_total") == Double(orders.count))
        let outcomes = Dictionary(grouping: orders) { "\($0.status.rawValue)/\($0.cancelReason?.rawValue ?? "none")" }
        for (key, decided) in outcomes {
            let parts = key.split(separator: "/").map(String.init)
            #expect(value(samples, "shop_orders_decided_total", ["outcome": parts[0], "reason": parts[1]]) == Double(decided.count), "\(key)")
        }
        #expect(value(samples, "shop_orders_decided_total") == Double(orders.count), "each order decided once")
    }

    /// A decision is counted just after its commit, and the API may show
    /// the order decided a moment before: scrape until the page has them all.
    static func scrapeOnceCounted(_ urls: [String], orderProcess: String, _ orders: [API.Order]) async throws -> [String: [Sample]] {
        try await Poll.until("every order is counted", within: .seconds(10), every: .milliseconds(200)) { () async throws -> [String: [Sample]]? in
            let pages = try await scrape(urls)
            let page = pages[orderProcess] ?? []
            return value(page, "shop_orders_decided_total") >= Double(orders.count) ? pages : nil
        }
    }

    /// Asks a real Prometheus (`scripts/infra up prometheus`) for `query`
    /// until it answers `expected`: the stage told it where its processes
    /// are, and it scraped them.
    static func prometheus(_ query: String, equals expected: Double) async throws {
        let url = "http://127.0.0.1:\(ProcessInfo.processInfo.environment["PROMETHEUS_PORT"] ?? "9090")/api/v1/query?query="
            + (query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? query)
        let http = HTTPClient(timeout: .seconds(5))
        _ = try await Poll.until("Prometheus answers \(expected) to \(query)", within: .seconds(30), every: .milliseconds(500)) { () async throws -> Bool? in
            let response = try await http.send("GET", url)
            guard response.status == 200,
                  let body = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
                  let data = body["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                  let first = result.first, let pair = first["value"] as? [Any], let text = pair.last as? String else { return nil }
            return Double(text) == expected ? true : nil
        }
    }

    static func startPrometheus() async throws -> String {
        let up = try await runProcess(Repository.infraScript, ["-q", "up", "prometheus"], timeout: .seconds(60))
        #expect(up.status == 0, "scripts/infra up prometheus: \(up.stderr)")
        return (Repository.root ?? ".") + "/.infra/prometheus/targets"
    }

    /// The processes of a deployment behind a gateway: the gateway, and
    /// every instance discovery knows, once it knows each of `services`
    /// (a service that was stopped registers again when it resumes).
    static func processes(_ deployment: Deployment, services: Set<String>) async throws -> [(name: String, url: String)] {
        struct Instance: Codable, Sendable { var service: String; var address: String }
        let listed = try await Poll.until("discovery lists \(services.sorted())", within: .seconds(20), every: .milliseconds(200)) { () async throws -> [Instance]? in
            let listed: API.ItemList<Instance> = try await deployment.api.call("GET", "/admin/services", token: deployment.admin.token).expect(200)
            return Set(listed.items.map(\.service)) == services ? listed.items : nil
        }
        // `address` is host:port.
        return [("gateway", deployment.stage.baseURL)] + listed.map { ($0.service, $0.address.contains("://") ? $0.address : "http://" + $0.address) }
    }

    @Test("stage 1: the monolith's /metrics parses, counts each order once by outcome and each request by route; Prometheus reads the same")
    func stageOne() async throws {
        let targets = try await Self.startPrometheus()
        let stage = try StageProcess.launch(stage: 1, extraEnvironment: ["PROMETHEUS_TARGETS_DIR": targets])
        defer { stage.requestStop() }
        let api = ShopAPI(baseURL: stage.baseURL, http: HTTPClient(timeout: .seconds(10)))
        try await stage.waitUntilHealthy(api)
        let admin = try await api.login(email: Launcher.adminEmail, password: Launcher.adminPassword)
        let orders = try await Self.placeKnownOrders(api, admin: admin.token, approved: 3)

        let samples = try await Self.scrape([stage.baseURL])[stage.baseURL] ?? []
        #expect(orders.filter { $0.status == .confirmed }.count == 3)
        Self.expectOrderCounters(samples, orders)
        // Five orders placed: each a POST /orders answered 201 (a declined
        // card and a lack of stock are decisions, not errors), each timed.
        let posted = ["route": "/orders", "method": "POST", "status": "201"]
        #expect(Self.value(samples, "http_requests_total", posted) == 5)
        #expect(Self.value(samples, "http_request_duration_seconds_count", posted) == 5)
        #expect(Self.has(samples, "http_request_duration_seconds_bucket", posted.merging(["le": "+Inf"]) { $1 }))
        // An order's id is never a label: the route is the template.
        #expect(Self.has(samples, "http_requests_total", ["route": "/orders/{id}", "method": "GET"]))
        #expect(!samples.contains { $0.labels.values.contains { $0.hasPrefix("ord_") } })

        let instance = "127.0.0.1:\(stage.port)"
        try await Self.prometheus("sum(shop_orders_placed_total{instance=\"\(instance)\"})", equals: 5)
        try await Self.prometheus("sum(shop_orders_decided_total{instance=\"\(instance)\",outcome=\"confirmed\"})", equals: 3)
        await stage.stop()
    }

    @Test("stage 4: every process serves /metrics that parses; orders, calls, discovery, messages and the outbox are counted; Prometheus finds every process through etcd")
    func stageFour() async throws {
        let targets = try await Self.startPrometheus()
        let deployment = try await Deployment.start(stage: 4, ["PROMETHEUS_TARGETS_DIR": targets])
        defer { deployment.stage.requestStop() }
        let orders = try await Self.placeKnownOrders(deployment.api, admin: deployment.admin.token, approved: 4)
        let processes = try await Self.processes(deployment, services: ["user", "product", "order", "inventory", "payment", "notification", "deadletter"])

        let orderURL = processes.first { $0.name == "order" }!.url
        _ = try await Self.scrapeOnceCounted(processes.map(\.url), orderProcess: orderURL, orders)
        // The outbox empties once the broker has everything.
        let pages = try await Poll.until("every outbox is empty", within: .seconds(20)) { () async throws -> [String: [Sample]]? in
            let pages = try await Self.scrape(processes.map(\.url))
            return pages.values.allSatisfy { Self.value($0, "shop_outbox_backlog_messages") == 0 } ? pages : nil
        }
        func page(_ name: String) -> [Sample] { pages[processes.first { $0.name == name }!.url] ?? [] }
        for (name, url) in processes {
            #expect(Self.has(pages[url] ?? [], "http_requests_total"), "\(name) counts its requests")
        }
        #expect(orders.filter { $0.status == .confirmed }.count == 4)
        Self.expectOrderCounters(page("order"), orders)
        // Every order reached payment and inventory through RabbitMQ, once.
        #expect(Self.value(page("order"), "shop_messages_published_total", ["type": "order.created"]) == 6)
        #expect(Self.value(page("payment"), "shop_messages_consumed_total", ["queue": "payment", "outcome": "handled"]) >= 5)
        #expect(Self.value(page("inventory"), "shop_messages_consumed_total", ["queue": "inventory", "outcome": "handled"]) >= 6)
        #expect(Self.value(page("order"), "shop_messages_consumed_total", ["outcome": "dead_lettered"]) == 0)
        #expect(Self.has(page("order"), "shop_outbox_oldest_message_age_seconds"))
        // The gateway called the order service for each order, and knows
        // one instance of each service.
        #expect(Self.value(page("gateway"), "shop_service_calls_total", ["target": "order", "outcome": "answered"]) >= 6)
        #expect(Self.value(page("gateway"), "shop_discovery_instances", ["service": "payment"]) == 1)

        // Prometheus found the eight processes in etcd and scrapes them.
        try await Self.prometheus("count(up{deployment=\"\(deployment.namespace)\"} == 1)", equals: 8)
        try await Self.prometheus("sum(shop_orders_placed_total{deployment=\"\(deployment.namespace)\"})", equals: 6)
        try await deployment.finish()
    }

    @Test("stage 8: the event store's appends, the projections' lag, jobs by state, consumer lag and records per group are on /metrics and parse; an order cancelled at its deadline is counted as decided")
    func stageEight() async throws {
        let targets = try await Self.startPrometheus()
        // A deadline short enough to wait for, long enough for the others.
        let deployment = try await Deployment.start(stage: 8, ["PROMETHEUS_TARGETS_DIR": targets, "ORDER_DEADLINE_SECONDS": "8"])
        defer { deployment.stage.requestStop() }
        var orders = try await Self.placeKnownOrders(deployment.api, admin: deployment.admin.token, approved: 3)
        #expect(orders.filter { $0.status == .confirmed }.count == 3)
        // One order nobody answers (the payment service stopped): the
        // deadline job decides it, through a command, not a heard fact.
        guard let payment = deployment.stage.child(serving: "payment") else { throw LaunchError("no payment process") }
        let customer = try await deployment.api.newCustomer("deadline")
        let product = try await deployment.api.createProduct(
            .init(sku: "DL-\(ID.make("x").dropFirst(2))", name: "Waited for", priceCents: 300, initialStock: 5), adminToken: deployment.admin.token)
        kill(payment, SIGSTOP)
        let late = try await deployment.api.placeOrder([(product.id, 1)], token: customer.token).decode(API.Order.self)
        let cancelled = try await Poll.until("the order is cancelled at its deadline", within: .seconds(30)) {
            let order = try await deployment.api.order(late.id, token: customer.token)
            return order.status.isDecided ? order : nil
        }
        kill(payment, SIGCONT)
        #expect(cancelled.status == .cancelled)
        orders.append(cancelled)
        let processes = try await Self.processes(deployment, services: [
            "user", "product", "order", "query", "inventory", "payment", "notification", "analytics", "deadletter"])
        let orderURL = processes.first { $0.name == "order" }!.url
        _ = try await Self.scrapeOnceCounted(processes.map(\.url), orderProcess: orderURL, orders)
        // The lags are read when scraped, each given 1 s: the first scrape
        // after a start may come before the first reading is done.
        let pages = try await Poll.until("the projections have caught up and the consumer lag is read", within: .seconds(30)) { () async throws -> [String: [Sample]]? in
            let pages = try await Self.scrape(processes.map(\.url))
            let query = pages[processes.first { $0.name == "query" }!.url] ?? []
            let desk = pages[processes.first { $0.name == "deadletter" }!.url] ?? []
            return Self.has(query, "shop_projection_lag_events") && Self.value(query, "shop_projection_lag_events") == 0
                && Self.has(desk, "shop_consumer_lag_records") ? pages : nil
        }
        func page(_ name: String) -> [Sample] { pages[processes.first { $0.name == name }!.url] ?? [] }
        Self.expectOrderCounters(page("order"), orders)
        // At least the OrderCreated of each order, and each decision.
        #expect(Self.value(page("order"), "shop_event_store_appended_events_total") >= 10)
        #expect(Self.has(page("order"), "shop_event_store_conflicts_total"))
        #expect(Self.has(page("query"), "shop_projection_lag_events", ["projection": "order-views"]))
        #expect(Self.has(page("query"), "shop_projection_lag_events", ["projection": "sales"]))
        #expect(Self.has(page("deadletter"), "shop_jobs", ["queue": "emails", "state": "completed"]))
        #expect(Self.has(page("deadletter"), "shop_consumer_lag_records", ["group": "payment", "topic": "orders"]))
        #expect(Self.value(page("payment"), "shop_stream_records_total", ["group": "payment", "outcome": "handled"]) >= 5)
        #expect(Self.value(page("notification"), "shop_job_duration_seconds_count", ["queue": "emails", "outcome": "completed"]) >= 1)
        try await Self.prometheus("sum(shop_orders_placed_total{deployment=\"\(deployment.namespace)\"})", equals: 6)
        try await Self.prometheus("sum(shop_orders_decided_total{deployment=\"\(deployment.namespace)\"})", equals: 6)
        try await deployment.finish()
    }
}
