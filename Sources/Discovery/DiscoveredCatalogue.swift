import Common

/// The catalogue as the order service sees it from stage 3 on: the product
/// service, found through discovery: every call goes to the
/// next registered instance, and a dead one is skipped.
public struct DiscoveredCatalogue: Catalogue {
    let service: DiscoveredService

    public init(service: DiscoveredService) { self.service = service }

    /// Orders are priced by asking the product service for every product of
    /// the order in one request. If no instance answers, nobody can order:
    /// the 503 reaches the customer, and nothing is stored.
    public func products(ids: [String]) async throws -> [String: API.Product] {
        let list: API.ItemList<API.Product> = try await service.get("/products?ids=\(ids.joined(separator: ","))")
        return Dictionary(list.items.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
