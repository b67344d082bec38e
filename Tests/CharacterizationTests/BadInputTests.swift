import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// Bad input gets the contract's error body and status, stores nothing,
/// and never takes the server down.
@Suite("Bad input")
struct BadInputTests {
    /// Every endpoint that reads a body, with a token good enough to reach
    /// the body parsing.
    func bodyEndpoints(_ shop: ShopUnderTest, customer: Session, product: API.Product) -> [(String, String, String?)] {
        [
            ("POST", "/users", nil),
            ("POST", "/auth/login", nil),
            ("POST", "/products", shop.admin.token),
            ("PATCH", "/products/\(product.id)", shop.admin.token),
            ("POST", "/inventory/\(product.id)/restock", shop.admin.token),
            ("POST", "/orders", customer.token),
        ]
    }

    @Test("malformed JSON, a non-object body and an empty body answer 400 invalid_request", arguments: targets)
    func malformed(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct(stock: 10)
        for (method, path, token) in bodyEndpoints(shop, customer: customer, product: product) {
            for body in ["{not json", "[1,2,3]", "\"text\"", "", "{\"items\": [}", "nul"] {
                let response = try await shop.api.call(method, path, token: token, body: json(body))
                expectError(response, 400, "invalid_request")
            }
        }
        #expect(try await shop.api.inventory(product.id) == API.Inventory(productId: product.id, available: 10, reserved: 0))
        #expect(try await shop.api.call("GET", "/products/\(product.id)").expect(200, as: API.Product.self) == product)
    }

