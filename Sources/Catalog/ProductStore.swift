import Common
import Foundation
import GRDB
import Storage

/// The catalogue over the `products` table. Stage 1 uses it inside the
/// monolith; from stage 2 it is the heart of the product service.
public struct ProductStore: Sendable {
    let db: any DatabaseWriter

    public init(db: any DatabaseWriter) { self.db = db }

    public func list() async throws -> [API.Product] {
        try await db.read { db in try ProductRecord.order(Column("createdAt"), Column("rowid")).fetchAll(db).map(\.api) }
    }

    public func product(id: String) async throws -> API.Product {
        guard let product = try await db.read({ db in try ProductRecord.fetchOne(db, key: id) }) else {
            throw ShopError.notFound("product \(id)")
        }
        return product.api
    }

    /// `inSameTransaction` runs in the product's transaction: the monolith
    /// creates the stock row there (both or neither).
    public func create(
        _ request: API.CreateProductRequest,
        inSameTransaction: (@Sendable (Database, API.Product) throws -> Void)? = nil
    ) async throws -> API.Product {
        let now = Timestamp.now()
        let product = ProductRecord(
            id: ID.make(ID.product),
            sku: try Validate.sku(request.sku),
            name: try Validate.name(request.name),
            description: try Validate.description(request.description ?? ""),
            priceCents: try Validate.priceCents(request.priceCents),
            createdAt: now, updatedAt: now)
        do {
            try await db.write { db in
                try product.insert(db)
                try inSameTransaction?(db, product.api)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE {
            throw ShopError(.skuTaken, "a product with the sku \(product.sku) already exists")
        }
        return product.api
    }

    public func update(id: String, _ request: API.UpdateProductRequest) async throws -> API.Product {
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

/// Some products at once: the product service's `GET /products?ids=`, and
/// the monolith's pricing, which reads them in the caller's transaction
/// (`products(ids:in:)`) so that an order is priced inside the transaction
/// that stores it.
extension ProductStore {
    public func products(ids: [String]) async throws -> [String: API.Product] {
        try await db.read { db in try products(ids: ids, in: db) }
    }

    public func products(ids: [String], in db: Database) throws -> [String: API.Product] {
        Dictionary(uniqueKeysWithValues: try ProductRecord.find(ids: ids, in: db).map { ($0.id, $0.api) })
    }
}

public enum CatalogSchema {
    public static let migrations = [
        Migration("catalogue v1", sql: """
                -- Times are integer milliseconds since 1970, UTC. Listed in creation
                -- order, so the rowid breaks ties between equal times.
                CREATE TABLE products (
                    id TEXT PRIMARY KEY,
                    sku TEXT NOT NULL UNIQUE,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    priceCents INTEGER NOT NULL CHECK (priceCents > 0),
                    createdAt INTEGER NOT NULL,
                    updatedAt INTEGER NOT NULL
                );
                """),
    ]
}
