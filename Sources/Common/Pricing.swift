/// Where an order's prices and names come from when the catalogue is
/// another service's (stage 2 on; stage 1 reads its own products table).
public protocol Catalogue: Sendable {
    /// The products with these ids; unknown ids are simply absent.
    /// `requestId` is the customer's request's, passed on so that the
    /// product service's log line carries the same id.
    func products(ids: [String], requestId: String) async throws -> [String: API.Product]
}

/// Pricing copies each product's name, sku and price into the order when it
/// is placed, so that a later price change or rename never alters an order
/// already placed (contract). The catalogue is passed in: stage 1 reads it
/// from its own table, stage 2 on asks the product service.
public enum Pricing {
    public static func price(
        _ request: ValidOrderRequest, catalogue: [String: API.Product]
    ) throws(ShopError) -> [API.OrderItem] {
        var items: [API.OrderItem] = []
        for (index, line) in request.lines.enumerated() {
            guard let product = catalogue[line.productId] else {
                throw ShopError(.unknownProduct, "items[\(index)].productId '\(line.productId)' is not a product in the catalogue")
            }
            items.append(API.OrderItem(
                productId: product.id, sku: product.sku, name: product.name,
                quantity: line.quantity, unitPriceCents: product.priceCents))
        }
        return items
    }
}
