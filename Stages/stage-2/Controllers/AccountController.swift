import Checkout
import Common
import Hummingbird
import ShopServer

/// Accounts now live in the user service; this controller asks it.
struct AccountController: AccountEndpoints {
    let users: UserClient
    let checkout: OrderSide
    let auth: Authenticator

    /// The user service creates the account; the welcome email is written
    /// here afterwards. Two databases, no shared transaction: if this process
    /// dies in between, the account exists without its email. Stage 4
    /// closes that gap with messages and an outbox.
    func signUp(_ request: Request, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.SignUpRequest.self)
        let user = try await users.signUp(body, requestId: context.requestId)
        try await checkout.notifications.recordWelcome(user)
        return Reply.json(user, status: .created)
    }

    func login(_ request: Request, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.LoginRequest.self)
        return Reply.json(try await users.login(body, requestId: context.requestId))
    }

    func me(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let (_, token) = try auth.bearer(request, context: context)
        return Reply.json(try await users.me(token: token, requestId: context.requestId))
    }

    /// The user from the user service, the rest from this database, asked
    /// at the same time.
    func summary(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let (principal, token) = try auth.bearer(request, context: context)
        async let user = users.me(token: token, requestId: context.requestId)
        async let recent = checkout.orders.list(userId: principal.userId, limit: 5, startingAfter: nil)
        async let count = checkout.notifications.count(userId: principal.userId)
        return Reply.json(API.UserSummary(user: try await user, recentOrders: try await recent.items, notifications: try await count))
    }
}