    @Test("wrong types and missing fields answer 400 naming the field", arguments: targets)
    func types(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct(stock: 10)
        let cases: [(String, String, String?, String, String)] = [
            ("POST", "/users", nil, #"{"email": 5, "password": "password123", "name": "x"}"#, "email"),
            ("POST", "/users", nil, #"{"password": "password123", "name": "x"}"#, "email"),
            ("POST", "/auth/login", nil, #"{"email": "a@b.co"}"#, "password"),
            ("POST", "/products", shop.admin.token, #"{"sku": "S-\#(ID.make("x"))", "name": "x", "priceCents": "12"}"#, "priceCents"),
            ("POST", "/products", shop.admin.token, #"{"sku": "S-\#(ID.make("x"))", "name": "x", "priceCents": 12.5}"#, "priceCents"),
            ("POST", "/products", shop.admin.token, #"{"sku": "S-\#(ID.make("x"))", "name": "x", "priceCents": 1e30}"#, "priceCents"),
            ("POST", "/products", shop.admin.token, #"{"sku": "S-\#(ID.make("x"))", "name": "x"}"#, "priceCents"),
            ("PATCH", "/products/\(product.id)", shop.admin.token, #"{"priceCents": true}"#, "priceCents"),
            ("POST", "/inventory/\(product.id)/restock", shop.admin.token, #"{"quantity": "5"}"#, "quantity"),
            ("POST", "/orders", customer.token, #"{"paymentMethod": {"card": "4242424242424242"}}"#, "items"),
            ("POST", "/orders", customer.token, #"{"items": [{"productId": "\#(product.id)", "quantity": 1}]}"#, "paymentMethod"),
            ("POST", "/orders", customer.token, #"{"items": [{"productId": "\#(product.id)", "quantity": 1.5}], "paymentMethod": {"card": "4242424242424242"}}"#, "items[0].quantity"),
            ("POST", "/orders", customer.token, #"{"items": [{"productId": "\#(product.id)", "quantity": 1}], "paymentMethod": {"card": 4242424242424242}}"#, "card"),
            ("POST", "/orders", customer.token, #"{"items": {"productId": "\#(product.id)"}, "paymentMethod": {"card": "4242424242424242"}}"#, "items"),
        ]
        for (method, path, token, body, field) in cases {
            expectError(try await shop.api.call(method, path, token: token, body: json(body)), 400, "invalid_request", mentioning: field)
        }
        #expect(try await shop.api.inventory(product.id) == API.Inventory(productId: product.id, available: 10, reserved: 0))
        #expect(try await shop.api.call("GET", "/products/\(product.id)").expect(200, as: API.Product.self) == product)
        let orders: API.OrderList = try await shop.api.call("GET", "/orders", token: customer.token).expect(200)
        #expect(orders.items.isEmpty)
    }

    @Test("a body over 1 MiB answers 413 payload_too_large and stores nothing", arguments: targets)
    func oversized(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let email = "big-\(ID.make("x").dropFirst(2))@example.com"
        // Valid JSON, padded past the limit: only its size is wrong.
        let padding = String(repeating: "a", count: Limits.maxBodyBytes)
        let body = json(#"{"email": "\#(email)", "password": "password123", "name": "\#(padding)"}"#)
        expectError(try await shop.api.call("POST", "/users", body: body), 413, "payload_too_large")
        let order = json(#"{"items": [], "paymentMethod": {"card": "\#(padding)"}}"#)
        expectError(try await shop.api.call("POST", "/orders", token: customer.token, body: order), 413, "payload_too_large")
        // Just under the limit is parsed (and refused for its content, not its size).
        let under = json(#"{"email": "\#(email)", "password": "password123", "name": "\#(padding.dropFirst(200))"}"#)
        expectError(try await shop.api.call("POST", "/users", body: under), 400, "invalid_request", mentioning: "name")
        // The account was never created.
        expectError(try await shop.api.call("POST", "/auth/login", json: API.LoginRequest(email: email, password: "password123")), 401, "invalid_credentials")
        #expect(try await shop.api.call("GET", "/health").status == 200)
    }

    @Test("missing, malformed, forged, tampered and unsigned tokens answer 401", arguments: targets)
    func tokens(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let parts = customer.token.split(separator: ".").map(String.init)
        func b64url(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        // The customer's own signature over claims that make them an admin.
        let payload = Data(base64Encoded: parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/").padding(toLength: (parts[1].count + 3) / 4 * 4, withPad: "=", startingAt: 0))!
        let claims = String(decoding: payload, as: UTF8.self).replacingOccurrences(of: "\"customer\"", with: "\"admin\"")
        let tampered = parts[0] + "." + b64url(claims) + "." + parts[2]
        let unsigned = b64url(#"{"alg":"none","typ":"JWT"}"#) + "." + b64url(claims) + "."
        let otherKey = parts[0] + "." + parts[1] + "." + b64url("signature-made-with-another-secret-0123")

        let headers: [[(String, String)]] = [
            [],
            [("Authorization", "Bearer")],
            [("Authorization", "Bearer not-a-jwt")],
            [("Authorization", "Basic dXNlcjpwYXNz")],
            [("Authorization", "Bearer \(tampered)")],
            [("Authorization", "Bearer \(unsigned)")],
            [("Authorization", "Bearer \(otherKey)")],
        ]
        for header in headers {
            expectError(try await shop.api.call("GET", "/users/me", headers: header), 401, "unauthorized")
            expectError(try await shop.api.call("GET", "/reports/sales", headers: header), 401, "unauthorized")
        }
        // The real token still works.
        #expect(try await shop.api.call("GET", "/users/me", token: customer.token).status == 200)
    }

    @Test("unknown paths and ids answer 404 not_found", arguments: targets)
    func unknownPaths(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        expectError(try await shop.api.call("GET", "/no/such/thing"), 404, "not_found")
        expectError(try await shop.api.call("GET", "/orders/ord_doesnotexist000000", token: customer.token), 404, "not_found")
        expectError(try await shop.api.call("GET", "/orders/ord_doesnotexist000000/invoice", token: customer.token), 404, "not_found")
        expectError(try await shop.api.call("POST", "/orders/ord_doesnotexist000000/cancel", token: customer.token), 404, "not_found")
        let weird = try await shop.api.call("GET", "/products/%00%ff")
        #expect([400, 404].contains(weird.status))
    }

    @Test("random bodies on every endpoint never cause a 5xx or stop the server", arguments: targets)
    func fuzz(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let customer = try await shop.newCustomer()
        let product = try await shop.newProduct(stock: 10)
        var rng = SplitMix64(seed: 20261124)
        let fragments = ["{", "}", "[", "]", "\"", ":", ",", "null", "true", "-1", "1e999", "\"items\"", "\"quantity\"",
                         "\"productId\"", "\"\(product.id)\"", "\"email\"", "\\u0000", "\u{00e9}", "0", "99999999999999999999"]
        for round in 0..<240 {
            let (method, path, token) = bodyEndpoints(shop, customer: customer, product: product)[round % 6]
            var body: [UInt8]
            if round % 3 == 0 {
                body = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                body = Array((0..<Int(1 + rng.next() % 12)).map { _ in fragments[Int(rng.next() % UInt64(fragments.count))] }.joined().utf8)
            }
            let response = try await shop.api.call(method, path, token: token, body: body)
            #expect(response.status < 500, "round \(round): \(method) \(path) with \(String(decoding: body, as: UTF8.self).prefix(80)) answered \(response.status)")
            if response.status >= 400 { #expect(response.error != nil, "round \(round): error body") }
        }
        #expect(try await shop.api.call("GET", "/health").status == 200)
        #expect(try await shop.api.inventory(product.id) == API.Inventory(productId: product.id, available: 10, reserved: 0))
    }
}
