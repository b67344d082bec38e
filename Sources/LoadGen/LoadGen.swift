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
/// customer asks GET /orders/{id} with `Prefer: wait=N`, which the stage
/// answers as soon as the order is decided (`--wait 0` polls instead, every
/// `--poll-ms`, as a client of a stage without the header would).
///
/// `--rate R` spreads R orders a second over the customers (each places
/// its next order at its next slot, or at once when it is late), to read
/// latency at a given load rather than at the most the stage can take.
/// `--cpu-of PID,...` reads those processes' CPU time from /proc when the
/// load starts and when it ends, so that the setup (sign-ups hash their
/// passwords with bcrypt on purpose) is reported apart from the orders.
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
    @Option(help: "Seconds a GET /orders/{id} may be held for the decision (Prefer: wait); 0 polls instead.") var wait = 10
    @Option(help: "Poll interval in milliseconds while an order is pending, when the stage does not hold the request.") var pollMs = 5
    @Option(help: "Orders per second across all customers (0: each customer as fast as it can).") var rate = 0.0
    @Option(help: "Process ids whose CPU time is measured over the load (comma-separated).") var cpuOf = ""

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
        let pids = cpuOf.split(separator: ",").compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
        let setupCPU = CPUTime.seconds(of: pids)
        let clock = ContinuousClock()
        let start = clock.now
        let measureFrom = start + .seconds(warmup)
        let end = measureFrom + .seconds(seconds)
        let results = try await withThrowingTaskGroup(of: CustomerResult.self) { group in
            for (index, session) in sessions.enumerated() {
                group.addTask {
                    try await customerLoop(api: api, session: session, catalogue: products, seed: UInt64(index + 1), pacing: pacing(index, start),
                                           clock: clock, measureFrom: measureFrom, end: end)
                }
            }
            return try await group.reduce(into: [CustomerResult]()) { $0.append($1) }
        }
        let loadCPU = CPUTime.seconds(of: pids) - setupCPU

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
        let waited = results.reduce(0) { $0 + $1.waitsHonoured }, polled = results.reduce(0) { $0 + $1.polls }
        print("decisions read: \(waited) waits honoured (Prefer: wait), \(polled) polls")
        if !pids.isEmpty {
            let all = results.reduce(0) { $0 + $1.allDecided }
            print(String(format: "server CPU during the load: %.1f s for %d orders, %.2f ms per order (setup, sign-ups included, before it: %.1f s)",
                         loadCPU, all, all > 0 ? 1000 * loadCPU / Double(all) : 0, setupCPU))
        }
    }

    /// Each customer's next order: as soon as the last is decided, or, at
    /// a rate, at its own slots, offset so that the customers take turns.
    func pacing(_ index: Int, _ start: ContinuousClock.Instant) -> Pacing {
        guard rate > 0 else { return Pacing(interval: nil, first: start, wait: wait, pollMs: pollMs) }
        let interval = Duration.seconds(Double(customers) / rate)
        return Pacing(interval: interval, first: start + interval * (Double(index) / Double(customers)), wait: wait, pollMs: pollMs)
    }
}

struct Pacing: Sendable {
    /// Between one customer's orders; nil: no pause.
    var interval: Duration?
    var first: ContinuousClock.Instant
    var wait: Int
    var pollMs: Int
}

/// User plus system CPU time of processes, from /proc/PID/stat (fields 14
/// and 15, in clock ticks). A process that is gone counts as zero.
enum CPUTime {
    static func seconds(of pids: [Int32]) -> Double {
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        var ticks = 0.0
        for pid in pids {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            // After the command name (which may hold spaces), field 3 on.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) { ticks += user + system }
        }
        return ticks / ticksPerSecond
    }
}

struct CustomerResult: Sendable {
    var latenciesMs: [Double] = []
    /// Every order decided, warm-up included (for CPU-per-order figures).
    var allDecided = 0
    var outcomes: [String: Int] = [:]
    var errors = 0
    var waitsHonoured = 0
    var polls = 0
}

func customerLoop(
    api: ShopAPI, session: Session, catalogue: [API.Product], seed: UInt64, pacing: Pacing,
    clock: ContinuousClock, measureFrom: ContinuousClock.Instant, end: ContinuousClock.Instant
) async throws -> CustomerResult {
    var result = CustomerResult()
    var rng = SeededRandom(seed: seed)
    var slot = pacing.first
    while clock.now < end {
        if let interval = pacing.interval {
            // Late (the last order took longer than a slot): go at once,
            // and the slots after it stay where they were.
            if slot > clock.now { try await Task.sleep(until: slot, clock: clock) }
            slot = max(slot + interval, clock.now - interval)
            if clock.now >= end { break }
        }
        let product = catalogue[Int(rng.next() % UInt64(catalogue.count))]
        let sent = clock.now
        do {
            var order: API.Order = try await api.placeOrder([(product.id, 1)], token: session.token).expect(201)
            var honoured = pacing.wait > 0
            while !order.status.isDecided {
                if honoured {
                    let answer = try await api.order(order.id, token: session.token, wait: pacing.wait)
                    order = answer.order
                    honoured = answer.applied
                    if honoured { result.waitsHonoured += 1 }
                } else {
                    try await Task.sleep(for: .milliseconds(pacing.pollMs))
                    order = try await api.order(order.id, token: session.token)
                    result.polls += 1
                }
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
