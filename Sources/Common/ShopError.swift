/// The stable error codes of the contract. Clients branch on these strings,
/// so a code never changes once published; the message may.
public enum ErrorCode: String, Codable, Sendable, Hashable {
    case invalidRequest = "invalid_request"
    case unknownProduct = "unknown_product"
    case unauthorized
    case invalidCredentials = "invalid_credentials"
    case forbidden
    case notFound = "not_found"
    /// The path is served, but not with this method (405, with `Allow`).
    case methodNotAllowed = "method_not_allowed"
    case invoiceNotReady = "invoice_not_ready"
    case emailTaken = "email_taken"
    case skuTaken = "sku_taken"
    case orderNotCancellable = "order_not_cancellable"
    case orderNotShippable = "order_not_shippable"
    case idempotencyKeyReused = "idempotency_key_reused"
    /// Stage 5+: retrying a job that has not failed.
    case jobNotFailed = "job_not_failed"
    /// Stage 7+: replaying a consumer group that acts on the world.
    case groupNotReplayable = "group_not_replayable"
    case payloadTooLarge = "payload_too_large"
    case rateLimited = "rate_limited"
    case unavailable
    case internalError = "internal_error"

    /// The HTTP status that fits each code. Kept next to the codes so that
    /// the mapping lives in exactly one place.
    public var httpStatus: Int {
        switch self {
        case .invalidRequest, .unknownProduct: 400
        case .unauthorized, .invalidCredentials: 401
        case .forbidden: 403
        case .notFound, .invoiceNotReady: 404
        case .methodNotAllowed: 405
        case .emailTaken, .skuTaken, .orderNotCancellable, .orderNotShippable, .idempotencyKeyReused, .jobNotFailed, .groupNotReplayable: 409
        case .payloadTooLarge: 413
        case .rateLimited: 429
        case .unavailable: 503
        case .internalError: 500
        }
    }
}

/// Every error that can reach a client. The HTTP layer turns it into the
/// contract's body `{"error": {"code", "message"}}` in one place.
public struct ShopError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: ErrorCode
    /// A sentence a person can act on. For `invalid_request` it names the field.
    public let message: String
    /// Seconds a client should wait before retrying (429 and 503 only).
    public let retryAfter: Int?

    public init(_ code: ErrorCode, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var status: Int { code.httpStatus }
    public var description: String { "\(code.rawValue): \(message)" }

    // The common cases, so call sites read like the contract.
    public static func invalid(_ field: String, _ problem: String) -> ShopError {
        ShopError(.invalidRequest, "\(field) \(problem)")
    }
    public static func notFound(_ what: String) -> ShopError {
        ShopError(.notFound, "\(what) was not found")
    }
    public static let unauthorized = ShopError(
        .unauthorized, "a valid bearer token is required: sign in with POST /auth/login and send 'Authorization: Bearer <token>'")
    public static let invalidCredentials = ShopError(.invalidCredentials, "the email or password is incorrect")
    public static func forbidden(_ why: String) -> ShopError { ShopError(.forbidden, why) }
    public static func unavailable(_ dependency: String, retryAfter: Int = 1) -> ShopError {
        ShopError(.unavailable, "\(dependency) is unavailable; retry in \(retryAfter) s", retryAfter: retryAfter)
    }
    public static let payloadTooLarge = ShopError(
        .payloadTooLarge, "the request body is larger than \(Limits.maxBodyBytes) bytes (1 MiB)")
}

/// The JSON body of every error response.
public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public let code: String
        public let message: String
    }
    public let error: Detail

    public init(_ error: ShopError) {
        self.error = Detail(code: error.code.rawValue, message: error.message)
    }
}
