import Auth
import Common
import Hummingbird
import ShopServer

/// `GET /inventory/{productId}` and the administrator's restock.
public struct InventoryController: Sendable {
    let inventory: Stock
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
    let reports: Reports
    let auth: Authenticator

    func sales(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        return Reply.json(try await reports.sales())
    }
}

// The routes of the order side that stay the same when stage 4 moves them
// into services of their own: mounted by the monolith's router (stages 1 to
// 3) or by the inventory, notification and order services (stage 4 on).
extension Router where Context == ShopRequestContext {
    /// `GET /inventory/{productId}` (no token needed) and the restock.
    public func addInventoryRoutes(_ inventory: Stock, auth: Authenticator) {
        let stock = InventoryController(inventory: inventory, auth: auth)
        get("/inventory/:productId", use: stock.get)
        post("/inventory/:productId/restock", use: stock.restock)
    }

    /// `GET /notifications`: the caller's.
    public func addNotificationRoutes(_ notifications: Notifications, auth: Authenticator) {
        get("/notifications", use: NotificationController(notifications: notifications, auth: auth).list)
    }

    /// `GET /reports/sales`, for administrators.
    public func addReportRoutes(_ reports: Reports, auth: Authenticator) {
        get("/reports/sales", use: ReportController(reports: reports, auth: auth).sales)
    }
}
