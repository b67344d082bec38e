import Common
import Discovery

/// The product service, as the order service sees it: found through
/// discovery now, not at an address in its configuration. Every call goes to
/// the next registered instance, and one that does not answer is skipped.
/// The order service only prices orders with it; reading and editing the
/// catalogue goes through the gateway straight to the product service.
struct ProductClient: Sendable {
    let service: DiscoveredService
}

/// Orders are priced by asking the product service for every product of the
/// order in one request. If no instance answers, nobody can order: the 503
/// reaches the customer, and nothing is stored.
extension ProductClient: Catalogue {
    func products(ids: [String], requestId: String) async throws -> [String: API.Product] {
        let list: API.ItemList<API.Product> = try await service.get("/products?ids=\(ids.joined(separator: ","))", requestId: requestId)
        return Dictionary(list.items.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
