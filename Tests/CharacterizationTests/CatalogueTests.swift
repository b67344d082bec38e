import Common
import Foundation
import ShopClient
import TestSupport
import Testing

@Suite("Catalogue and stock")
struct CatalogueTests {
    @Test("an administrator creates a product; anyone lists and reads it", arguments: targets)
    func createAndRead(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let sku = "MUG-\(ID.make("x").dropFirst(2))"
        let created: API.Product = try await shop.api.call(
            "POST", "/products", token: shop.admin.token,
            json: API.CreateProductRequest(sku: sku, name: "Mug", description: "Blue", priceCents: 1250, initialStock: 7)
        ).expect(201)
        #expect(created.sku == sku && created.name == "Mug" && created.description == "Blue")
        #expect(created.priceCents == 1250 && created.currency == .usd)

        let read: API.Product = try await shop.api.call("GET", "/products/\(created.id)").expect(200)
        #expect(read == created)
        let list: API.ItemList<API.Product> = try await shop.api.call("GET", "/products").expect(200)
        #expect(list.items.contains(created))

        let stock = try await shop.api.inventory(created.id)
        #expect(stock == API.Inventory(productId: created.id, available: 7, reserved: 0))
    }

    @Test("a product without initialStock has none; without description an empty one", arguments: targets)
    func defaults(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let product = try await shop.api.createProduct(
            API.CreateProductRequest(sku: "D-\(ID.make("x").dropFirst(2))", name: "Plain", priceCents: 1), adminToken: shop.admin.token)
        #expect(product.description == "")
        #expect(try await shop.api.inventory(product.id).available == 0)
    }

    @Test("only an administrator changes the catalogue: 401 without a token, 403 for a customer", arguments: targets)
    func adminOnly(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct()
        let create = API.CreateProductRequest(sku: "NOPE-\(ID.make("x").dropFirst(2))", name: "x", priceCents: 100)
        expectError(try await shop.api.call("POST", "/products", json: create), 401, "unauthorized")
        expectError(try await shop.api.call("POST", "/products", token: customer.token, json: create), 403, "forbidden")
        expectError(try await shop.api.call("PATCH", "/products/\(product.id)", token: customer.token, json: API.UpdateProductRequest(priceCents: 1)), 403, "forbidden")
        expectError(try await shop.api.call("POST", "/inventory/\(product.id)/restock", token: customer.token, json: API.RestockRequest(quantity: 5)), 403, "forbidden")
        // Nothing changed.
        #expect(try await shop.api.call("GET", "/products/\(product.id)").expect(200, as: API.Product.self) == product)
        #expect(try await shop.api.inventory(product.id).available == 100)
        let list: API.ItemList<API.Product> = try await shop.api.call("GET", "/products").expect(200)
        #expect(!list.items.contains { $0.sku == create.sku })
    }

    @Test("a sku is taken once", arguments: targets)
    func skuTaken(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let product = try await shop.newProduct()
        let again = try await shop.api.call("POST", "/products", token: shop.admin.token,
                                            json: API.CreateProductRequest(sku: product.sku, name: "Copy", priceCents: 5))
        expectError(again, 409, "sku_taken")
    }

    @Test("product fields are validated", arguments: targets)
    func validation(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let sku = "V-\(ID.make("x").dropFirst(2))"
        let cases: [(API.CreateProductRequest, String)] = [
            (.init(sku: sku, name: "x", priceCents: 0), "priceCents"),
            (.init(sku: sku, name: "x", priceCents: -5), "priceCents"),
            (.init(sku: sku, name: "x", priceCents: 100, initialStock: -1), "initialStock"),
            (.init(sku: sku, name: "", priceCents: 100), "name"),
            (.init(sku: "", name: "x", priceCents: 100), "sku"),
        ]
        for (request, field) in cases {
            expectError(try await shop.api.call("POST", "/products", token: shop.admin.token, json: request), 400, "invalid_request", mentioning: field)
        }
        let list: API.ItemList<API.Product> = try await shop.api.call("GET", "/products").expect(200)
        #expect(!list.items.contains { $0.sku == sku }, "no invalid product was stored")
    }

    @Test("PATCH changes only the fields given, and validates them", arguments: targets)
    func patch(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let product = try await shop.newProduct(priceCents: 500, name: "Before")
        let renamed: API.Product = try await shop.api.call(
            "PATCH", "/products/\(product.id)", token: shop.admin.token, json: API.UpdateProductRequest(name: "After")).expect(200)
        #expect(renamed.name == "After" && renamed.priceCents == 500 && renamed.sku == product.sku)
        let repriced: API.Product = try await shop.api.call(
            "PATCH", "/products/\(product.id)", token: shop.admin.token, json: API.UpdateProductRequest(priceCents: 750)).expect(200)
        #expect(repriced.name == "After" && repriced.priceCents == 750)
        expectError(try await shop.api.call("PATCH", "/products/\(product.id)", token: shop.admin.token, json: API.UpdateProductRequest(priceCents: 0)),
                    400, "invalid_request", mentioning: "priceCents")
        expectError(try await shop.api.call("PATCH", "/products/prd_doesnotexist0000000", token: shop.admin.token, json: API.UpdateProductRequest(name: "x")),
                    404, "not_found")
        #expect(try await shop.api.call("GET", "/products/\(product.id)").expect(200, as: API.Product.self).priceCents == 750)
    }

    @Test("a price change never alters orders already placed", arguments: targets)
    func priceSnapshot(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct(priceCents: 1_000, name: "Lamp")
        let order = try await shop.decidedOrder([(product.id, 2)], by: customer)
        _ = try await shop.api.call("PATCH", "/products/\(product.id)", token: shop.admin.token,
                                    json: API.UpdateProductRequest(name: "Renamed lamp", priceCents: 9_999)).expect(200, as: API.Product.self)
        let after = try await shop.api.order(order.id, token: customer.token)
        #expect(after.items[0].unitPriceCents == 1_000)
        #expect(after.items[0].name == "Lamp")
        #expect(after.totalCents == 2_000)
        // A new order pays the new price.
        let next = try await shop.decidedOrder([(product.id, 1)], by: customer)
        #expect(next.totalCents == 9_999 && next.items[0].name == "Renamed lamp")
    }

    @Test("restock adds to available; the quantity must be positive", arguments: targets)
    func restock(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let product = try await shop.newProduct(stock: 3)
        let stock: API.Inventory = try await shop.api.call(
            "POST", "/inventory/\(product.id)/restock", token: shop.admin.token, json: API.RestockRequest(quantity: 4)).expect(200)
        #expect(stock == API.Inventory(productId: product.id, available: 7, reserved: 0))
        for bad in [0, -3] {
            expectError(try await shop.api.call("POST", "/inventory/\(product.id)/restock", token: shop.admin.token, json: API.RestockRequest(quantity: bad)),
                        400, "invalid_request", mentioning: "quantity")
        }
        expectError(try await shop.api.call("POST", "/inventory/prd_doesnotexist0000000/restock", token: shop.admin.token, json: API.RestockRequest(quantity: 1)),
                    404, "not_found")
        #expect(try await shop.api.inventory(product.id).available == 7)
    }

    @Test("unknown products answer 404", arguments: targets)
    func unknown(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        expectError(try await shop.api.call("GET", "/products/prd_doesnotexist0000000"), 404, "not_found")
        expectError(try await shop.api.call("GET", "/inventory/prd_doesnotexist0000000"), 404, "not_found")
    }
}
