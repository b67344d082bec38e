import Catalog
import Checkout
import Common
import Hummingbird
import ShopServer

struct CatalogController: CatalogueEndpoints {
    let products: ProductStore
    let inventory: Stock
    let auth: Authenticator

    func list(_ request: Request, context: ShopRequestContext) async throws -> Response {
        Reply.json(API.ItemList(items: try await products.list()))
    }

    func get(_ request: Request, context: ShopRequestContext) async throws -> Response {
        Reply.json(try await products.product(id: try context.parameters.id("id")))
    }

    /// The product and its stock row in one transaction.
    func create(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        var request = request
        let body = try await request.decodeJSON(API.CreateProductRequest.self)
        let stock = try Validate.initialStock(body.initialStock ?? 0)
        let inventory = self.inventory
        let product = try await products.create(body) { db, product in
            try inventory.create(productId: product.id, initialStock: stock, in: db)
        }
        return Reply.json(product, status: .created)
    }

    func update(_ request: Request, context: ShopRequestContext) async throws -> Response {
        _ = try auth.admin(request, context: context)
        let id = try context.parameters.id("id")
        var request = request
        let body = try await request.decodeJSON(API.UpdateProductRequest.self)
        return Reply.json(try await products.update(id: id, body))
    }
}
