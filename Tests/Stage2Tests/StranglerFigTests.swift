import Common
import Foundation
import GRDB
import ShopClient
import Storage
import TestSupport
import Testing

/// Stage 2 runs three processes. These tests start them one by one, as
/// independent deployments, and stop one of them.
@Suite("Stage 2: services of their own", .serialized)
struct StranglerFigTests {
    /// The three processes of stage 2, each started on its own.
    struct Deployment {
        let user: StageProcess
        let product: StageProcess
        let monolith: StageProcess
        let api: ShopAPI
        let root: URL

        static func start() async throws -> Deployment {
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("shop-stage-2-split-\(ID.make("r").dropFirst(2))")
            let env = ["JWT_SECRET": "stage-2-acceptance-secret"]
            let user = try StageProcess.launch(stage: 2, serve: "user", dataDir: root.appendingPathComponent("user"), extraEnvironment: env)
            let product = try StageProcess.launch(stage: 2, serve: "product", dataDir: root.appendingPathComponent("product"), extraEnvironment: env)
            let http = HTTPClient(timeout: .seconds(10))
            try await user.waitUntilHealthy(ShopAPI(baseURL: user.baseURL, http: http))
            try await product.waitUntilHealthy(ShopAPI(baseURL: product.baseURL, http: http))
            let monolith = try StageProcess.launch(
                stage: 2, serve: "monolith", dataDir: root.appendingPathComponent("monolith"),
                extraArguments: ["--user-url", user.baseURL, "--product-url", product.baseURL], extraEnvironment: env)
            let api = ShopAPI(baseURL: monolith.baseURL, http: http)
            try await monolith.waitUntilHealthy(api)
            return Deployment(user: user, product: product, monolith: monolith, api: api, root: root)
        }

        func requestStop() { monolith.requestStop(); product.requestStop(); user.requestStop() }
    }

