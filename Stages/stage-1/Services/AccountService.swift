import Auth
import Checkout
import Common
import Foundation
import Logging
import Storage

/// Sign-up, sign-in and the current user. Stage 2 moves exactly this into
/// its own process, the user service.
struct AccountService: Sendable {
    let db: DatabasePool
    let hasher: PasswordHasher
    let signer: TokenSigner
    let notifications: NotificationService
    /// See `PasswordHasher.makeDecoy`.
    let decoyHash: String

    func signUp(_ request: API.SignUpRequest) async throws -> API.User {
        let email = try Validate.email(request.email)
        try Validate.password(request.password)
        let name = try Validate.name(request.name)
        let hash = await hasher.hash(request.password)
        let user = UserRecord(
            id: ID.make(ID.user), email: email, emailKey: Validate.normalizedEmail(email), name: name,
            passwordHash: hash, role: .customer, createdAt: Timestamp.now())
        do {
            // The account and its welcome email in one transaction: the
            // monolith's privilege, which stage 2 gives up.
            try await db.write { [notifications] db in
                try user.insert(db)
                try notifications.record(.welcome, to: Recipient(userId: user.id, email: email, name: name), orderId: nil, in: db)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw ShopError(.emailTaken, "an account with the email \(email) already exists")
        }
        return user.api
    }

    func login(_ request: API.LoginRequest) async throws -> API.LoginResponse {
        let key = Validate.normalizedEmail(request.email.trimmingCharacters(in: .whitespaces))
        let user = try await db.read { db in try UserRecord.filter(Column("emailKey") == key).fetchOne(db) }
        // Unknown email and wrong password cost the same and answer the same.
        let matches = await hasher.verify(request.password, against: user?.passwordHash ?? decoyHash)
        guard let user, matches else { throw ShopError.invalidCredentials }
        let token = signer.sign(Principal(userId: user.id, email: user.email, name: user.name, role: user.role))
        return API.LoginResponse(token: token, expiresIn: signer.lifetimeSeconds, user: user.api)
    }

    func user(id: String) async throws -> UserRecord {
        guard let user = try await db.read({ db in try UserRecord.fetchOne(db, key: id) }) else {
            // A valid token for a user that no longer exists.
            throw ShopError.unauthorized
        }
        return user
    }

    /// The first administrator, from ADMIN_EMAIL / ADMIN_PASSWORD, created
    /// once. An existing account keeps its password.
    func ensureAdmin(email: String, password: String, logger: Logger) async throws {
        let key = Validate.normalizedEmail(email)
        if try await db.read({ db in try UserRecord.filter(Column("emailKey") == key).fetchCount(db) }) > 0 { return }
        let admin = UserRecord(
            id: ID.make(ID.user), email: email, emailKey: key, name: "Administrator",
            passwordHash: await hasher.hash(password), role: .admin, createdAt: Timestamp.now())
        try await db.write { db in try admin.insert(db, onConflict: .ignore) }
        logger.notice("administrator account created", metadata: ["email": .string(email)])
    }
}
