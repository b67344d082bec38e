import Common
import GRDB
import Storage

/// A quantity of a product: an order's line, or a reservation's.
public protocol StockLine: Sendable {
    var productId: String { get }
    var quantity: Int { get }
}

/// Stock. The movements run inside the caller's transaction, and SQLite has
/// one writer at a time, so two orders can never both take the last unit:
/// the second one sees the first one's decrement.
public struct Stock: Sendable {
    let db: any DatabaseWriter

    public init(db: any DatabaseWriter) { self.db = db }

    /// A new product's stock row, in the caller's transaction (stage 1
    /// creates the product in the same one).
    public func create(productId: String, initialStock: Int, in db: Database) throws {
        try InventoryRecord(productId: productId, available: initialStock, reserved: 0).insert(db, onConflict: .ignore)
    }

    /// The same, on its own (stage 2 on: the product was created by the
    /// product service).
    public func create(productId: String, initialStock: Int) async throws {
        try await db.write { db in try create(productId: productId, initialStock: initialStock, in: db) }
    }

    public func inventory(productId: String) async throws -> API.Inventory {
        guard let stock = try await db.read({ db in try InventoryRecord.fetchOne(db, key: productId) }) else {
            throw ShopError.notFound("product \(productId)")
        }
        return stock.api
    }

    public func restock(productId: String, quantity: Int) async throws -> API.Inventory {
        let quantity = try Validate.restockQuantity(quantity)
        let stock: InventoryRecord? = try await db.write { db in
            guard var stock = try InventoryRecord.fetchOne(db, key: productId) else { return nil }
            stock.available += quantity
            try stock.update(db)
            return stock
        }
        guard let stock else { throw ShopError.notFound("product \(productId)") }
        return stock.api
    }

    /// All or nothing: either every line is reserved or none is.
    public func reserve(_ items: [some StockLine], in db: Database) throws -> StockOutcome {
        for item in items {
            let available = try Int.fetchOne(db, cached: "SELECT available FROM inventory WHERE productId = ?", [item.productId]) ?? 0
            if available < item.quantity { return .rejected }
        }
        for item in items {
            try db.run(cached: "UPDATE inventory SET available = available - ?, reserved = reserved + ? WHERE productId = ?",
                       [item.quantity, item.quantity, item.productId])
        }
        return .reserved
    }

    /// The order is confirmed: reserved units are sold and leave the books.
    public func commit(_ items: [some StockLine], in db: Database) throws {
        for item in items {
            try db.run(cached: "UPDATE inventory SET reserved = reserved - ? WHERE productId = ?", [item.quantity, item.productId])
        }
    }

    /// The order will not go ahead: reserved units become available again.
    public func release(_ items: [some StockLine], in db: Database) throws {
        for item in items {
            try db.run(cached: "UPDATE inventory SET reserved = reserved - ?, available = available + ? WHERE productId = ?",
                       [item.quantity, item.quantity, item.productId])
        }
    }

    /// A confirmed order was cancelled: its sold units go back on the shelf.
    public func putBack(_ items: [some StockLine], in db: Database) throws {
        for item in items {
            try db.run(cached: "UPDATE inventory SET available = available + ? WHERE productId = ?", [item.quantity, item.productId])
        }
    }
}
