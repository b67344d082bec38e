import Auth
import Common
import HTTPTypes
import Hummingbird

/// Reads `Authorization: Bearer <token>` and answers who is calling. A
/// missing, malformed, forged or expired token is the same 401 for the
/// caller (the reason is logged, not told: it would help an attacker).
public struct Authenticator: Sendable {
    public let signer: TokenSigner

    public init(signer: TokenSigner) { self.signer = signer }

    public func principal(_ request: Request, context: ShopRequestContext) throws(ShopError) -> Principal {
        try bearer(request, context: context).principal
    }

    /// The verified caller and the token itself, for a service that passes
    /// the caller's token on to another service.
    public func bearer(_ request: Request, context: ShopRequestContext) throws(ShopError) -> (principal: Principal, token: String) {
        guard let header = request.headers[.authorization] else { throw .unauthorized }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { throw .unauthorized }
        let token = String(parts[1])
        if let verified = context.verified, verified.token == token { return verified }
        switch signer.verify(token) {
        case .success(let principal):
            return (principal, token)
        case .failure(let why):
            context.logger.info("token refused", metadata: ["reason": .string("\(why)")])
            throw .unauthorized
        }
    }

    /// Admin-only endpoints: 401 without a valid token, 403 with a
    /// customer's (the endpoint exists; the caller may not use it).
    public func admin(_ request: Request, context: ShopRequestContext) throws(ShopError) -> Principal {
        let principal = try principal(request, context: context)
        guard principal.isAdmin else { throw .forbidden("this endpoint is for administrators") }
        return principal
    }
}
