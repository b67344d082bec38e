import Auth
import Common
import Foundation
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
public enum UserServiceApp {
    public static func build(stage: Int, dataDir: URL, logger: Logger) async throws -> Router<ShopRequestContext> {
        let settings = try ShopSettings.load(dataDir: dataDir, logger: logger)
        var migrator = DatabaseMigrator()
        AccountsSchema.register(in: &migrator)
        let db = try SQLiteStore.openPool(at: dataDir.appendingPathComponent("users.sqlite"), migrator: migrator)
        let accounts = await AccountStore(db: db, settings: settings)
        try await accounts.ensureAdmin(email: settings.adminEmail, password: settings.adminPassword, logger: logger)
        let auth = Authenticator(signer: settings.signer)

        let router = ShopServerRunner.makeRouter()
        router.post("/users") { request, _ in
            var request = request
            return Reply.json(try await accounts.signUp(request.decodeJSON(API.SignUpRequest.self)), status: .created)
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
