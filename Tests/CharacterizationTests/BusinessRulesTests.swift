import Common
import Foundation
import ShopClient
import TestSupport
import Testing

@Suite("Business rules")
struct BusinessRulesTests {
    @Test("declined cards cancel the order with payment_declined and leave stock unchanged",
          arguments: targets, [SimulatedCardProcessor.declinedCard, SimulatedCardProcessor.insufficientFundsCard])
    func declined(_ target: Target, card: String) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct(stock: 4)
        let order = try await shop.decidedOrder([(product.id, 2)], card: card, by: customer)
        #expect(order.status == .cancelled)
        #expect(order.cancelReason == .paymentDeclined)
        #expect(order.payment.status == .declined)
        #expect(order.payment.chargedCents - order.payment.refundedCents == 0)
        #expect(try await shop.settledInventory(product.id) == API.Inventory(productId: product.id, available: 4, reserved: 0))
    }

    @Test("the card that fails twice with a transient error is retried and approved", arguments: targets)
    func transient(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct(priceCents: 999, stock: 4)
        let order = try await shop.decidedOrder([(product.id, 1)], card: SimulatedCardProcessor.flakyCard, by: customer)
        #expect(order.status == .confirmed)
        #expect(order.payment == API.Payment(status: .captured, chargedCents: 999, refundedCents: 0))
        #expect(try await shop.settledInventory(product.id).available == 3)
    }

    @Test("any other Luhn-valid card is approved", arguments: targets, ["5555555555554444", "378282246310005", "6011 1111 1111 1117"])
    func otherCards(_ target: Target, card: String) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct()
        #expect(try await shop.decidedOrder([(product.id, 1)], card: card, by: customer).status == .confirmed)
    }

    @Test("out of stock cancels with out_of_stock, charges nothing net, reserves nothing", arguments: targets)
    func outOfStock(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let plenty = try await shop.newProduct(stock: 10)
        let scarce = try await shop.newProduct(stock: 1)
        let order = try await shop.decidedOrder([(plenty.id, 1), (scarce.id, 2)], by: customer)
        #expect(order.status == .cancelled)
        #expect(order.cancelReason == .outOfStock)
        #expect(order.payment.chargedCents - order.payment.refundedCents == 0)
        #expect(try await shop.settledInventory(plenty.id).available == 10, "all or nothing: the line in stock is not taken either")
        #expect(try await shop.settledInventory(scarce.id).available == 1)
    }

    @Test("out of stock wins when the payment is declined as well", arguments: targets)
    func outOfStockWins(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let scarce = try await shop.newProduct(stock: 0)
        let order = try await shop.decidedOrder([(scarce.id, 1)], card: SimulatedCardProcessor.declinedCard, by: customer)
        #expect(order.status == .cancelled && order.cancelReason == .outOfStock)
        #expect(order.payment.chargedCents - order.payment.refundedCents == 0)
    }

    @Test("never oversell: concurrent orders for the last units confirm only as many as there are", arguments: targets)
    func lastUnits(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let product = try await shop.newProduct(stock: 5)
        var customers: [Session] = []
        for i in 0..<4 { customers.append(try await shop.newCustomer("rush\(i)")) }
        let orders = try await withThrowingTaskGroup(of: API.Order.self) { group in
            for i in 0..<20 {
                let customer = customers[i % customers.count]
                group.addTask { try await shop.decidedOrder([(product.id, 1)], by: customer) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(orders.filter { $0.status == .confirmed }.count == 5)
        let rest = orders.filter { $0.status != .confirmed }
        #expect(rest.count == 15)
        #expect(rest.allSatisfy { $0.status == .cancelled && $0.cancelReason == .outOfStock })
        #expect(try await shop.settledInventory(product.id) == API.Inventory(productId: product.id, available: 0, reserved: 0))
    }

    @Test("at rest, available = initial + restocks - units in confirmed or shipped orders, and reserved = 0", arguments: targets)
    func stockInvariant(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let a = try await shop.newProduct(stock: 6)
        let b = try await shop.newProduct(stock: 3)
        var orders: [API.Order] = []
        orders.append(try await shop.decidedOrder([(a.id, 2), (b.id, 1)], by: customer))                                            // confirmed
        orders.append(try await shop.decidedOrder([(a.id, 1)], card: SimulatedCardProcessor.declinedCard, by: customer))            // declined
        orders.append(try await shop.decidedOrder([(b.id, 5)], by: customer))                                                        // out of stock
        orders.append(try await shop.decidedOrder([(a.id, 1)], card: SimulatedCardProcessor.flakyCard, by: customer))               // confirmed after retries
        let toCancel = try await shop.decidedOrder([(a.id, 2)], by: customer)                                                        // confirmed, then cancelled
        _ = try await shop.api.call("POST", "/orders/\(toCancel.id)/cancel", token: customer.token).expect(202, as: API.Order.self)
        orders.append(toCancel)
        let toShip = try await shop.decidedOrder([(b.id, 1)], by: customer)                                                          // shipped
        _ = try await shop.api.call("POST", "/orders/\(toShip.id)/ship", token: shop.admin.token).expect(202, as: API.Order.self)
        orders.append(toShip)
        _ = try await shop.api.call("POST", "/inventory/\(b.id)/restock", token: shop.admin.token, json: API.RestockRequest(quantity: 10)).expect(200, as: API.Inventory.self)

        // Wait until every order has reached its final state, then check the books.
        let final = try await Poll.until("every order is at rest", within: .seconds(10)) { () async throws -> [API.Order]? in
            var now: [API.Order] = []
            for order in orders { now.append(try await shop.api.order(order.id, token: customer.token)) }
            let atRest = now.allSatisfy { $0.status != .pending }
                && now.first { $0.id == toCancel.id }?.status == .cancelled
                && now.first { $0.id == toShip.id }?.status == .shipped
            return atRest ? now : nil
        }
        for (product, initial, restocked) in [(a, 6, 0), (b, 3, 10)] {
            let sold = final.filter { $0.status.countsAsSale }.flatMap(\.items).filter { $0.productId == product.id }.reduce(0) { $0 + $1.quantity }
            let stock = try await shop.settledInventory(product.id)
            #expect(stock.available == initial + restocked - sold, "\(product.sku)")
            #expect(stock.reserved == 0)
        }
        #expect(final.map(\.status) == [.confirmed, .cancelled, .cancelled, .confirmed, .cancelled, .shipped])
        // Net money: only confirmed and shipped orders keep their charge.
        for order in final {
            let net = order.payment.chargedCents - order.payment.refundedCents
            #expect(net == (order.status.countsAsSale ? order.totalCents : 0), "net charge of \(order.id)")
        }
    }
}
