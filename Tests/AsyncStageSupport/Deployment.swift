import Common
import Foundation
import GRDB
import ShopClient
import Storage
import TestSupport
import Testing

/// One deployment of an asynchronous stage (4 on) of a test's own: its
/// processes, its namespace in RabbitMQ, etcd and Redis, and the ways in
/// that the tests need. The tests of stages 4 to 7 share it (from stage 7
/// its topics on the Kafka broker too).
public struct Deployment: Sendable {
    public let number: Int
    public let api: ShopAPI
    public let admin: Session
    public let namespace: String
    public let environment: [String: String]
    /// The stage's supervisor, when this test started the deployment.
    private let process: StageProcess?
    /// The payment service's data folder (its rows are the charges' truth).
    let paymentData: URL

    /// The stage this test started (not one attached by address).
    public var stage: StageProcess {
        guard let process else { preconditionFailure("a deployment attached by its address has no process of this test's") }
        return process
    }

    init(number: Int, process: StageProcess?, api: ShopAPI, admin: Session, namespace: String, environment: [String: String], paymentData: URL) {
        self.number = number; self.process = process; self.api = api; self.admin = admin
        self.namespace = namespace; self.environment = environment; self.paymentData = paymentData
    }

    /// A deployment something else started (scripts/multihost's hosts),
    /// reached through its gateway's address.
    public static func attach(stage number: Int, baseURL: String, namespace: String, paymentData: URL) async throws -> Deployment {
        let api = ShopAPI(baseURL: baseURL, http: HTTPClient(timeout: .seconds(10)))
        let login = try await api.login(email: Launcher.adminEmail, password: Launcher.adminPassword)
        return Deployment(
            number: number, process: nil, api: api, admin: Session(user: login.user, token: login.token, password: Launcher.adminPassword),
            namespace: namespace, environment: [:], paymentData: paymentData)
    }

    public static func start(stage number: Int, _ environment: [String: String] = [:]) async throws -> Deployment {
        // From the id's random half: its first half is the time in
        // milliseconds, which two suites starting a deployment at once share
        // (that once gave two deployments one namespace, each taking the
        // other's messages and tokens).
        let namespace = "s\(number)t-\(ID.make("n").suffix(10))"
        let port = try FreePort.find()
        var env = ["SHOP_NAMESPACE": namespace, "DISCOVERY_NAMESPACE": namespace, "DISCOVERY_TTL": "3"]
        // Restarted services must sign and check tokens with the same secret
        // as the gateway the launcher configured for this port.
        env["JWT_SECRET"] = "characterization-suite-secret-\(port)"
        env.merge(environment) { $1 }
        let stage = try StageProcess.launch(stage: number, port: port, extraEnvironment: env)
        let api = ShopAPI(baseURL: stage.baseURL, http: HTTPClient(timeout: .seconds(10)))
        try await stage.waitUntilHealthy(api)
        let login = try await api.login(email: Launcher.adminEmail, password: Launcher.adminPassword)
        return Deployment(
            number: number, process: stage, api: api, admin: Session(user: login.user, token: login.token, password: Launcher.adminPassword),
            namespace: namespace, environment: env, paymentData: stage.dataDir.appendingPathComponent("payment"))
    }

