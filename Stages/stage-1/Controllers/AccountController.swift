import Accounts
import Checkout
import Common
import Hummingbird
import ShopServer

/// HTTP in, HTTP out: controllers read the request, call the code that owns
/// the concern, and shape the answer. No business rule lives here.
struct AccountController: AccountEndpoints {
    let accounts: AccountStore
    let checkout: OrderSide
    let auth: Authenticator

    /// The account and its welcome email in one transaction: both or
    /// neither. The monolith's privilege; stage 2 gives it up.
    func signUp(_ request: Request, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.SignUpRequest.self)
        let notifications = checkout.notifications
        let user = try await accounts.signUp(body) { db, user in
            try notifications.record(.welcome, to: Recipient(userId: user.id, email: user.email, name: user.name), orderId: nil, in: db)
        }
        return Reply.json(user, status: .created)
    }

    func login(_ request: Request, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.LoginRequest.self)
        return Reply.json(try await accounts.login(body))
    }

    func me(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        return Reply.json(try await accounts.user(id: principal.userId))
    }

    /// An aggregate over accounts, orders and notifications. Here it is
    /// three reads of one database; at stage 3 the gateway composes it from
    /// three services.
    func summary(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        async let user = accounts.user(id: principal.userId)
        async let recent = checkout.orders.list(userId: principal.userId, limit: 5, startingAfter: nil)
        async let count = checkout.notifications.count(userId: principal.userId)
        return Reply.json(API.UserSummary(user: try await user, recentOrders: try await recent.items, notifications: try await count))
    }
}
