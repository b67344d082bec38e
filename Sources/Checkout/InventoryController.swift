import Common
import Hummingbird
import ShopServer

/// `GET /inventory/{productId}` and the administrator's restock.
public struct InventoryController: Sendable {
    let inventory: InventoryService
    let auth: Authenticator

    func get(_ request: Request, context: ShopRequestContext) async throws -> Response {
        Reply.json(try await inventory.inventory(productId: try context.parameters.id("productId")))
    }

    func restock(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        let id = try context.parameters.id("productId")
        var request = request
        let body = try await request.decodeJSON(API.RestockRequest.self)
        return Reply.json(try await inventory.restock(productId: id, quantity: body.quantity))
    }
}

/// `GET /reports/sales`, for administrators.
public struct ReportController: Sendable {
    let reports: ReportService
    let auth: Authenticator

    func sales(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        return Reply.json(try await reports.sales())
    }
}
