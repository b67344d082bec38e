import Common
import Foundation
import GRDB
import Storage

struct ProductRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "products"
    var id: String
    var sku: String
    var name: String
    var description: String
    var priceCents: Cents
    var createdAt: Date
    var updatedAt: Date

    var api: API.Product { API.Product(id: id, sku: sku, name: name, description: description, priceCents: priceCents) }

    init(id: String, sku: String, name: String, description: String, priceCents: Cents, createdAt: Date, updatedAt: Date) {
        self.id = id; self.sku = sku; self.name = name; self.description = description
        self.priceCents = priceCents; self.createdAt = createdAt; self.updatedAt = updatedAt
    }

    init(row: Row) throws {
        id = row["id"]; sku = row["sku"]; name = row["name"]; description = row["description"]
        priceCents = row["priceCents"]
        createdAt = Date(databaseMilliseconds: row["createdAt"]); updatedAt = Date(databaseMilliseconds: row["updatedAt"])
    }

    func encode(to container: inout PersistenceContainer) throws {
        container["id"] = id; container["sku"] = sku; container["name"] = name; container["description"] = description
        container["priceCents"] = priceCents
        container["createdAt"] = createdAt.databaseMilliseconds; container["updatedAt"] = updatedAt.databaseMilliseconds
    }

    static func find(ids: [String], in db: Database) throws -> [ProductRecord] {
        try fetchAll(db, cached: "SELECT * FROM products WHERE id IN (\(Database.placeholders(ids.count)))", StatementArguments(ids))
    }
}
