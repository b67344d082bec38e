import ArgumentParser
import Common
import Foundation
import ShopClient

/// A benchmark, not a test: N customers place orders against a running
/// stage for a fixed time, each waiting for its order to be decided before
/// placing the next. It prints what it measured; it asserts nothing.
///
///     swift run -c release stage-1 &                       # the system under load
///     swift run -c release loadgen --customers 50 --seconds 20
///
/// Decision latency is the time from sending POST /orders to seeing the
/// order decided (confirmed or cancelled): at stage 1 the POST answers
/// with the decision; from stage 4 the order comes back pending and the
/// customer polls GET /orders/{id}, as the contract says clients do.
@main
struct LoadGen: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "loadgen", abstract: "Concurrent customers placing orders against a running stage.")

    @Option(help: "Base URL of the stage's entry point.") var url = "http://127.0.0.1:8080"
    @Option(help: "Concurrent customers (each has one connection).") var customers = 50
    @Option(help: "Seconds of measured load.") var seconds = 20
    @Option(help: "Seconds of load before measuring starts.") var warmup = 3
    @Option(help: "Products to spread orders over (fewer means more contention on the same stock rows).") var products = 20
    @Option(help: "Administrator email.") var adminEmail = ProcessInfo.processInfo.environment["ADMIN_EMAIL"] ?? "admin@shop.local"
    @Option(help: "Administrator password.") var adminPassword = ProcessInfo.processInfo.environment["ADMIN_PASSWORD"] ?? "admin-password"
    @Option(help: "Poll interval in milliseconds while an order is pending.") var pollMs = 5

    func run() async throws {
        let http = HTTPClient(timeout: .seconds(30))
        let api = ShopAPI(baseURL: url, http: http)
        let health = try await api.call("GET", "/health")
        guard health.status == 200, let stage = try? health.decode(API.Health.self).stage else {
            throw ValidationError("\(url)/health did not answer 200: is the stage running?")
        }
        print("loadgen: stage \(stage) at \(url); \(customers) customers, \(warmup) s warm-up, \(seconds) s measured")

        // Setup: products with stock that will not run out, and the customers.
        let admin = try await api.login(email: adminEmail, password: adminPassword)
        var catalogue: [API.Product] = []
        for i in 0..<products {
            catalogue.append(try await api.createProduct(
                API.CreateProductRequest(sku: "LOAD-\(ID.make("r").dropFirst(2))-\(i)", name: "Load item \(i)", priceCents: 100 + i, initialStock: 100_000_000),
                adminToken: admin.token))
        }
        let sessions = try await withThrowingTaskGroup(of: Session.self) { group in
            for i in 0..<customers { group.addTask { try await api.newCustomer("load\(i)") } }
            return try await group.reduce(into: [Session]()) { $0.append($1) }
        }

        let products = catalogue
        let clock = ContinuousClock()
        let start = clock.now
        let measureFrom = start + .seconds(warmup)
        let end = measureFrom + .seconds(seconds)
        let results = try await withThrowingTaskGroup(of: CustomerResult.self) { group in
            for (index, session) in sessions.enumerated() {
                group.addTask {
                    try await customerLoop(api: api, session: session, catalogue: products, seed: UInt64(index + 1), pollMs: pollMs,
                                           clock: clock, measureFrom: measureFrom, end: end)
                }
            }
            return try await group.reduce(into: [CustomerResult]()) { $0.append($1) }
        }

        var latencies = results.flatMap(\.latenciesMs).sorted()
        let errors = results.reduce(0) { $0 + $1.errors }
        let outcomes = results.reduce(into: [String: Int]()) { total, r in total.merge(r.outcomes) { $0 + $1 } }
        if latencies.isEmpty { latencies = [0] }
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        let decided = results.reduce(0) { $0 + $1.latenciesMs.count }
        print(String(format: "orders decided: %d in %d s = %.0f orders/s", decided, seconds, Double(decided) / Double(seconds)))
        print(String(format: "decision latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f", percentile(0.5), percentile(0.9), percentile(0.99), latencies.last!))
        print("all orders decided, warm-up included: \(results.reduce(0) { $0 + $1.allDecided })")
        print("outcomes: \(outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))  errors: \(errors)")
    }
}

struct CustomerResult: Sendable {
    var latenciesMs: [Double] = []
    /// Every order decided, warm-up included (for CPU-per-order figures).
    var allDecided = 0
    var outcomes: [String: Int] = [:]
    var errors = 0
}

func customerLoop(
    api: ShopAPI, session: Session, catalogue: [API.Product], seed: UInt64, pollMs: Int,
    clock: ContinuousClock, measureFrom: ContinuousClock.Instant, end: ContinuousClock.Instant
) async throws -> CustomerResult {
    var result = CustomerResult()
    var rng = SeededRandom(seed: seed)
    while clock.now < end {
        let product = catalogue[Int(rng.next() % UInt64(catalogue.count))]
        let sent = clock.now
        do {
            var order: API.Order = try await api.placeOrder([(product.id, 1)], token: session.token).expect(201)
            while !order.status.isDecided {
                try await Task.sleep(for: .milliseconds(pollMs))
                order = try await api.order(order.id, token: session.token)
            }
            let decidedAt = clock.now
            result.allDecided += 1
            if sent >= measureFrom && decidedAt <= end {
                let elapsed = decidedAt - sent
                result.latenciesMs.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
                result.outcomes["\(order.status.rawValue)", default: 0] += 1
            }
        } catch {
            if sent >= measureFrom { result.errors += 1 }
        }
    }
    return result
}

struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return state
    }
}
