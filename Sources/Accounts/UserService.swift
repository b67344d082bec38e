import Auth
import Common
import Foundation
import GRDB
import Hummingbird
import Logging
import ShopServer
import Storage

/// The user service: accounts in a database of its own, behind a small REST
/// API of its own. It runs as its own process from stage 2 on
/// (`stage-N serve user`); nothing else reads its tables.
///
///     POST /users            sign up (201 user)
///     POST /auth/login       sign in (200 token)
///     GET  /users/me         the caller
///     GET  /users/{id}       a user: the caller themself, or anyone for an administrator
///     GET  /health
public enum UserService {
    public static func build(stage: Int, settings: Settings, dataDir: URL, logger: Logger) async throws -> Router<ShopRequestContext> {
        try await build(stage: stage, settings: settings, dataDir: dataDir, db: openDatabase(dataDir: dataDir), logger: logger)
    }

    /// `users.sqlite`, with whatever tables a later stage adds beside the
    /// accounts (stage 4: the outbox).
    public static func openDatabase(dataDir: URL, adding more: [Migration] = []) throws -> DatabasePool {
        try SQLiteStore.openPool(at: dataDir.appendingPathComponent("users.sqlite"), migrations: AccountsSchema.migrations + more)
    }

    /// `afterSignUp` runs in the new account's transaction (stage 4: the
    /// `user.registered` message goes to the outbox there), with the
    /// request's id (stage 6's event carries it); `committed` after that
    /// transaction (stage 4: the outbox relay is woken).
    public static func build(
        stage: Int, settings: Settings, dataDir: URL, db: any DatabaseWriter, logger: Logger,
        afterSignUp: (@Sendable (Database, API.User, _ requestId: String) throws -> Void)? = nil,
        committed: (@Sendable () -> Void)? = nil
    ) async throws -> Router<ShopRequestContext> {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let accounts = await AccountStore(db: db, credentials: credentials)
        try await accounts.ensureAdmin(email: credentials.adminEmail, password: credentials.adminPassword, logger: logger)
        let auth = Authenticator(signer: credentials.signer)

        let router = ShopServerRunner.makeRouter()
        router.post("/users") { request, context in
            var request = request
            let requestId = context.requestId
            var inTransaction: (@Sendable (Database, API.User) throws -> Void)?
            if let afterSignUp {
                inTransaction = { db, user in try afterSignUp(db, user, requestId) }
            }
            let user = try await accounts.signUp(request.decodeJSON(API.SignUpRequest.self), inSameTransaction: inTransaction)
            committed?()
            return Reply.json(user, status: .created)
        }
        router.post("/auth/login") { request, _ in
            var request = request
            return Reply.json(try await accounts.login(request.decodeJSON(API.LoginRequest.self)))
        }
        router.get("/users/me") { request, context in
            Reply.json(try await accounts.user(id: auth.principal(request, context: context).userId))
        }
        router.get("/users/:id") { request, context in
            let principal = try auth.principal(request, context: context)
            let id = try context.parameters.id("id")
            // Someone else's account answers like a missing one.
            guard principal.isAdmin || principal.userId == id else { throw ShopError.notFound("user \(id)") }
            return Reply.json(try await accounts.user(id: id))
        }
        router.get("/health") { _, _ in
            Reply.json(API.Health(stage: stage, services: ["user": .up]))
        }
        return router
    }
}
