import Common
import Foundation
import ShopClient
import TestSupport
import Testing

// The characterization suite pins the external behaviour of the shop
// (../shared/contract.md, part A). Every test takes the target as its
// argument, so the same test runs against every stage: adding a stage is
// one number in `Target.implementedStages`.

extension Target: CustomTestStringConvertible {
    public var testDescription: String { description }
}

/// Every test's argument list: the selected stages (or `SHOP_BASE_URL`).
let targets = Target.selected

extension ShopUnderTest {
    /// A product of its own for one test, so that stock figures are the
    /// test's alone even while other tests run beside it.
    func newProduct(priceCents: Int = 1_000, stock: Int = 100, name: String = "Test product") async throws -> API.Product {
        try await api.createProduct(
            API.CreateProductRequest(sku: "SKU-\(ID.make("t").dropFirst(2))", name: name, priceCents: priceCents, initialStock: stock),
            adminToken: admin.token)
    }

    func newCustomer(_ label: String = "customer") async throws -> Session {
        try await api.newCustomer(label)
    }

    /// Places an order that the contract accepts (201) and waits until it
    /// is decided.
    func decidedOrder(
        _ items: [(productId: String, quantity: Int)], card: String = SimulatedCardProcessor.approvedCard, by session: Session
    ) async throws -> API.Order {
        let placed: API.Order = try await api.placeOrder(items, card: card, token: session.token).expect(201)
        return try await api.decidedOrder(placed.id, token: session.token)
    }

    /// Waits until nothing about this product is still reserved (every
    /// order touching it decided), then answers its stock.
    ///
    /// With `available`, at rest with that many units: a test that knows
    /// where the stock must end waits for it there. One event can have
    /// consequences that land one by one (from stage 7, payment and
    /// inventory each react to OrderCancelled on their own, so a refund can
    /// show before sold units are back, with nothing reserved meanwhile).
    func settledInventory(_ productId: String, available: Int? = nil) async throws -> API.Inventory {
        let state = available.map { "at rest with \($0) available" } ?? "at rest"
        return try await Poll.until("stock of \(productId) is \(state)", within: .seconds(10)) {
            let stock = try await api.inventory(productId)
            return stock.reserved == 0 && (available == nil || stock.available == available) ? stock : nil
        }
    }
}

/// Expects the contract's error: status, code, and (optionally) that the
/// message names a field.
func expectError(
    _ response: HTTPResponse, _ status: Int, _ code: String, mentioning field: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(response.status == status, "status (body: \(response.text.prefix(300)))", sourceLocation: sourceLocation)
    let error = response.error
    #expect(error?.code == code, "error code in \(response.text.prefix(300))", sourceLocation: sourceLocation)
    let message = error?.message ?? ""
    #expect(!message.isEmpty, "an error message a person can act on", sourceLocation: sourceLocation)
    if let field {
        #expect(error?.message.contains(field) == true, "the message names \(field): \(error?.message ?? "none")", sourceLocation: sourceLocation)
    }
    #expect(response.header("Content-Type")?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
}

func json(_ text: String) -> [UInt8] { Array(text.utf8) }