    public var exchange: String { "\(namespace).shop" }
    public var amqpURL: String { ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/" }
    public var redisURL: String { ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6379" }
    public var kafkaBootstrap: String { ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"] ?? "127.0.0.1:9092" }

    /// Starts one service again on its own data, as an operator would after a crash.
    public func restart(_ service: String) async throws -> StageProcess {
        let process = try StageProcess.launch(
            stage: number, serve: service, dataDir: stage.dataDir.appendingPathComponent(service),
            logName: "restart-\(ID.make("r").suffix(8)).log", extraEnvironment: environment)
        let health = ShopAPI(baseURL: process.baseURL, http: HTTPClient(timeout: .seconds(5)))
        try await process.waitUntilHealthy(health)
        return process
    }

    /// Every order of the deployment, as the administrator lists them, page by page.
    public func allOrders() async throws -> [API.Order] {
        var all: [API.Order] = []
        var after: String?
        repeat {
            let page: API.OrderList = try await api.call(
                "GET", "/orders?all=true&limit=1000" + (after.map { "&startingAfter=\($0)" } ?? ""), token: admin.token).expect(200)
            all += page.items
            after = page.hasMore ? page.items.last?.id : nil
        } while after != nil
        return all
    }

    public func deadLetters() async throws -> [DeadLetter] {
        try await api.call("GET", "/admin/dead-letters", token: admin.token).expect(200, as: API.ItemList<DeadLetter>.self).items
    }

    /// The payment service's own rows: what was really charged and refunded.
    public func moneyMovements() throws -> [(orderId: String, kind: String, outcome: String, amountCents: Int)] {
        var configuration = Configuration()
        configuration.readonly = true
        let db = try DatabaseQueue(path: paymentData.appendingPathComponent("payments.sqlite").path, configuration: configuration)
        return try db.read { db in
            try Row.fetchAll(db, sql: "SELECT orderId, kind, outcome, amountCents FROM payments").map {
                ($0["orderId"], $0["kind"], $0["outcome"], $0["amountCents"])
            }
        }
    }

    /// Stops the stage and deletes its exchanges and queues (and from stage
    /// 5 its jobs), so that test runs do not pile up on a developer's brokers.
    public func finish() async throws {
        await process?.stop()
        _ = try await pika("""
            import json, sys, pika
            url, exchange = sys.argv[1:3]
            ns = exchange[:-len(".shop")]
            ch = pika.BlockingConnection(pika.URLParameters(url)).channel()
            for q in ["payment", "inventory", "order", "invoice", "notification", "flow"]:  # invoice: stage 4 only; flow: 6 on
                for name in [q] + [q + ".retry." + str(n) for n in range(1, 6)]:
                    ch.queue_delete(ns + "." + name)
            ch.queue_delete(ns + ".dead-letters")
            ch.exchange_delete(ns + ".dead-letters")
            ch.exchange_delete(exchange)
            for producer in ["user", "order", "inventory", "payment"]:  # stage 6 on: an exchange per producer
                ch.exchange_delete(ns + ".events." + producer)
            print(json.dumps({"ok": True}))
            """)
        if number >= 7 {
            // The deployment's topics (its groups' offsets go with them).
            _ = try await PythonPeer.runJSON("""
                import json, sys
                from confluent_kafka.admin import AdminClient
                admin = AdminClient({"bootstrap.servers": sys.argv[1]})
                ns = sys.argv[2]
                names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(ns + ".")]
                for name, future in (admin.delete_topics(names, operation_timeout=10).items() if names else []):
                    future.result()
                print(json.dumps({"deleted": names}))
                """, arguments: [kafkaBootstrap, namespace])
        }
        if number >= 5 {
            // The deployment's jobs (bull:<ns>:…), deadlines still waiting among them.
            _ = try await PythonPeer.runJSON("""
                import json, sys, redis
                r = redis.Redis.from_url(sys.argv[1])
                keys = list(r.scan_iter(match="bull:" + sys.argv[2] + ":*", count=1000))
                for i in range(0, len(keys), 500):
                    r.delete(*keys[i:i + 500])
                print(json.dumps({"deleted": len(keys)}))
                """, arguments: [redisURL, namespace])
        }
    }

    /// Runs a pika script against this deployment: it gets the broker URL and
    /// the exchange as argv[1] and argv[2], then `arguments`.
    public func pika(_ script: String, _ arguments: [String] = []) async throws -> [String: Any] {
        try await PythonPeer.runJSON(script, arguments: [amqpURL, exchange] + arguments)
    }
}

public struct DeadLetter: Codable, Sendable {
    public var id: String
    public var queue: String
    public var messageId: String?
    public var messageType: String?
    public var reason: String
    public var attempts: Int
    public var deadLetteredAt: Date
    public var payload: Payload

    /// Enough of a payload to find the order it is about: at the top of a
    /// message (stages 4 and 5), or in the `data` of an event (stage 6 on).
    public struct Payload: Codable, Sendable {
        public var orderId: String?
        public init(from decoder: any Decoder) throws {
            let body = try? decoder.container(keyedBy: Key.self)
            orderId = (try? body?.decode(String.self, forKey: .orderId))
                ?? (try? body?.nestedContainer(keyedBy: Key.self, forKey: .data).decode(String.self, forKey: .orderId))
        }
        public func encode(to encoder: any Encoder) throws {}
        enum Key: CodingKey { case orderId, data }
    }
}

public actor Ledger {
    /// Accepted orders and who placed them.
    public private(set) var orders: [(id: String, token: String)] = []
    public private(set) var failures: [String] = []
    public func accepted(_ id: String, token: String) { orders.append((id, token)) }
    public func failed(_ why: String) { if failures.count < 20 { failures.append(String(why.prefix(200))) } }
    public var count: Int { orders.count }
}

/// Customers placing orders without pause, with a mix of cards: approved,
/// declined, the one that fails twice, on a product with plenty of stock and
/// one that runs out. Only answers of 201 count as orders.
public struct Traffic: Sendable {
    public let deployment: Deployment
    public let customers: [Session]
    public let plenty: API.Product
    public let scarce: API.Product
    public let ledger = Ledger()

    public static let plentyStock = 100_000

    /// Two products (one with `scarceStock` units) and three customers.
    public static func prepare(_ deployment: Deployment, scarceStock: Int, label: String) async throws -> Traffic {
        let api = deployment.api
        func product(_ name: String, _ price: Int, _ stock: Int) async throws -> API.Product {
            try await api.createProduct(
                .init(sku: "\(label.uppercased())-\(ID.make("x").dropFirst(2))", name: name, priceCents: price, initialStock: stock),
                adminToken: deployment.admin.token)
        }
        let plenty = try await product("Plenty", 500, plentyStock)
        let scarce = try await product("Scarce", 900, scarceStock)
        var customers: [Session] = []
        for i in 0..<3 { customers.append(try await api.newCustomer("\(label)\(i)")) }
        return Traffic(deployment: deployment, customers: customers, plenty: plenty, scarce: scarce)
    }

    public static let cards = [
        SimulatedCardProcessor.approvedCard, SimulatedCardProcessor.approvedCard,
        SimulatedCardProcessor.declinedCard, SimulatedCardProcessor.flakyCard,
    ]

    public func run(lanes: Int = 3) -> Task<Void, Never> {
        Task {
            await withTaskGroup(of: Void.self) { group in
                for lane in 0..<lanes {
                    group.addTask {
                        var n = lane
                        while !Task.isCancelled {
                            n += lanes
                            let customer = customers[n % customers.count]
                            let product = n % 5 == 0 ? scarce : plenty
                            do {
                                let response = try await deployment.api.placeOrder([(product.id, 1)], card: Self.cards[n % Self.cards.count], token: customer.token)
                                if response.status == 201, let order = try? response.decode(API.Order.self) {
                                    await ledger.accepted(order.id, token: customer.token)
                                } else {
                                    await ledger.failed("\(response.status) \(response.text)")
                                    try? await Task.sleep(for: .milliseconds(50))
                                }
                            } catch {
                                await ledger.failed("\(error)")
                                try? await Task.sleep(for: .milliseconds(50))
                            }
                        }
                    }
                }
            }
        }
    }

    public func waitFor(_ more: Int, within deadline: Duration = .seconds(60)) async throws {
        let target = await ledger.count + more
        _ = try await Poll.until("\(more) more orders are accepted", within: deadline) { await ledger.count >= target ? true : nil }
    }
}

/// The contract's at-rest rules and the exactly-once rules, checked on
/// every order of the deployment once all are decided:
/// - every order decided; stock: available = initial - units sold, reserved 0;
/// - money: net charge = total for sales, 0 otherwise, in the API and in the
///   payment service's own rows (one charge per order, at most one refund);
/// - emails: one confirmation per confirmed order, one cancellation per
///   cancelled order, nothing else about orders.
public func verifyEverythingAppliedOnce(
    _ deployment: Deployment, orders ledger: [(id: String, token: String)], products: [(API.Product, initial: Int)],
    customers: [Session], within deadline: Duration = .seconds(90)
) async throws {
    let api = deployment.api
    // Every order the deployment has, not only those the clients saw
    // accepted: an order whose 201 was lost (the order service killed after
    // its commit) exists all the same, and must be decided like the others.
    //
    // The decisions drain a backlog at the pipeline's pace, so a fixed
    // deadline measures the backlog's length, not a fault: stage 7's Kafka
    // restart test once took 7,923 orders while the broker was away, and
    // 120 s after the traffic stopped 117 were still pending while the
    // pipeline went on deciding about 65 a second. So the wait lasts while
    // orders are still being decided, and fails when none has been decided
    // for 30 s while some are pending (a stuck saga, a lost message), or
    // after four times `deadline` in all. It prints how long the drain took.
    let clock = ContinuousClock()
    let start = clock.now
    var lastProgress = start
    var mostDecided = -1
    func seconds(_ d: Duration) -> String { String(format: "%.1f s", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18) }
    var orders: [API.Order] = []
    var lastError: String?
    while true {
        do {
            orders = try await deployment.allOrders()
        } catch {
            // A gateway or order service restarted a moment ago: not yet.
            lastError = "\(error)"
            if clock.now - lastProgress > .seconds(30) || clock.now - start > deadline * 4 {
                throw LaunchError("the orders cannot be read: \(error)")
            }
            try await Task.sleep(for: .milliseconds(250))
            continue
        }
        let decided = orders.filter(\.status.isDecided).count
        if decided == orders.count {
            print("all \(orders.count) orders were decided \(seconds(clock.now - start)) after the check began")
            break
        }
        if decided > mostDecided { mostDecided = decided; lastProgress = clock.now }
        if clock.now - lastProgress > .seconds(30) || clock.now - start > deadline * 4 {
            throw LaunchError("\(orders.count - decided) of \(orders.count) orders are still pending: none decided for \(seconds(clock.now - lastProgress)), \(seconds(clock.now - start)) after the check began" + (lastError.map { " (last error reading them: \($0))" } ?? ""))
        }
        try await Task.sleep(for: .milliseconds(250))
    }
    let known = Set(orders.map(\.id))
    #expect(ledger.allSatisfy { known.contains($0.id) }, "every accepted order exists")
    for (product, initial) in products {
        let sold = orders.filter { $0.status.countsAsSale }.flatMap(\.items).filter { $0.productId == product.id }.reduce(0) { $0 + $1.quantity }
        let stock = try await Poll.until("stock of \(product.sku) is at rest", within: .seconds(20)) {
            let stock = try await api.inventory(product.id)
            return stock.reserved == 0 ? stock : nil
        }
        #expect(stock.available == initial - sold, "\(product.sku): \(initial) - \(sold) sold")
    }
    let movements = try deployment.moneyMovements()
    let charges = Dictionary(grouping: movements.filter { $0.kind == "charge" }, by: \.orderId)
    let refunds = Dictionary(grouping: movements.filter { $0.kind == "refund" }, by: \.orderId)
    for order in orders {
        let net = order.payment.chargedCents - order.payment.refundedCents
        #expect(net == (order.status.countsAsSale ? order.totalCents : 0), "net charge of \(order.id) (\(order.status), \(order.cancelReason.map(\.rawValue) ?? "-"))")
        // From stage 6 payment charges only once inventory has reserved:
        // an order out of stock is never charged at all.
        let neverCharged = deployment.number >= 6 && order.cancelReason == .outOfStock
        #expect((charges[order.id]?.count ?? 0) == (neverCharged ? 0 : 1), "charge rows for \(order.id) (\(order.cancelReason.map(\.rawValue) ?? "-"))")
        let captured = charges[order.id]?.first?.outcome == "captured"
        #expect((refunds[order.id]?.count ?? 0) == (captured && !order.status.countsAsSale ? 1 : 0), "refunds of \(order.id)")
    }
    // The emails go out at the provider's pace (stage 5 on, `EMAIL_RATE_LIMIT`,
    // 50 a second), so after a burst, or after the notification service was
    // down, they trail the decisions by as long as their backlog takes to
    // drain. In stage 7's kill test orders are decided at 40-70 a second;
    // the last email went out up to 22 s after the last decision (one CI
    // run failed a fixed 20 s wait). A fixed deadline after
    // the last decision measures the backlog, not a fault; so the wait
    // lasts while emails are still being sent, and fails when none has
    // been sent for 20 s while some are missing (a stuck consumer or
    // worker), or after `deadline` in all.
    var expected: [String: Set<String>] = [:]
    for customer in customers {
        let mine = orders.filter { $0.userId == customer.user.id }
        expected[customer.user.id] = Set(mine.map { "\($0.status == .cancelled ? "order_cancelled" : "order_confirmed"):\($0.id)" })
    }
    let notificationsStart = clock.now
    lastProgress = notificationsStart
    var mostSent = -1
    var seen: [String: [String]] = [:]
    while true {
        var missing = 0
        var sent = 0
        var unavailable = false
        for customer in customers {
            let response = try await api.call("GET", "/notifications", token: customer.token)
            // A notification service killed and started again a moment ago
            // can be missing from the gateway's directory for up to its
            // refresh: the gateway answers the contract's 503, which says
            // to retry, and so does this check (within the same deadline).
            if response.status == 503 { unavailable = true; break }
            let items = try response.expect(200, as: API.ItemList<API.Notification>.self).items
            let keys = items.compactMap { item in item.orderId.map { "\(item.kind.rawValue):\($0)" } }
            seen[customer.user.id] = keys
            sent += keys.count
            missing += expected[customer.user.id, default: []].subtracting(keys).count
        }
        if unavailable {
            if clock.now - notificationsStart > deadline {
                throw LaunchError("the notification service still answers 503 \(seconds(clock.now - notificationsStart)) after the decisions")
            }
            try await Task.sleep(for: .milliseconds(250))
            continue
        }
        if missing == 0 {
            print("every notification was sent \(seconds(clock.now - notificationsStart)) after the last order was seen decided (\(sent) about orders)")
            break
        }
        if sent > mostSent { mostSent = sent; lastProgress = clock.now }
        if clock.now - lastProgress > .seconds(20) || clock.now - notificationsStart > deadline {
            throw LaunchError("\(missing) notifications about decided orders are missing: \(sent) sent, none new for \(seconds(clock.now - lastProgress)), \(seconds(clock.now - notificationsStart)) after the decisions")
        }
        try await Task.sleep(for: .milliseconds(250))
    }
    for customer in customers {
        let keys = seen[customer.user.id] ?? []
        #expect(keys.count == Set(keys).count, "no notification twice for \(customer.user.email)")
        #expect(Set(keys) == expected[customer.user.id], "nothing but one notification per decided order for \(customer.user.email)")
    }
}

extension Traffic {
    /// Kills each service named, in turn, with SIGKILL while the traffic
    /// runs, and starts it again by hand on its own data, as an operator
    /// would. A name that comes twice kills the copy started after the
    /// first kill. Orders keep coming while a service is dead, except while
    /// the order service is (then placing fails, and nothing is stored).
    /// Answers the processes started by hand, still running.
    public func killInTurn(_ victims: [String], before: Int, after: Int) async throws -> [StageProcess] {
        var restarted: [StageProcess] = []
        var current: [String: StageProcess] = [:]
        for victim in victims {
            try await waitFor(before)
            guard let pid = current[victim]?.pid ?? deployment.stage.child(serving: victim) else {
                throw LaunchError("the \(victim) service is not running")
            }
            kill(pid, SIGKILL)
            if victim != "order" { try await waitFor(after) } else { try await Task.sleep(for: .milliseconds(500)) }
            let process = try await deployment.restart(victim)
            restarted.append(process)
            current[victim] = process
        }
        return restarted
    }
}
