import Common
import Foundation
import ShopClient
import TestSupport
import Testing

@Suite("Reports and health")
struct ReportsAndHealthTests {
    @Test("the sales report counts confirmed and shipped orders, not refunded or declined ones", arguments: targets)
    func sales(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct(priceCents: 1_000, stock: 20)
        let before: API.SalesReport = try await shop.api.call("GET", "/reports/sales", token: shop.admin.token).expect(200)

        _ = try await shop.decidedOrder([(product.id, 2)], by: customer)                                                  // sale: 2 units
        let shipped = try await shop.decidedOrder([(product.id, 3)], by: customer)                                         // sale: 3 units
        _ = try await shop.api.call("POST", "/orders/\(shipped.id)/ship", token: shop.admin.token).expect(202, as: API.Order.self)
        let refunded = try await shop.decidedOrder([(product.id, 4)], by: customer)                                        // refunded: no sale
        _ = try await shop.api.call("POST", "/orders/\(refunded.id)/cancel", token: customer.token).expect(202, as: API.Order.self)
        _ = try await shop.decidedOrder([(product.id, 5)], card: SimulatedCardProcessor.declinedCard, by: customer)     // declined: no sale

        // Reports may lag (eventual consistency) but reach the figures within 5 s.
        let row = try await Poll.until("the report shows 5 units of \(product.sku)", within: .seconds(5)) {
            let report: API.SalesReport = try await shop.api.call("GET", "/reports/sales", token: shop.admin.token).expect(200)
            return report.byProduct.first { $0.productId == product.id && $0.unitsSold == 5 }
        }
        #expect(row == API.ProductSales(productId: product.id, sku: product.sku, unitsSold: 5, revenueCents: 5_000))
        let after: API.SalesReport = try await shop.api.call("GET", "/reports/sales", token: shop.admin.token).expect(200)
        #expect(after.ordersConfirmed >= before.ordersConfirmed + 2)
        #expect(after.ordersCancelled >= before.ordersCancelled + 2)
        #expect(after.revenueCents >= before.revenueCents + 5_000)
        #expect(after.revenueCents == after.byProduct.reduce(0) { $0 + $1.revenueCents }, "the total is the sum of the rows")

        let stranger = try await shop.newCustomer()
        expectError(try await shop.api.call("GET", "/reports/sales", token: stranger.token), 403, "forbidden")
        expectError(try await shop.api.call("GET", "/reports/sales"), 401, "unauthorized")
    }

    @Test("health answers ok with the stage number and the state of each service", arguments: targets)
    func health(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let health: API.Health = try await shop.api.call("GET", "/health").expect(200)
        #expect(health.status == "ok")
        if let stage = target.stageNumber { #expect(health.stage == stage) }
        #expect(!health.services.isEmpty && health.services.values.allSatisfy { $0 == .up })
    }

    @Test("every response carries a request id, and a caller's own id is echoed", arguments: targets)
    func requestId(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let generated = try await shop.api.call("GET", "/products")
        #expect(!(generated.header("X-Request-Id") ?? "").isEmpty)
        let echoed = try await shop.api.call("GET", "/health", headers: [("X-Request-Id", "trace-me-42")])
        #expect(echoed.header("X-Request-Id") == "trace-me-42")
    }

    @Test("the API reference is served at /openapi.yaml and is the stage's own document", arguments: targets)
    func openAPIServed(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let response = try await shop.api.call("GET", "/openapi.yaml")
        #expect(response.status == 200)
        #expect(response.text.contains("openapi: 3.1"))
        if let stage = target.stageNumber {
            #expect(response.text == (try String(contentsOf: APIReference.stage(stage), encoding: .utf8)))
        }
    }
}

enum APIReference {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// docs/openapi.yaml is a link to this file, the one source.
    static let file = root.appendingPathComponent("Sources/ShopServer/Resources/openapi.yaml")
    /// docs/openapi/stage-N.yaml, written from it by scripts/openapi-stages.
    static func stage(_ n: Int) -> URL { root.appendingPathComponent("Sources/ShopServer/Resources/stages/stage-\(n).yaml") }
}

@Suite("API reference")
struct APIReferenceTests {
    @Test("docs/openapi.yaml is a valid OpenAPI 3.1 document (openapi-spec-validator)")
    func valid() async throws {
        let root = APIReference.file.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let validator = root.appendingPathComponent(".venv/bin/openapi-spec-validator")
        try #require(FileManager.default.isExecutableFile(atPath: validator.path), "run scripts/setup: it installs the validator into .venv")
        // Async, through the shared runner: the validator takes a second or
        // two, and a synchronous test that waits for it holds one of the
        // cooperative pool's two threads all that time.
        let result = try await runProcess(validator.path, [APIReference.file.path])
        let text = result.stdout + result.stderr
        #expect(result.status == 0, "\(text)")
        #expect(text.contains("OK"))
    }
}
