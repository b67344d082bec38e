import Auth
import Common
import Hummingbird
import Logging
import ShopServer

/// What changes an order. Stages 1 to 3's `OrderFlow` does it all in the
/// request; stage 4's (the saga) stores, publishes and answers 201 pending.
/// Both are mounted by the same routes.
/// What a stage's checkout does with the order routes. `requestId` is the
/// request's id, for what the change announces (stage 6's events carry it).
public protocol OrderCommands: Sendable {
    func place(_ request: API.PlaceOrderRequest, idempotencyKey: String?, by principal: Principal, requestId: String, logger: Logger) async throws -> OrderQueries.Placement
    func cancel(orderId: String, by principal: Principal, requestId: String) async throws -> API.Order
    func ship(orderId: String, requestId: String) async throws -> API.Order
}

struct OrderController<Commands: OrderCommands>: Sendable {
    let orders: Commands
    let auth: Authenticator

    func place(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        let key = try request.headers[.idempotencyKey].map { key throws(ShopError) in try Validate.idempotencyKey(key) }
        var request = request
        let body = try await request.decodeJSON(API.PlaceOrderRequest.self)
        switch try await orders.place(body, idempotencyKey: key, by: principal, requestId: context.requestId, logger: context.logger) {
        case .created(let order): return Reply.json(order, status: .created)
        case .replayed(let order): return Reply.json(order, status: .ok)
        }
    }

    func cancel(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        return Reply.json(try await orders.cancel(orderId: try context.parameters.id("id"), by: principal, requestId: context.requestId), status: .accepted)
    }

    func ship(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        return Reply.json(try await orders.ship(orderId: try context.parameters.id("id"), requestId: context.requestId), status: .accepted)
    }
}

/// Reading orders: the same routes for every stage that keeps orders as rows.
struct OrderReadController: Sendable {
    let queries: OrderQueries
    let auth: Authenticator
    let honoursWait: Bool

    func get(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        let id = try context.parameters.id("id")
        guard honoursWait, let wait = PreferredWait(request.headers) else {
            return Reply.json(try await queries.order(id: id, for: principal))
        }
        var response = Reply.json(try await queries.order(id: id, for: principal, waitingUpTo: wait.duration))
        response.headers[.preferenceApplied] = wait.applied
        return response
    }

    func list(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        let query = try OrderListQuery(request.uri.queryParameters)
        if query.all && !principal.isAdmin {
            throw ShopError.forbidden("only an administrator may list every customer's orders (all=true)")
        }
        return Reply.json(try await queries.list(
            userId: query.all ? nil : principal.userId, limit: query.limit, startingAfter: query.startingAfter))
    }

    func invoice(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        return Reply.html(try await queries.invoice(orderId: try context.parameters.id("id"), for: principal))
    }
}

extension Router where Context == ShopRequestContext {
    /// `POST /orders`, `POST /orders/{id}/cancel`, `POST /orders/{id}/ship`.
    public func addOrderWriteRoutes(_ commands: some OrderCommands, auth: Authenticator) {
        let writes = OrderController(orders: commands, auth: auth)
        post("/orders", use: writes.place)
        post("/orders/:id/cancel", use: writes.cancel)
        post("/orders/:id/ship", use: writes.ship)
    }

    /// `GET /orders`, `GET /orders/{id}`, `GET /orders/{id}/invoice`.
    /// `waitForDecisions`: `GET /orders/{id}` honours `Prefer: wait=N` (the
    /// stages that decide after answering, 4 on, whose `OrderFlow` posts
    /// each decision to `queries.decisions`).
    public func addOrderReadRoutes(_ queries: OrderQueries, auth: Authenticator, waitForDecisions: Bool = false) {
        let reads = OrderReadController(queries: queries, auth: auth, honoursWait: waitForDecisions)
        get("/orders", use: reads.list)
        get("/orders/:id", use: reads.get)
        get("/orders/:id/invoice", use: reads.invoice)
    }
}
