import Common
import Crypto
import Foundation

/// Who is calling, as the token says. Every service that checks a token
/// gets this, never the token's raw JSON.
public struct Principal: Sendable, Hashable, Codable {
    public let userId: String
    public let email: String
    /// The name the customer gave, so that a service can address them
    /// (emails, invoices) without asking the user service.
    public let name: String
    public let role: API.Role
    public init(userId: String, email: String, name: String, role: API.Role) {
        self.userId = userId; self.email = email; self.name = name; self.role = role
    }
    public var isAdmin: Bool { role == .admin }
}

/// Signed tokens (JWT, HS256). The signature is an HMAC over the header and
/// the claims with a secret only the shop knows: any change to the claims,
/// or a token signed with another secret, fails verification.
///
/// From stage 3 the gateway verifies tokens at the edge with the same type.
public struct TokenSigner: Sendable {
    private let key: SymmetricKey
    public let issuer: String
    public let lifetimeSeconds: Int
    private let verified = VerifiedTokens()

    public init(secret: String, issuer: String = "shop", lifetimeSeconds: Int = 3600) {
        self.key = SymmetricKey(data: Array(secret.utf8))
        self.issuer = issuer
        self.lifetimeSeconds = lifetimeSeconds
    }

    struct Header: Codable { var alg = "HS256"; var typ = "JWT" }
    struct Claims: Codable {
        var iss: String
        var sub: String
        var email: String
        var name: String?
        var role: API.Role
        var iat: Int
        var exp: Int
    }

    private static let encodedHeader: String = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return Base64URL.encode(Array(try! encoder.encode(Header())))
    }()

    public func sign(_ principal: Principal, now: Date = Date()) -> String {
        let issued = Int(now.timeIntervalSince1970)
        let claims = Claims(iss: issuer, sub: principal.userId, email: principal.email, name: principal.name, role: principal.role,
                            iat: issued, exp: issued + lifetimeSeconds)
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding this plain struct cannot fail.
        let payload = Base64URL.encode(Array(try! encoder.encode(claims)))
        let signingInput = Self.encodedHeader + "." + payload
        let signature = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        return signingInput + "." + Base64URL.encode(signature)
    }

    public enum Failure: Error, Equatable, Sendable {
        case malformed, wrongAlgorithm, badSignature, expired, wrongIssuer
    }

    /// Checks the signature first, then the claims: a token whose signature
    /// is wrong tells nothing about what it claims.
    public func verify(_ token: String, now: Date = Date()) -> Result<Principal, Failure> {
        let seconds = Int(now.timeIntervalSince1970)
        if let known = verified.lookup(token), seconds < known.expires { return .success(known.principal) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let signature = Base64URL.decode(parts[2]),
              let headerBytes = Base64URL.decode(parts[0]), let claimBytes = Base64URL.decode(parts[1])
        else { return .failure(.malformed) }
        // "alg" must be ours: refusing "none" and every other algorithm closes
        // the classic JWT downgrade hole. Our own tokens carry exactly our
        // header, which is recognised without parsing it.
        if parts[0] != Self.encodedHeader {
            guard let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)), header.alg == "HS256"
            else { return .failure(.wrongAlgorithm) }
        }
        // Compared in constant time (no early exit at the first differing
        // byte), so response times cannot guide a forger byte by byte.
        let signingInput = Array((parts[0] + "." + parts[1]).utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signingInput, using: key)
        else { return .failure(.badSignature) }
        guard let claims = try? JSONDecoder().decode(Claims.self, from: Data(claimBytes)) else { return .failure(.malformed) }
        guard claims.iss == issuer else { return .failure(.wrongIssuer) }
        guard seconds < claims.exp else { return .failure(.expired) }
        let principal = Principal(userId: claims.sub, email: claims.email, name: claims.name ?? "", role: claims.role)
        verified.remember(token, .init(principal: principal, expires: claims.exp))
        return .success(principal)
    }
}
