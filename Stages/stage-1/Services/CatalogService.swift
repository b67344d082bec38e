import Checkout
import Common
import Foundation
import Storage

/// The catalogue. Stage 2 moves it into the product service; stock stays
/// with orders until stage 4.
struct CatalogService: Sendable {
    let db: DatabasePool
    let inventory: InventoryService

    func list() async throws -> [API.Product] {
        try await db.read { db in try ProductRecord.order(Column("createdAt"), Column("rowid")).fetchAll(db).map(\.api) }
    }

    func product(id: String) async throws -> API.Product {
        guard let product = try await db.read({ db in try ProductRecord.fetchOne(db, key: id) }) else {
            throw ShopError.notFound("product \(id)")
        }
        return product.api
    }

    func create(_ request: API.CreateProductRequest) async throws -> API.Product {
        let now = Timestamp.now()
        let product = ProductRecord(
            id: ID.make(ID.product),
            sku: try Validate.sku(request.sku),
            name: try Validate.name(request.name),
            description: try Validate.description(request.description ?? ""),
            priceCents: try Validate.priceCents(request.priceCents),
            createdAt: now, updatedAt: now)
        let stock = try Validate.initialStock(request.initialStock ?? 0)
        do {
            // The product and its stock row in one transaction.
            try await db.write { [inventory] db in
                try product.insert(db)
                try inventory.create(productId: product.id, initialStock: stock, in: db)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw ShopError(.skuTaken, "a product with the sku \(product.sku) already exists")
        }
        return product.api
    }

    func update(id: String, _ request: API.UpdateProductRequest) async throws -> API.Product {
        // Validate everything before touching anything.
        let name = try request.name.map { name throws(ShopError) in try Validate.name(name) }
        let description = try request.description.map { text throws(ShopError) in try Validate.description(text) }
        let price = try request.priceCents.map { cents throws(ShopError) in try Validate.priceCents(cents) }
        let updated: ProductRecord? = try await db.write { db in
            guard var product = try ProductRecord.fetchOne(db, key: id) else { return nil }
            if let name { product.name = name }
            if let description { product.description = description }
            if let price { product.priceCents = price }
            product.updatedAt = Timestamp.now()
            try product.update(db)
            return product
        }
        guard let updated else { throw ShopError.notFound("product \(id)") }
        return updated.api
    }
}

/// Orders are priced from the products table, in the same database.
extension CatalogService: Catalogue {
    func products(ids: [String]) async throws -> [String: API.Product] {
        try await db.read { db in
            Dictionary(uniqueKeysWithValues: try ProductRecord.find(ids: ids, in: db).map { ($0.id, $0.api) })
        }
    }
}