    func tables(in file: URL) throws -> Set<String> {
        let queue = try DatabaseQueue(path: file.path)
        return try queue.read { db in
            Set(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'"))
        }
    }

    @Test("each service owns its database file, and no process opens another's")
    func separateDatabases() async throws {
        let stage = try await Deployment.start()
        defer { stage.requestStop() }
        let userDB = stage.root.appendingPathComponent("user/users.sqlite")
        let productDB = stage.root.appendingPathComponent("product/products.sqlite")
        let shopDB = stage.root.appendingPathComponent("monolith/shop.sqlite")
        let users = try tables(in: userDB)
        let products = try tables(in: productDB)
        let shop = try tables(in: shopDB)
        #expect(users.contains("users") && !users.contains("products") && !users.contains("orders"))
        #expect(products.contains("products") && !products.contains("users") && !products.contains("orders"))
        #expect(shop.isSuperset(of: ["orders", "inventory", "payments", "notifications", "invoices"]))
        #expect(!shop.contains("users") && !shop.contains("products"), "the monolith no longer has these tables")
        #expect(!FileManager.default.fileExists(atPath: stage.root.appendingPathComponent("user/shop.sqlite").path))
        #expect(!FileManager.default.fileExists(atPath: stage.root.appendingPathComponent("monolith/users.sqlite").path))

        // The services answer on their own ports, with their own APIs.
        let admin = try await ShopAPI(baseURL: stage.user.baseURL, http: stage.api.http)
            .login(email: Launcher.adminEmail, password: Launcher.adminPassword)
        let direct: API.Product = try await ShopAPI(baseURL: stage.product.baseURL, http: stage.api.http).call(
            "POST", "/products", token: admin.token,
            json: API.CreateProductRequest(sku: "DIRECT-\(ID.make("x").dropFirst(2))", name: "Made at the product service", priceCents: 10)
        ).expect(201)
        let viaEntryPoint: API.Product = try await stage.api.call("GET", "/products/\(direct.id)").expect(200)
        #expect(viaEntryPoint == direct)
    }

    @Test("the product service down: catalogue and orders answer 503 with Retry-After, sign-in still works; back up: healed, nothing restarted")
    func productServiceDown() async throws {
        let stage = try await Deployment.start()
        defer { stage.requestStop() }
        let api = stage.api
        let admin = try await api.login(email: Launcher.adminEmail, password: Launcher.adminPassword)
        let product = try await api.createProduct(
            API.CreateProductRequest(sku: "DOWN-\(ID.make("x").dropFirst(2))", name: "Kettle", priceCents: 2_500, initialStock: 5),
            adminToken: admin.token)
        let customer = try await api.newCustomer("outage")
        let monolithPid = stage.monolith.pid

        await stage.product.kill()
        for path in ["/products", "/products/\(product.id)"] {
            let response = try await api.call("GET", path)
            #expect(response.status == 503, "\(path): \(response.text)")
            #expect(response.error?.code == "unavailable")
            #expect(response.error?.message.contains("product service") == true)
            #expect(Int(response.header("Retry-After") ?? "") != nil, "Retry-After tells the client when to come back")
        }
        let order = try await api.placeOrder([(product.id, 1)], token: customer.token)
        #expect(order.status == 503 && order.error?.code == "unavailable")
        // Nothing was stored or held for the order that could not be priced.
        #expect(try await api.inventory(product.id) == API.Inventory(productId: product.id, available: 5, reserved: 0))
        let orders: API.OrderList = try await api.call("GET", "/orders", token: customer.token).expect(200)
        #expect(orders.items.isEmpty)
        // Accounts do not need the product service.
        _ = try await api.login(email: customer.user.email, password: customer.password)
        _ = try await api.newCustomer("during-outage")
        // Health names the culprit.
        let health = try await api.call("GET", "/health")
        #expect(health.status == 503)
        #expect(try health.decode(API.Health.self).services["product"] == .down)

        // Start the product service again, on its own data and port.
        let again = try StageProcess.launch(
            stage: 2, serve: "product", dataDir: stage.root.appendingPathComponent("product"), port: stage.product.port,
            logName: "restart.log", extraEnvironment: ["JWT_SECRET": "stage-2-acceptance-secret"])
        defer { again.requestStop() }
        try await again.waitUntilHealthy(ShopAPI(baseURL: again.baseURL, http: api.http))
        let placed: API.Order = try await Poll.until("ordering works again", within: .seconds(10)) {
            let response = try await api.placeOrder([(product.id, 1)], token: customer.token)
            return response.status == 201 ? try response.decode(API.Order.self) : nil
        }
        #expect(try await api.decidedOrder(placed.id, token: customer.token).status == .confirmed)
        #expect(try await api.call("GET", "/health").status == 200)
        #expect(stage.monolith.pid == monolithPid && stage.monolith.isRunning, "the monolith was never restarted")
        #expect(stage.user.isRunning)
    }

    @Test("the user service down: sign-in answers 503, browsing and ordering with a token already issued still work")
    func userServiceDown() async throws {
        let stage = try await Deployment.start()
        defer { stage.requestStop() }
        let api = stage.api
        let admin = try await api.login(email: Launcher.adminEmail, password: Launcher.adminPassword)
        let product = try await api.createProduct(
            API.CreateProductRequest(sku: "UDOWN-\(ID.make("x").dropFirst(2))", name: "Lamp", priceCents: 900, initialStock: 5),
            adminToken: admin.token)
        let customer = try await api.newCustomer("token-holder")

        await stage.user.kill()
        let login = try await api.call("POST", "/auth/login", json: API.LoginRequest(email: customer.user.email, password: customer.password))
        #expect(login.status == 503 && login.error?.code == "unavailable")
        #expect(login.error?.message.contains("user service") == true)
        #expect(try await api.call("GET", "/products").status == 200)
        // Tokens are checked with the shared secret, without the user service.
        let order: API.Order = try await api.placeOrder([(product.id, 2)], token: customer.token).expect(201)
        #expect(try await api.decidedOrder(order.id, token: customer.token).status == .confirmed)
    }

    @Test("the supervisor prefixes each child's output, reports an exit, and stops every child on SIGTERM")
    func supervisor() async throws {
        let stage = try StageProcess.launch(stage: 2)
        let api = ShopAPI(baseURL: stage.baseURL, http: HTTPClient(timeout: .seconds(10)))
        try await stage.waitUntilHealthy(api)
        let children = stage.children().map(\.pid)
        #expect(children.count == 3, "user, product and monolith")
        let log = stage.logTail(lines: 400)
        for name in ["user", "product", "monolith"] {
            #expect(log.contains("\(name.padding(toLength: 10, withPad: " ", startingAt: 0)) | "), "output prefixed with \(name)")
        }

        // Kill one child: the supervisor says so, the others keep serving.
        // By its arguments: the monolith's own mention --product-url.
        let productPid = try #require(stage.child(serving: "product"))
        kill(productPid, SIGKILL)
        _ = try await Poll.until("the supervisor reports the exit", within: .seconds(10)) {
            stage.logTail(lines: 400).contains("product was killed by signal 9") ? true : nil
        }
        #expect(try await api.call("POST", "/auth/login", json: API.LoginRequest(email: Launcher.adminEmail, password: Launcher.adminPassword)).status == 200)

        // SIGTERM to the supervisor stops the rest.
        await stage.stop()
        let survivors = children.filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
            return !stat.contains(") Z ")  // a zombie has exited, awaiting its reaper
        }
        #expect(survivors.isEmpty, "every child stopped: \(survivors)")
    }
}
