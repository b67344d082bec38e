import Common
import Storage

/// Stock movements. Every function runs inside the caller's transaction,
/// and SQLite has one writer at a time, so two orders can never both take
/// the last unit: the second one sees the first one's decrement.
struct InventoryService: Sendable {
    /// All or nothing: either every line is reserved or none is.
    func reserve(_ items: [OrderItemRecord], in db: Database) throws -> StockOutcome {
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
    func commit(_ items: [OrderItemRecord], in db: Database) throws {
        for item in items {
            try db.run(cached: "UPDATE inventory SET reserved = reserved - ? WHERE productId = ?", [item.quantity, item.productId])
        }
    }

    /// The order will not go ahead: reserved units become available again.
    func release(_ items: [OrderItemRecord], in db: Database) throws {
        for item in items {
            try db.run(cached: "UPDATE inventory SET reserved = reserved - ?, available = available + ? WHERE productId = ?",
                       [item.quantity, item.quantity, item.productId])
        }
    }

    /// A confirmed order was cancelled: its sold units go back on the shelf.
    func putBack(_ items: [OrderItemRecord], in db: Database) throws {
        for item in items {
            try db.run(cached: "UPDATE inventory SET available = available + ? WHERE productId = ?", [item.quantity, item.productId])
        }
    }
}
