import Common
import ShopClient

/// The product service, as the rest of the monolith sees it.
struct ProductClient: Sendable {
    let service: ServiceClient

    func list(requestId: String) async throws -> [API.Product] {
        try await (service.get("/products", requestId: requestId) as API.ItemList<API.Product>).items
    }

    func product(id: String, requestId: String) async throws -> API.Product {
        try await service.get("/products/\(id)", requestId: requestId)
    }

    func create(_ request: API.CreateProductRequest, token: String, requestId: String) async throws -> API.Product {
        try await service.send("POST", "/products", json: request, token: token, requestId: requestId)
    }

    func update(id: String, _ request: API.UpdateProductRequest, token: String, requestId: String) async throws -> API.Product {
        try await service.send("PATCH", "/products/\(id)", json: request, token: token, requestId: requestId)
    }
}

/// Orders are priced by asking the product service for every product of the
/// order in one request. If it is down, nobody can order: the 503 reaches
/// the customer, and nothing is stored.
extension ProductClient: Catalogue {
    func products(ids: [String], requestId: String) async throws -> [String: API.Product] {
        let list: API.ItemList<API.Product> = try await service.get("/products?ids=\(ids.joined(separator: ","))", requestId: requestId)
        return Dictionary(list.items.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
