import Common
import Foundation

/// A typed client of the contract (../shared/contract.md). Each call
/// returns the raw response too, so a test can assert on the status and
/// headers as well as the body.
public struct ShopAPI: Sendable {
    public let baseURL: String
    public let http: HTTPClient

    public init(baseURL: String, http: HTTPClient = HTTPClient()) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = http
    }

    // MARK: Raw calls

    public func call(
        _ method: String, _ path: String, token: String? = nil, body: [UInt8]? = nil,
        headers: [(String, String)] = [], timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        var headers = headers
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        return try await http.send(method, baseURL + path, headers: headers, body: body, timeout: timeout)
    }

    public func call(
        _ method: String, _ path: String, token: String? = nil, json: some Encodable,
        headers: [(String, String)] = []
    ) async throws -> HTTPResponse {
        try await call(method, path, token: token, body: Array(try JSON.encoder().encode(json)), headers: headers)
    }

    // MARK: Typed calls (they throw `UnexpectedResponse` on any other status)

    public func signUp(email: String, password: String = "correct-horse", name: String = "Test Customer") async throws -> API.User {
        try await call("POST", "/users", json: API.SignUpRequest(email: email, password: password, name: name)).expect(201)
    }

    public func login(email: String, password: String) async throws -> API.LoginResponse {
        try await call("POST", "/auth/login", json: API.LoginRequest(email: email, password: password)).expect(200)
    }

    /// Signs up a fresh customer and signs in: the common first step.
    public func newCustomer(_ label: String = "customer") async throws -> Session {
        let email = "\(label)-\(ID.make("u").dropFirst(2))@example.com"
        let password = "correct-horse"
        let user = try await signUp(email: email, password: password, name: label)
        let login = try await login(email: email, password: password)
        return Session(user: user, token: login.token, password: password)
    }

    public func createProduct(
        _ request: API.CreateProductRequest, adminToken: String
    ) async throws -> API.Product {
        try await call("POST", "/products", token: adminToken, json: request).expect(201)
    }

    public func inventory(_ productId: String) async throws -> API.Inventory {
        try await call("GET", "/inventory/\(productId)").expect(200)
    }

    public func placeOrder(
        _ items: [(productId: String, quantity: Int)], card: String = SimulatedCardProcessor.approvedCard,
        token: String, idempotencyKey: String? = nil
    ) async throws -> HTTPResponse {
        let request = API.PlaceOrderRequest(
            items: items.map { API.OrderItemRequest(productId: $0.productId, quantity: $0.quantity) },
            paymentMethod: API.PaymentMethod(card: card))
        return try await call("POST", "/orders", token: token, json: request,
                              headers: idempotencyKey.map { [("Idempotency-Key", $0)] } ?? [])
    }

    public func order(_ id: String, token: String) async throws -> API.Order {
        try await call("GET", "/orders/\(id)", token: token).expect(200)
    }

    /// `GET /orders/{id}` with `Prefer: wait=N`: a pending order is
    /// answered when it is decided, or after `wait` as it then is (stage 4
    /// on; earlier stages answer at once, as the RFC lets them).
    /// `applied` says whether the server honoured the wait.
    public func order(_ id: String, token: String, wait: Int) async throws -> (order: API.Order, applied: Bool) {
        // The client's own deadline must outlast the server's wait.
        let response = try await call("GET", "/orders/\(id)", token: token, headers: [("Prefer", "wait=\(wait)")],
                                      timeout: .seconds(wait + 10))
        return (try response.expect(200), response.header("Preference-Applied") == "wait=\(wait)")
    }

    /// Waits until the order has left `pending`, or fails at the deadline.
    /// Asynchronous stages decide later than the request; stage 1 has
    /// already decided when it answers. Each request asks the server to
    /// hold it until the decision (`Prefer: wait`); a server that does not
    /// is asked again every 20 ms.
    public func decidedOrder(_ id: String, token: String, within deadline: Duration = .seconds(10)) async throws -> API.Order {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        var lastError: String?
        while true {
            let left = end - clock.now
            let wait = min(PreferredWaitLimit.seconds, max(1, Int(left.components.seconds)))
            var honoured = false
            do {
                let (order, applied) = try await self.order(id, token: token, wait: wait)
                if order.status.isDecided { return order }
                honoured = applied
            } catch {
                lastError = "\(error)"
            }
            if clock.now >= end { throw Poll.TimedOut(what: "order \(id) is decided", after: deadline, lastError: lastError) }
            if !honoured { try await Task.sleep(for: .milliseconds(20)) }
        }
    }
}

/// The longest `Prefer: wait` the contract honours, in seconds.
public enum PreferredWaitLimit {
    public static let seconds = 30
}

/// A signed-in user.
public struct Session: Sendable {
    public let user: API.User
    public let token: String
    public let password: String
    public init(user: API.User, token: String, password: String) {
        self.user = user; self.token = token; self.password = password
    }
}

public struct UnexpectedResponse: Error, CustomStringConvertible {
    public let expected: Int
    public let response: HTTPResponse
    public var description: String { "expected HTTP \(expected), got \(response.status): \(response.text.prefix(500))" }
}

extension HTTPResponse {
    /// Decodes the body after checking the status.
    public func expect<T: Decodable>(_ status: Int, as type: T.Type = T.self) throws -> T {
        guard self.status == status else { throw UnexpectedResponse(expected: status, response: self) }
        return try decode(type)
    }

    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSON.decoder().decode(type, from: Data(body))
    }

    /// The contract's error body, if this is one.
    public var error: ErrorBody.Detail? { (try? decode(ErrorBody.self))?.error }
}

/// Waiting for something that happens asynchronously: ask again and again
/// until it is true or the deadline passes. Never a fixed sleep: a fast
/// system passes at once, a slow one gets the whole deadline.
public enum Poll {
    public struct TimedOut: Error, CustomStringConvertible {
        public let what: String
        public let after: Duration
        public let lastError: String?
        public var description: String { "timed out after \(after) waiting until \(what)" + (lastError.map { " (last error: \($0))" } ?? "") }
    }

    @discardableResult
    public static func until<T>(
        _ what: String, within deadline: Duration, every interval: Duration = .milliseconds(20),
        _ probe: () async throws -> T?
    ) async throws -> T {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        var lastError: String?
        while true {
            do {
                if let value = try await probe() { return value }
            } catch {
                lastError = "\(error)"
            }
            if clock.now >= end { throw TimedOut(what: what, after: deadline, lastError: lastError) }
            try await Task.sleep(for: interval)
        }
    }
}
