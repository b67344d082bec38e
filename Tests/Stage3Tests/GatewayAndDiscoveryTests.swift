import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// Stage 3 against a real etcd (scripts/test starts it; the stage starts
/// the project's own if it is not answering).
@Suite("Stage 3: gateway and discovery", .serialized)
struct GatewayAndDiscoveryTests {
    struct InstanceStatus: Codable { var service: String; var id: String; var address: String; var status: String }

    static func start(_ arguments: [String] = [], environment: [String: String] = [:]) async throws -> (StageProcess, ShopAPI, Session) {
        // A short lease, so that a dead instance leaves the list quickly.
        let stage = try StageProcess.launch(stage: 3, extraArguments: arguments, extraEnvironment: ["DISCOVERY_TTL": "3"].merging(environment) { $1 })
        let api = ShopAPI(baseURL: stage.baseURL, http: HTTPClient(timeout: .seconds(10)))
        try await stage.waitUntilHealthy(api)
        let admin = try await api.login(email: Launcher.adminEmail, password: Launcher.adminPassword)
        return (stage, api, Session(user: admin.user, token: admin.token, password: Launcher.adminPassword))
    }

    func instances(_ api: ShopAPI, admin: Session) async throws -> [InstanceStatus] {
        try await api.call("GET", "/admin/services", token: admin.token).expect(200, as: API.ItemList<InstanceStatus>.self).items
    }

    @Test("kill -9 one of two product instances under traffic: no client sees an error, and it leaves discovery within its lease")
    func killOneReplica() async throws {
        let (stage, api, admin) = try await Self.start(["--replicas", "product=2"])
        defer { stage.requestStop() }
        #expect(try await instances(api, admin: admin).filter { $0.service == "product" }.count == 2)
        let product = try await api.createProduct(
            API.CreateProductRequest(sku: "HA-\(ID.make("x").dropFirst(2))", name: "Spare", priceCents: 300, initialStock: 100_000),
            adminToken: admin.token)
        let customer = try await api.newCustomer("steady")

        // Steady traffic: catalogue reads (gateway → product) and orders
        // (gateway → order → product, to price them).
        let failures = Counter()
        let served = Counter()
        let traffic = Task {
            await withTaskGroup(of: Void.self) { group in
                for lane in 0..<4 {
                    group.addTask {
                        while !Task.isCancelled {
                            do {
                                let response = lane < 2
                                    ? try await api.call("GET", "/products/\(product.id)")
                                    : try await api.placeOrder([(product.id, 1)], token: customer.token)
                                if response.status == 200 || response.status == 201 { await served.add() } else { await failures.add(response.text) }
                            } catch {
                                await failures.add("\(error)")
                            }
                        }
                    }
                }
            }
        }
        _ = try await Poll.until("traffic flows", within: .seconds(20)) { await served.count >= 100 ? true : nil }
        let victim = try #require(stage.child(serving: "product"))
        kill(victim, SIGKILL)
        let killedAt = ContinuousClock.now
        // The dead instance leaves the list when its lease expires (3 s here,
        // plus up to a second of the gateway's cache).
        _ = try await Poll.until("one product instance is left", within: .seconds(10), every: .milliseconds(100)) {
            try await instances(api, admin: admin).filter { $0.service == "product" }.count == 1 ? true : nil
        }
        let gone = ContinuousClock.now - killedAt
        let servedBefore = await served.count
        _ = try await Poll.until("traffic keeps flowing", within: .seconds(20)) { await served.count >= servedBefore + 100 ? true : nil }
        traffic.cancel()
        await traffic.value

        let failed = await failures.count
        let samples = await failures.samples
        #expect(failed == 0, "errors seen by clients: \(samples)")
        #expect(gone <= .seconds(3 + 2), "left discovery in \(gone)")
    }

