import Common
import Foundation
import GRDB
import ShopClient
import Storage
import TestSupport
import Testing

/// One stage-4 deployment of a test's own: its processes, its namespace in
/// RabbitMQ and etcd, and the ways in that the tests need.
struct Deployment {
    let stage: StageProcess
    let api: ShopAPI
    let admin: Session
    let namespace: String
    let environment: [String: String]

    static func start(_ environment: [String: String] = [:]) async throws -> Deployment {
        let namespace = "s4t-\(ID.make("n").dropFirst(2).prefix(10))"
        let port = try FreePort.find()
        var env = ["SHOP_NAMESPACE": namespace, "DISCOVERY_NAMESPACE": namespace, "DISCOVERY_TTL": "3"]
        // Restarted services must sign and check tokens with the same secret
        // as the gateway the launcher configured for this port.
        env["JWT_SECRET"] = "characterization-suite-secret-\(port)"
        env.merge(environment) { $1 }
        let stage = try StageProcess.launch(stage: 4, port: port, extraEnvironment: env)
        let api = ShopAPI(baseURL: stage.baseURL, http: HTTPClient(timeout: .seconds(10)))
        try await stage.waitUntilHealthy(api)
        let login = try await api.login(email: Launcher.adminEmail, password: Launcher.adminPassword)
        return Deployment(
            stage: stage, api: api, admin: Session(user: login.user, token: login.token, password: Launcher.adminPassword),
            namespace: namespace, environment: env)
    }

    var exchange: String { "\(namespace).shop" }
    var amqpURL: String { ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/" }

    /// Starts one service again on its own data, as an operator would after a crash.
    func restart(_ service: String) async throws -> StageProcess {
        let process = try StageProcess.launch(
            stage: 4, serve: service, dataDir: stage.dataDir.appendingPathComponent(service),
            logName: "restart-\(ID.make("r").dropFirst(2).prefix(6)).log", extraEnvironment: environment)
        let health = ShopAPI(baseURL: process.baseURL, http: HTTPClient(timeout: .seconds(5)))
        try await process.waitUntilHealthy(health)
        return process
    }

    func deadLetters() async throws -> [DeadLetter] {
        try await api.call("GET", "/admin/dead-letters", token: admin.token).expect(200, as: API.ItemList<DeadLetter>.self).items
    }

    /// The payment service's own rows: what was really charged and refunded.
    func moneyMovements() throws -> [(orderId: String, kind: String, outcome: String, amountCents: Int)] {
        var configuration = Configuration()
        configuration.readonly = true
        let db = try DatabaseQueue(path: stage.dataDir.appendingPathComponent("payment/payments.sqlite").path, configuration: configuration)
        return try db.read { db in
            try Row.fetchAll(db, sql: "SELECT orderId, kind, outcome, amountCents FROM payments").map {
                ($0["orderId"], $0["kind"], $0["outcome"], $0["amountCents"])
            }
        }
    }

    /// Stops the stage and deletes its exchanges and queues, so that test runs
    /// do not pile up queues on a developer's broker.
    func finish() async throws {
        await stage.stop()
        _ = try await pika("""
            import json, sys, pika
            url, exchange = sys.argv[1:3]
            ns = exchange[:-len(".shop")]
            ch = pika.BlockingConnection(pika.URLParameters(url)).channel()
            for q in ["payment", "inventory", "order", "invoice", "notification"]:
                for name in [q] + [q + ".retry." + str(n) for n in range(1, 6)]:
                    ch.queue_delete(ns + "." + name)
            ch.queue_delete(ns + ".dead-letters")
            ch.exchange_delete(ns + ".dead-letters")
            ch.exchange_delete(exchange)
            print(json.dumps({"ok": True}))
            """)
    }

    /// Runs a pika script against this deployment: it gets the broker URL and
    /// the exchange as argv[1] and argv[2], then `arguments`.
    func pika(_ script: String, _ arguments: [String] = []) async throws -> [String: Any] {
        try await PythonPeer.runJSON(script, arguments: [amqpURL, exchange] + arguments)
    }
}

struct DeadLetter: Codable, Sendable {
    var id: String
    var queue: String
    var messageId: String?
    var messageType: String?
    var reason: String
    var attempts: Int
    var deadLetteredAt: Date
    var payload: Payload

