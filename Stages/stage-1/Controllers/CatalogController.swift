import Common
import Hummingbird
import ShopServer

struct CatalogController: Sendable {
    let catalog: CatalogService
    let auth: Authenticator

    func list(_ request: Request, context: ShopRequestContext) async throws -> Response {
        Reply.json(API.ItemList(items: try await catalog.list()))
    }

    func get(_ request: Request, context: ShopRequestContext) async throws -> Response {
        Reply.json(try await catalog.product(id: try context.parameters.id("id")))
    }

    func create(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        var request = request
        let body = try await request.decodeJSON(API.CreateProductRequest.self)
        return Reply.json(try await catalog.create(body), status: .created)
    }

    func update(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        let id = try context.parameters.id("id")
        var request = request
        let body = try await request.decodeJSON(API.UpdateProductRequest.self)
        return Reply.json(try await catalog.update(id: id, body))
    }
}
