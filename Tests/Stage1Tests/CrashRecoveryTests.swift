import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// Stage 1 places an order in two transactions with the charge between
/// them. These tests kill the process (SIGKILL: no shutdown code runs) while
/// customers are checking out, start it again on the same data, and check
/// that nothing was lost, held or doubled.
@Suite("Stage 1: crash recovery", .serialized)
struct CrashRecoveryTests {
    @Test("kill -9 during checkouts: every order is decided after restart, stock balances, one email per decision")
    func killDuringCheckouts() async throws {
        // A long retry ladder (200 ms, then 400 ms) keeps each order paid with
        // the flaky card between its two transactions for at least 0.6 s, so
        // that the kill is sure to catch some there, however busy the machine.
        let slowRetries = ["PAYMENT_RETRY_BASE_MS": "200"]
        let first = try StageProcess.launch(stage: 1, extraEnvironment: slowRetries)
        defer { first.requestStop() }
        let http = HTTPClient(timeout: .seconds(10))
        let api = ShopAPI(baseURL: first.baseURL, http: http)
        try await first.waitUntilHealthy(api)
        let admin = try await api.login(email: Launcher.adminEmail, password: Launcher.adminPassword)

        let initialStock = 1_000
        var products: [API.Product] = []
        for i in 0..<3 {
            products.append(try await api.createProduct(
                API.CreateProductRequest(sku: "CRASH-\(i)-\(ID.make("x").dropFirst(2))", name: "Crash \(i)", priceCents: 100, initialStock: initialStock),
                adminToken: admin.token))
        }
        var customers: [Session] = []
        for i in 0..<8 { customers.append(try await api.newCustomer("crash\(i)")) }

        // Half the customers pay with the card that fails twice before it is
        // approved: their orders spend most of their life between the two
        // transactions (see slowRetries), exactly where a crash hurts most.
        let answered = AnsweredOrders()
        let (shoppers, stock) = (customers, products)
        let checkouts = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, customer) in shoppers.enumerated() {
                    let card = index % 2 == 0 ? SimulatedCardProcessor.flakyCard : SimulatedCardProcessor.approvedCard
                    group.addTask {
                        var n = 0
                        while !Task.isCancelled {
                            n += 1
                            let product = stock[n % stock.count]
                            do {
                                let response = try await api.placeOrder([(product.id, 1 + n % 3)], card: card, token: customer.token)
                                if response.status == 201, let order = try? response.decode(API.Order.self) { await answered.add(order.id) }
                            } catch {
                                return  // the server is gone: this customer stops
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Kill once real traffic is flowing, not after a fixed time.
        _ = try await Poll.until("200 orders were answered", within: .seconds(60)) {
            await answered.ids.count >= 200 ? true : nil
        }
        await first.kill()
        checkouts.cancel()
        _ = await checkouts.result

        let second = try StageProcess.launch(stage: 1, dataDir: first.dataDir, port: first.port, logName: "restart.log", extraEnvironment: slowRetries)
        defer { second.requestStop() }
        try await second.waitUntilHealthy(api)
        #expect(second.logTail(lines: 200).contains("resuming an order interrupted"), "the restart finished orders caught between the two transactions")

        var everyOrder: [API.Order] = []
        for customer in customers {
            let login = try await api.login(email: customer.user.email, password: customer.password)
            let list: API.OrderList = try await api.call("GET", "/orders?limit=1000", token: login.token).expect(200)
            #expect(!list.hasMore)
            #expect(list.items.allSatisfy { $0.status != .pending }, "no order is left pending")
            everyOrder += list.items

            // Exactly one email per decision, however the crash fell.
            let notifications: API.ItemList<API.Notification> = try await api.call("GET", "/notifications", token: login.token).expect(200)
            let decisionEmails = notifications.items.filter { $0.kind != .welcome }
            #expect(decisionEmails.count == list.items.count, "one confirmation or cancellation per order")
            #expect(Set(decisionEmails.compactMap(\.orderId)).count == decisionEmails.count, "never two for one order")
        }
        // Each order answered 201 was committed before its answer (the
        // group commit answers only after the commit): all are still here.
        let told = await answered.ids
        let kept = Set(everyOrder.map(\.id))
        #expect(told.subtracting(kept).isEmpty, "every order a customer was told about still exists: \(told.subtracting(kept).count) of \(told.count) missing")

        for product in products {
            let sold = everyOrder.filter { $0.status.countsAsSale }.flatMap(\.items).filter { $0.productId == product.id }.reduce(0) { $0 + $1.quantity }
            let stock = try await api.inventory(product.id)
            #expect(stock.reserved == 0, "nothing held for \(product.sku)")
            #expect(stock.available == initialStock - sold, "\(product.sku): \(stock.available) available, \(sold) sold")
        }
        for order in everyOrder {
            let net = order.payment.chargedCents - order.payment.refundedCents
            #expect(net == (order.status.countsAsSale ? order.totalCents : 0), "charged once, and only for confirmed orders: \(order.id)")
        }
    }
}

actor AnsweredOrders {
    private(set) var ids: Set<String> = []
    func add(_ id: String) { ids.insert(id) }
}