    /// Enough of a payload to find the order it is about.
    struct Payload: Codable, Sendable {
        var orderId: String?
        init(from decoder: any Decoder) throws {
            orderId = try? decoder.container(keyedBy: Key.self).decode(String.self, forKey: .orderId)
        }
        func encode(to encoder: any Encoder) throws {}
        enum Key: CodingKey { case orderId }
    }
}

actor Ledger {
    /// Accepted orders and who placed them.
    private(set) var orders: [(id: String, token: String)] = []
    private(set) var failures: [String] = []
    func accepted(_ id: String, token: String) { orders.append((id, token)) }
    func failed(_ why: String) { if failures.count < 20 { failures.append(String(why.prefix(200))) } }
    var count: Int { orders.count }
}

/// Customers placing orders without pause, with a mix of cards: approved,
/// declined, the one that fails twice, on a product with plenty of stock and
/// one that runs out. Only answers of 201 count as orders.
struct Traffic {
    let deployment: Deployment
    let customers: [Session]
    let plenty: API.Product
    let scarce: API.Product
    let ledger = Ledger()

    static let plentyStock = 100_000

    /// Two products (one with `scarceStock` units) and three customers.
    static func prepare(_ deployment: Deployment, scarceStock: Int, label: String) async throws -> Traffic {
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

    static let cards = [
        SimulatedCardProcessor.approvedCard, SimulatedCardProcessor.approvedCard,
        SimulatedCardProcessor.declinedCard, SimulatedCardProcessor.flakyCard,
    ]

    func run(lanes: Int = 3) -> Task<Void, Never> {
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

    func waitFor(_ more: Int, within deadline: Duration = .seconds(60)) async throws {
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
func verifyEverythingAppliedOnce(
    _ deployment: Deployment, orders ledger: [(id: String, token: String)], products: [(API.Product, initial: Int)],
    customers: [Session], within deadline: Duration = .seconds(90)
) async throws {
    let api = deployment.api
    // Every order the deployment has, not only those the clients saw
    // accepted: an order whose 201 was lost (the order service killed after
    // its commit) exists all the same, and must be decided like the others.
    let orders: [API.Order] = try await Poll.until("all orders are decided", within: deadline) {
        var all: [API.Order] = []
        var after: String?
        repeat {
            let page: API.OrderList = try await api.call(
                "GET", "/orders?all=true&limit=1000" + (after.map { "&startingAfter=\($0)" } ?? ""), token: deployment.admin.token).expect(200)
            all += page.items
            after = page.hasMore ? page.items.last?.id : nil
        } while after != nil
        return all.allSatisfy(\.status.isDecided) ? all : nil
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
        #expect(charges[order.id]?.count == 1, "one charge row for \(order.id)")
        let captured = charges[order.id]?.first?.outcome == "captured"
        #expect((refunds[order.id]?.count ?? 0) == (captured && !order.status.countsAsSale ? 1 : 0), "refunds of \(order.id)")
    }
    for customer in customers {
        let mine = orders.filter { $0.userId == customer.user.id }
        let expected = Set(mine.map { "\($0.status == .cancelled ? "order_cancelled" : "order_confirmed"):\($0.id)" })
        let seen = try await Poll.until("every notification of \(customer.user.email) exists", within: .seconds(20)) { () async throws -> [String]? in
            let items = try await api.call("GET", "/notifications", token: customer.token).expect(200, as: API.ItemList<API.Notification>.self).items
            let keys = items.compactMap { item in item.orderId.map { "\(item.kind.rawValue):\($0)" } }
            return Set(keys).isSuperset(of: expected) ? keys : nil
        }
        #expect(seen.count == Set(seen).count, "no notification twice")
        #expect(Set(seen) == expected, "nothing but one notification per decided order")
    }
}
