import Common
import Foundation
import ShopClient
import TestSupport
import Testing

@Suite("Notifications")
struct NotificationsTests {
    func notifications(_ shop: ShopUnderTest, _ session: Session) async throws -> [API.Notification] {
        try await shop.api.call("GET", "/notifications", token: session.token).expect(200, as: API.ItemList<API.Notification>.self).items
    }

    @Test("sign-up sends one welcome email", arguments: targets)
    func welcome(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let items = try await Poll.until("the welcome notification exists", within: .seconds(5)) {
            let items = try await notifications(shop, customer)
            return items.isEmpty ? nil : items
        }
        #expect(items.count == 1)
        let welcome = try #require(items.first)
        #expect(welcome.kind == .welcome && welcome.orderId == nil)
        #expect(welcome.channel == "email" && welcome.to == customer.user.email)
        #expect(!welcome.subject.isEmpty)
        expectError(try await shop.api.call("GET", "/notifications"), 401, "unauthorized")
    }

    @Test("one notification per kind per order: confirmed, shipped; confirmed, cancelled; cancelled", arguments: targets)
    func perOrder(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct(stock: 10)
        let shipped = try await shop.decidedOrder([(product.id, 1)], by: customer)
        _ = try await shop.api.call("POST", "/orders/\(shipped.id)/ship", token: shop.admin.token).expect(202, as: API.Order.self)
        let cancelled = try await shop.decidedOrder([(product.id, 1)], by: customer)
        _ = try await shop.api.call("POST", "/orders/\(cancelled.id)/cancel", token: customer.token).expect(202, as: API.Order.self)
        let declined = try await shop.decidedOrder([(product.id, 1)], card: SimulatedCardProcessor.declinedCard, by: customer)

        let expected: Set<String> = [
            "welcome:-",
            "order_confirmed:\(shipped.id)", "order_shipped:\(shipped.id)",
            "order_confirmed:\(cancelled.id)", "order_cancelled:\(cancelled.id)",
            "order_cancelled:\(declined.id)",
        ]
        let items = try await Poll.until("all six notifications exist", within: .seconds(5)) {
            let items = try await notifications(shop, customer)
            return items.count >= expected.count ? items : nil
        }
        let keys = items.map { "\($0.kind.rawValue):\($0.orderId ?? "-")" }
        #expect(keys.count == expected.count, "exactly one of each: \(keys)")
        #expect(Set(keys) == expected)
        #expect(items.allSatisfy { $0.to == customer.user.email && $0.channel == "email" })
        let times = items.map(\.createdAt)
        #expect(times == times.sorted(by: >), "newest first")
        #expect(keys.first == "order_cancelled:\(declined.id)")
    }
}
