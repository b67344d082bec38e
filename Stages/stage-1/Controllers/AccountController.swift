import Checkout
import Common
import Hummingbird
import ShopServer

/// HTTP in, HTTP out: controllers read the request, call a service and
/// shape the answer. No business rule lives here.
struct AccountController: Sendable {
    let accounts: AccountService
    let orders: OrderService
    let notifications: NotificationService
    let auth: Authenticator

    func signUp(_ request: Request, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.SignUpRequest.self)
        return Reply.json(try await accounts.signUp(body), status: .created)
    }

    func login(_ request: Request, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.LoginRequest.self)
        return Reply.json(try await accounts.login(body))
    }

    func me(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        return Reply.json(try await accounts.user(id: principal.userId).api)
    }

    /// An aggregate over accounts, orders and notifications. Here it is
    /// three reads of one database; at stage 3 the gateway composes it from
    /// three services.
    func summary(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        async let user = accounts.user(id: principal.userId)
        async let recent = orders.list(userId: principal.userId, limit: 5, startingAfter: nil)
        async let count = notifications.count(userId: principal.userId)
        return Reply.json(API.UserSummary(user: try await user.api, recentOrders: try await recent.items, notifications: try await count))
    }
}
