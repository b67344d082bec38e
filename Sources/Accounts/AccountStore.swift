import Auth
import Common
import Foundation
import GRDB
import Logging
import ShopServer
import Storage

/// Accounts over the `users` table: sign-up, sign-in, the current user, the
/// first administrator. Stage 1 uses it inside the monolith; from stage 2 it
/// is the heart of the user service.
public struct AccountStore: Sendable {
    let db: any DatabaseWriter
    let hasher: PasswordHasher
    let signer: TokenSigner
    /// See `PasswordHasher.makeDecoy`.
    let decoyHash: String

    public init(db: any DatabaseWriter, credentials: Credentials) async {
        self.db = db
        self.hasher = credentials.hasher
        self.signer = credentials.signer
        self.decoyHash = await credentials.hasher.makeDecoy()
    }

    /// Creates a customer's account. `inSameTransaction` runs in the
    /// account's transaction: the monolith writes the welcome email there
    /// (both or neither); the user service has nothing to add.
    public func signUp(
        _ request: API.SignUpRequest,
        inSameTransaction: (@Sendable (Database, API.User) throws -> Void)? = nil
    ) async throws -> API.User {
        let email = try Validate.email(request.email)
        try Validate.password(request.password)
        let name = try Validate.name(request.name)
        let hash = await hasher.hash(request.password)
        let user = UserRecord(
            id: ID.make(ID.user), email: email, emailKey: Validate.normalizedEmail(email), name: name,
            passwordHash: hash, role: .customer, createdAt: Timestamp.now())
        do {
            try await db.write { db in
                try user.insert(db)
                try inSameTransaction?(db, user.api)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw ShopError(.emailTaken, "an account with the email \(email) already exists")
        }
        return user.api
    }

    public func login(_ request: API.LoginRequest) async throws -> API.LoginResponse {
        let key = Validate.normalizedEmail(request.email.trimmingCharacters(in: .whitespaces))
        let user = try await db.read { db in try UserRecord.filter(Column("emailKey") == key).fetchOne(db) }
        // Unknown email and wrong password cost the same and answer the same.
        let matches = await hasher.verify(request.password, against: user?.passwordHash ?? decoyHash)
        guard let user, matches else { throw ShopError.invalidCredentials }
        let token = signer.sign(Principal(userId: user.id, email: user.email, name: user.name, role: user.role))
        return API.LoginResponse(token: token, expiresIn: signer.lifetimeSeconds, user: user.api)
    }

    public func user(id: String) async throws -> API.User {
        guard let user = try await db.read({ db in try UserRecord.fetchOne(db, key: id) }) else {
            throw ShopError.notFound("user \(id)")
        }
        return user.api
    }

    /// The first administrator, from ADMIN_EMAIL / ADMIN_PASSWORD, created
    /// once. An existing account keeps its password.
    public func ensureAdmin(email: String, password: String, logger: Logger) async throws {
        let key = Validate.normalizedEmail(email)
        if try await db.read({ db in try UserRecord.filter(Column("emailKey") == key).fetchCount(db) }) > 0 { return }
        let admin = UserRecord(
            id: ID.make(ID.user), email: email, emailKey: key, name: "Administrator",
            passwordHash: await hasher.hash(password), role: .admin, createdAt: Timestamp.now())
        try await db.write { db in try admin.insert(db, onConflict: .ignore) }
        logger.notice("administrator account created", metadata: ["email": .string(email)])
    }
}

public enum AccountsSchema {
    public static let migrations = [
        Migration("accounts v1", sql: """
                -- Times are integer milliseconds since 1970, UTC. Users are keyed by a
                -- text id and never listed, so the table is its own primary-key index.
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    email TEXT NOT NULL,
                    emailKey TEXT NOT NULL UNIQUE,          -- lowercased: emails compare case-insensitively
                    name TEXT NOT NULL,
                    passwordHash TEXT NOT NULL,
                    role TEXT NOT NULL,
                    createdAt INTEGER NOT NULL
                ) WITHOUT ROWID;
                """),
    ]
}
