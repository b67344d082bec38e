import Common
import Foundation
import ShopClient
import TestSupport
import Testing

@Suite("Accounts")
struct AccountsTests {
    @Test("sign-up answers 201 with the user and role customer", arguments: targets)
    func signUp(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let email = "ada-\(ID.make("x").dropFirst(2))@example.com"
        let response = try await shop.api.call("POST", "/users", json: API.SignUpRequest(email: email, password: "analytical", name: "Ada"))
        let user: API.User = try response.expect(201)
        #expect(user.email == email)
        #expect(user.name == "Ada")
        #expect(user.role == .customer)
        #expect(!user.id.isEmpty)
        // The password, or anything derived from it, never comes back.
        #expect(!response.text.contains("analytical"))
        #expect(!response.text.lowercased().contains("password"))
    }

    @Test("an email is taken whatever its case", arguments: targets)
    func emailTaken(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let local = "grace-\(ID.make("x").dropFirst(2))"
        _ = try await shop.api.signUp(email: "\(local)@example.com")
        let again = try await shop.api.call("POST", "/users", json: API.SignUpRequest(email: "\(local.uppercased())@EXAMPLE.com", password: "password123", name: "Grace"))
        expectError(again, 409, "email_taken")
    }

    @Test("sign-up refuses an invalid email, a short password and an empty name, and stores nothing", arguments: targets)
    func signUpValidation(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let email = "val-\(ID.make("x").dropFirst(2))@example.com"
        let cases: [(API.SignUpRequest, String)] = [
            (.init(email: "not-an-email", password: "password123", name: "N"), "email"),
            (.init(email: "two@@example.com", password: "password123", name: "N"), "email"),
            (.init(email: email, password: "short", name: "N"), "password"),
            (.init(email: email, password: "1234567", name: "N"), "password"),
            (.init(email: email, password: "password123", name: ""), "name"),
            (.init(email: email, password: "password123", name: "   "), "name"),
        ]
        for (request, field) in cases {
            expectError(try await shop.api.call("POST", "/users", json: request), 400, "invalid_request", mentioning: field)
        }
        // None of them created the account: it can still be created now.
        _ = try await shop.api.signUp(email: email)
    }

    @Test("a password of exactly 8 characters is accepted", arguments: targets)
    func passwordBoundary(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        _ = try await shop.api.signUp(email: "eight-\(ID.make("x").dropFirst(2))@example.com", password: "12345678")
    }

    @Test("login answers a bearer token; unknown email and wrong password answer the same 401", arguments: targets)
    func login(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let session = try await shop.newCustomer()
        let login = try await shop.api.login(email: session.user.email.uppercased(), password: session.password)
        #expect(login.tokenType == "Bearer")
        #expect(login.expiresIn > 0)
        #expect(login.user == session.user)
        #expect(login.token.split(separator: ".").count == 3, "a JWT has three parts")

        let wrongPassword = try await shop.api.call("POST", "/auth/login", json: API.LoginRequest(email: session.user.email, password: "not-the-password"))
        let unknownEmail = try await shop.api.call("POST", "/auth/login", json: API.LoginRequest(email: "nobody-\(ID.make("x"))@example.com", password: "not-the-password"))
        expectError(wrongPassword, 401, "invalid_credentials")
        expectError(unknownEmail, 401, "invalid_credentials")
        #expect(wrongPassword.error == unknownEmail.error, "no hint of which emails have accounts")
    }

    @Test("GET /users/me answers the caller and needs a valid token", arguments: targets)
    func me(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let session = try await shop.newCustomer()
        let me: API.User = try await shop.api.call("GET", "/users/me", token: session.token).expect(200)
        #expect(me == session.user)
        expectError(try await shop.api.call("GET", "/users/me"), 401, "unauthorized")
        expectError(try await shop.api.call("GET", "/users/me", token: "not.a.token"), 401, "unauthorized")
    }

    @Test("the administrator exists from the start", arguments: targets)
    func administrator(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let me: API.User = try await shop.api.call("GET", "/users/me", token: shop.admin.token).expect(200)
        #expect(me.role == .admin)
        #expect(me.email.lowercased() == Launcher.adminEmail.lowercased())
    }

    @Test("the summary aggregates the user, the 5 newest orders and the notification count", arguments: targets)
    func summary(_ target: Target) async throws {
        let shop = try await ShopUnderTest.get(target)
        let session = try await shop.newCustomer()
        let product = try await shop.newProduct(stock: 100)
        var placed: [API.Order] = []
        for _ in 0..<6 {
            placed.append(try await shop.decidedOrder([(product.id, 1)], by: session))
        }
        let summary: API.UserSummary = try await Poll.until("the summary counts 7 notifications", within: .seconds(5)) {
            let summary: API.UserSummary = try await shop.api.call("GET", "/users/me/summary", token: session.token).expect(200)
            return summary.notifications == 7 ? summary : nil  // welcome + 6 confirmations
        }
        #expect(summary.user == session.user)
        #expect(summary.recentOrders.map(\.id) == placed.reversed().prefix(5).map(\.id), "newest first, at most 5")
        expectError(try await shop.api.call("GET", "/users/me/summary"), 401, "unauthorized")
    }
}
