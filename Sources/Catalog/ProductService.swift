import Auth
import Common
import Foundation
import Hummingbird
import Logging
import ShopServer
import Storage

/// The product service: the catalogue in a database of its own, behind a
/// small REST API. It runs as its own process from stage 2 on
/// (`stage-N serve product`); stock is not here (it stays with orders until
/// stage 4 gives it a service of its own).
///
///     GET   /products              the catalogue; `?ids=a,b` for some products (pricing an order)
///     GET   /products/{id}
///     POST  /products              administrators
///     PATCH /products/{id}         administrators
///     GET   /health
public enum ProductService {
    public static func build(stage: Int, settings: Settings, dataDir: URL, logger: Logger) async throws -> Router<ShopRequestContext> {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let db = try SQLiteStore.openPool(at: dataDir.appendingPathComponent("products.sqlite"), migrations: CatalogSchema.migrations)
        let products = ProductStore(db: db)
        let auth = Authenticator(signer: credentials.signer)

        let router = ShopServerRunner.makeRouter()
        router.get("/products") { request, _ in
            if let ids = request.uri.queryParameters.get("ids") {
                let list = ids.split(separator: ",").map(String.init)
                guard list.count <= Limits.maxLinesPerOrder else { throw ShopError.invalid("ids", "must name at most \(Limits.maxLinesPerOrder) products") }
                let found = try await products.products(ids: list)
                return Reply.json(API.ItemList(items: list.compactMap { found[$0] }))
            }
            return Reply.json(API.ItemList(items: try await products.list()))
        }
        router.get("/products/:id") { _, context in
            Reply.json(try await products.product(id: context.parameters.id("id")))
        }
        router.post("/products") { request, context in
            _ = try auth.admin(request, context: context)
            var request = request
            return Reply.json(try await products.create(request.decodeJSON(API.CreateProductRequest.self)), status: .created)
        }
        router.patch("/products/:id") { request, context in
            _ = try auth.admin(request, context: context)
            let id = try context.parameters.id("id")
            var request = request
            return Reply.json(try await products.update(id: id, request.decodeJSON(API.UpdateProductRequest.self)))
        }
        router.get("/health") { _, _ in
            Reply.json(API.Health(stage: stage, services: ["product": .up]))
        }
        return router
    }
}
