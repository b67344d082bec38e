import Common
import Foundation
import Storage

struct ProductRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "products"
    var id: String
    var sku: String
    var name: String
    var description: String
    var priceCents: Cents
    var createdAt: Date
    var updatedAt: Date

    var api: API.Product { API.Product(id: id, sku: sku, name: name, description: description, priceCents: priceCents) }
}

/// Stock of one product. `available` can be sold; `reserved` is held by
/// orders whose payment is not decided yet.
struct InventoryRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "inventory"
    var productId: String
    var available: Int
    var reserved: Int

    var api: API.Inventory { API.Inventory(productId: productId, available: available, reserved: reserved) }
}

extension ProductRecord {
    static func find(ids: [String], in db: Database) throws -> [ProductRecord] {
        try fetchAll(db, cached: "SELECT * FROM products WHERE id IN (\(Database.placeholders(ids.count)))", StatementArguments(ids))
    }
}
