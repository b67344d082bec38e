import Auth
import Common
import Hummingbird
import ShopServer

public struct OrderController: Sendable {
    let orders: OrderService
    let auth: Authenticator

    func place(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        let key = try request.headers[.idempotencyKey].map { key throws(ShopError) in try Validate.idempotencyKey(key) }
        var request = request
        let body = try await request.decodeJSON(API.PlaceOrderRequest.self)
        switch try await orders.place(body, idempotencyKey: key, by: principal, logger: context.logger) {
        case .created(let order): return Reply.json(order, status: .created)
        case .replayed(let order): return Reply.json(order, status: .ok)
        }
    }

    func get(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        return Reply.json(try await orders.order(id: try context.parameters.id("id"), for: principal))
    }

    func list(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        let query = try OrderListQuery(request.uri.queryParameters)
        if query.all && !principal.isAdmin {
            throw ShopError.forbidden("only an administrator may list every customer's orders (all=true)")
        }
        return Reply.json(try await orders.list(
            userId: query.all ? nil : principal.userId, limit: query.limit, startingAfter: query.startingAfter))
    }

    func cancel(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        return Reply.json(try await orders.cancel(orderId: try context.parameters.id("id"), by: principal), status: .accepted)
    }

    func ship(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        return Reply.json(try await orders.ship(orderId: try context.parameters.id("id")), status: .accepted)
    }

    func invoice(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        return Reply.html(try await orders.invoice(orderId: try context.parameters.id("id"), for: principal))
    }
}
