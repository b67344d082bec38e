import Checkout
import Common
import Hummingbird
import ShopServer

/// The catalogue now lives in the product service; stock stays here.
struct CatalogController: CatalogueEndpoints {
    let products: ProductClient
    let inventory: Stock
    let auth: Authenticator

    func list(_ request: Request, context: ShopRequestContext) async throws -> Response {
        Reply.json(API.ItemList(items: try await products.list(requestId: context.requestId)))
    }

    func get(_ request: Request, context: ShopRequestContext) async throws -> Response {
        Reply.json(try await products.product(id: try context.parameters.id("id"), requestId: context.requestId))
    }

    /// The product service creates the product, then its stock row is made
    /// here. No transaction spans the two: if this process dies in between,
    /// the product exists without a stock row, and `GET /inventory/{id}`
    /// answers 404 for it (stage 4's outbox closes the gap). The initial
    /// stock is checked first, so a bad one creates nothing.
    func create(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let (_, token) = try auth.bearer(request, context: context)
        var request = request
        let body = try await request.decodeJSON(API.CreateProductRequest.self)
        let stock = try Validate.initialStock(body.initialStock ?? 0)
        let product = try await products.create(body, token: token, requestId: context.requestId)
        try await inventory.create(productId: product.id, initialStock: stock)
        return Reply.json(product, status: .created)
    }

    func update(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let (_, token) = try auth.bearer(request, context: context)
        let id = try context.parameters.id("id")
        var request = request
        let body = try await request.decodeJSON(API.UpdateProductRequest.self)
        return Reply.json(try await products.update(id: id, body, token: token, requestId: context.requestId))
    }
}
