import Common
import Foundation
import Observability
import Tracing

/// One service calling another over HTTP, the contract's way: a deadline
/// on every call, the other service's error body passed on as it is (a 409
/// from the user service is a 409 for our caller too), and a service that
/// cannot be reached turned into the contract's 503 `unavailable` with
/// `Retry-After`, never a hang.
public struct ServiceClient: Sendable {
    /// How the service is named in messages: "the product service".
    public let name: String
    public let baseURL: String
    let http: HTTPClient
    let timeout: Duration

    /// How the service is named in metrics: `product`.
    public let target: String

    public init(name: String, baseURL: String, timeout: Duration = .seconds(2), http: HTTPClient = HTTPClient()) {
        self.name = name
        var target = Substring(name)
        if target.hasPrefix("the ") { target = target.dropFirst(4) }
        if target.hasSuffix(" service") { target = target.dropLast(8) }
        self.target = String(target)
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.timeout = timeout
        self.http = http
    }

    public func get<T: Decodable>(_ path: String, token: String? = nil, requestId: String? = nil) async throws -> T {
        try decode(await send("GET", path, body: nil, token: token, requestId: requestId))
    }

    public func send<T: Decodable>(
        _ method: String, _ path: String, json: some Encodable, token: String? = nil, requestId: String? = nil
    ) async throws -> T {
        let body = Array(try JSON.encoder().encode(json))
        return try decode(await send(method, path, body: body, token: token, requestId: requestId))
    }

    /// True when the service answers its health check in time.
    public func isHealthy(timeout: Duration = .seconds(1)) async -> Bool {
        (try? await http.send("GET", baseURL + "/health", timeout: timeout).status) == 200
    }

    func send(_ method: String, _ path: String, body: [UInt8]?, token: String?, requestId: String?) async throws -> HTTPResponse {
        do {
            return try await sendRaw(method, path, body: body, token: token, requestId: requestId)
        } catch {
            // Refused, reset, or no answer within the deadline: the service is
            // down or overloaded. Say which, and when to come back.
            throw ShopError.unavailable(name)
        }
    }

    /// The request as it is, transport errors included (`HTTPClientError`),
    /// for a caller that retries elsewhere (a client balancing over several
    /// instances).
    /// `timeout` replaces the client's for this call (one that is meant to
    /// take long, such as a request that waits for news).
    public func sendRaw(
        _ method: String, _ path: String, body: [UInt8]?, token: String?, requestId: String?,
        headers extra: [(String, String)] = [], timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        // A span of its own, so that the service called names this call as
        // its parent; its `traceparent` goes with the request.
        try await Observability.withSpan("\(method) \(target)", ofKind: .client) { _ in
            var headers = extra
            if let token { headers.append(("Authorization", "Bearer \(token)")) }
            if let requestId { headers.append(("X-Request-Id", requestId)) }
            Observability.inject(into: &headers, using: HeaderPairsCarrier())
            let started = ContinuousClock.now
            do {
                let response = try await http.send(method, baseURL + path, headers: headers, body: body, timeout: timeout ?? self.timeout)
                Self.record(target, outcome: response.status >= 500 ? "server_error" : "answered", since: started)
                return response
            } catch {
                Self.record(target, outcome: "unreachable", since: started)
                throw error
            }
        }
    }

    /// `shop_service_calls_total{target, outcome}` and
    /// `shop_service_call_duration_seconds{target}` (stage 2 on): every
    /// call one service makes to another, by the service called and how it
    /// went: `answered` (any status below 500: a 404 or a 409 is an answer),
    /// `server_error` (5xx) or `unreachable` (refused, reset, or no answer
    /// within the deadline). A service that is down shows as a rise of
    /// `unreachable` at its callers, before anyone reads a log.
    static func record(_ target: String, outcome: String, since started: ContinuousClock.Instant) {
        Observability.counter("shop_service_calls_total", [("target", target), ("outcome", outcome)]).increment()
        Observability.timer("shop_service_call_duration_seconds", [("target", target)]).record(since: started)
    }

    public func decode<T: Decodable>(_ response: HTTPResponse) throws -> T {
        if (200..<300).contains(response.status) {
            do { return try response.decode(T.self) } catch {
                throw ShopError(.internalError, "\(name) answered in an unexpected shape")
            }
        }
        if let detail = response.error, let code = ErrorCode(rawValue: detail.code), code != .internalError {
            throw ShopError(code, detail.message, retryAfter: response.header("Retry-After").flatMap(Int.init))
        }
        // A 5xx without the contract's body: the service is broken, which is
        // the same as unavailable for our caller.
        throw ShopError.unavailable(name)
    }
}
