import Auth
import Foundation
import Logging

/// What signs and checks tokens, and who the first administrator is: the
/// same at every stage, made from the process's `Settings` at start.
public struct Credentials: Sendable {
    public let jwtSecret: String
    public let tokenLifetimeSeconds: Int
    public let adminEmail: String
    public let adminPassword: String
    public let bcryptCost: UInt8
    /// One signer per process: it remembers the tokens it has verified, so
    /// every part of the process must share it.
    public let signer: TokenSigner

    init(jwtSecret: String, tokenLifetimeSeconds: Int, adminEmail: String, adminPassword: String, bcryptCost: UInt8) {
        self.jwtSecret = jwtSecret
        self.tokenLifetimeSeconds = tokenLifetimeSeconds
        self.adminEmail = adminEmail
        self.adminPassword = adminPassword
        self.bcryptCost = bcryptCost
        self.signer = TokenSigner(secret: jwtSecret, lifetimeSeconds: tokenLifetimeSeconds)
    }

    public static let defaultAdminEmail = "admin@shop.local"
    public static let defaultAdminPassword = "admin-password"

    /// `JWT_SECRET` unset means a development secret: generated once, kept
    /// in the data folder (so tokens survive a restart), and announced with
    /// a warning, because it must never reach production.
    public static func load(dataDir: URL, settings: Settings, logger: Logger) throws -> Credentials {
        let secret: String
        if let fromEnv = settings.jwtSecret {
            secret = fromEnv
        } else {
            var file = dataDir.appendingPathComponent("dev-jwt-secret")
            // A service of a multi-process stage keeps its data in a folder of
            // the stage's (.data/stage-2/product): it shares the stage's secret,
            // also when started again by hand.
            let stageFile = dataDir.deletingLastPathComponent().appendingPathComponent("dev-jwt-secret")
            if let existing = try? String(contentsOf: file, encoding: .utf8), existing.count >= 32 {
                secret = existing
            } else if let shared = try? String(contentsOf: stageFile, encoding: .utf8), shared.count >= 32 {
                secret = shared
                file = stageFile
            } else {
                var rng = SystemRandomNumberGenerator()
                secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
                try secret.write(to: file, atomically: true, encoding: .utf8)
            }
            logger.warning("JWT_SECRET is not set: using a generated development secret", metadata: ["file": .string(file.path)])
        }
        if settings.adminPassword == defaultAdminPassword {
            logger.warning("the administrator uses the default password: set ADMIN_PASSWORD")
        }
        return Credentials(
            jwtSecret: secret,
            tokenLifetimeSeconds: settings.tokenLifetimeSeconds,
            adminEmail: settings.adminEmail,
            adminPassword: settings.adminPassword,
            bcryptCost: settings.bcryptCost)
    }

    public var hasher: PasswordHasher { PasswordHasher(cost: bcryptCost) }
}