    @Test("rate limiting trips at the configured budget, per client, with Retry-After and RateLimit headers, and recovers")
    func rateLimit() async throws {
        let (stage, api, _) = try await Self.start(environment: ["RATE_LIMIT_BURST": "20", "RATE_LIMIT_PER_SECOND": "2"])
        defer { stage.requestStop() }
        let first = try await Poll.until("a customer can sign up", within: .seconds(20)) { try? await api.newCustomer("limited") }
        var remaining: [Int] = []
        var refused: HTTPResponse?
        // The bucket refills at 2 tokens a second while the requests run, so
        // the bound depends on how long they took (on a busy two-core machine,
        // more than half a second): at most the burst plus what refilled.
        let started = ContinuousClock.now
        for _ in 0..<60 {
            let response = try await api.call("GET", "/orders", token: first.token)
            if response.status == 429 { refused = response; break }
            #expect(response.status == 200)
            #expect(response.header("RateLimit-Limit") == "20")
            remaining.append(Int(response.header("RateLimit-Remaining") ?? "") ?? -1)
        }
        let elapsed = ContinuousClock.now - started
        let refilled = Int((2 * (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)).rounded(.up))
        let denied = try #require(refused, "the budget of 20 tripped")
        #expect((15...(20 + refilled)).contains(remaining.count),
                "about the burst of 20 went through (sign-in took one; \(refilled) refilled in \(elapsed)): \(remaining.count)")
        #expect(remaining == remaining.sorted(by: >), "the remaining budget only goes down")
        #expect(denied.error?.code == "rate_limited")
        #expect(denied.header("RateLimit-Remaining") == "0")
        let wait = try #require(Int(denied.header("Retry-After") ?? ""))
        #expect(wait >= 1)

        // Another client has its own budget.
        let second = try await Poll.until("another customer signs up", within: .seconds(20)) { try? await api.newCustomer("other") }
        #expect(try await api.call("GET", "/orders", token: second.token).status == 200)
        // And the first recovers once the bucket refills.
        _ = try await Poll.until("the first client is served again", within: .seconds(Double(wait) + 5), every: .milliseconds(250)) {
            try await api.call("GET", "/orders", token: first.token).status == 200 ? true : nil
        }
    }

    @Test("the summary is composed from the user and order services, asked at once; it fails clearly without one of them")
    func summary() async throws {
        let (stage, api, admin) = try await Self.start()
        defer { stage.requestStop() }
        let customer = try await api.newCustomer("summary")
        let product = try await api.createProduct(
            API.CreateProductRequest(sku: "SUM-\(ID.make("x").dropFirst(2))", name: "Pen", priceCents: 150, initialStock: 10),
            adminToken: admin.token)
        let order = try await api.decidedOrder(try api.placeOrder([(product.id, 1)], token: customer.token).expect(201, as: API.Order.self).id, token: customer.token)
        let summary: API.UserSummary = try await api.call("GET", "/users/me/summary", token: customer.token).expect(200)
        #expect(summary.user == customer.user, "from the user service")
        #expect(summary.recentOrders.map(\.id) == [order.id], "from the order service")
        #expect(summary.notifications == 2, "welcome + confirmation, counted by the order service")

        // Without the order service the summary cannot be composed; the
        // user's own record still can.
        kill(try #require(stage.child(serving: "order")), SIGKILL)
        _ = try await Poll.until("the summary reports the order service", within: .seconds(10)) { () async throws -> Bool? in
            let response = try await api.call("GET", "/users/me/summary", token: customer.token)
            return response.status == 503 && response.error?.message.contains("order service") == true ? true : nil
        }
        #expect(try await api.call("GET", "/users/me", token: customer.token).status == 200)
    }

    @Test("a request sent straight to a service with a forged identity is refused")
    func forgedIdentity() async throws {
        let (stage, api, admin) = try await Self.start()
        defer { stage.requestStop() }
        let customer = try await api.newCustomer("direct")
        let services = try await instances(api, admin: admin)
        let order = try #require(services.first { $0.service == "order" })
        let direct = ShopAPI(baseURL: "http://" + order.address, http: api.http)

        // No token, a header that claims to be someone, a token signed with
        // another secret: all refused, even though the gateway was bypassed.
        let forged = customer.token.split(separator: ".").dropLast().joined(separator: ".") + ".c2lnbmVkLWJ5LXNvbWVvbmUtZWxzZQ"
        for headers in [[("X-User-Id", customer.user.id)], [("Authorization", "Bearer \(forged)")]] {
            let response = try await direct.call("GET", "/orders", headers: headers)
            #expect(response.status == 401 && response.error?.code == "unauthorized")
        }
        // The internal endpoints want an administrator, not any customer.
        let welcome = try await direct.call("POST", "/internal/welcome", token: customer.token, body: Array(#"{"user":{"id":"x","email":"a@b.co","name":"x","role":"customer"}}"#.utf8))
        #expect(welcome.status == 403)
        // The customer's real token works there too: services check tokens themselves.
        #expect(try await direct.call("GET", "/orders", token: customer.token).status == 200)
    }
}

actor Counter {
    private(set) var count = 0
    private(set) var samples: [String] = []
    func add(_ sample: String? = nil) {
        count += 1
        if let sample, samples.count < 5 { samples.append(String(sample.prefix(200))) }
    }
}
