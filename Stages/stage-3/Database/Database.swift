import Checkout
import Foundation
import Storage

/// The remaining monolith's database: the order side only. Users and
/// products moved to the user and product services, each in a database of
/// its own (`user/users.sqlite`, `product/products.sqlite`), which this
/// process never opens.
enum ShopDatabase {
    static func open(at url: URL) throws -> DatabasePool {
        var migrator = DatabaseMigrator()
        CheckoutSchema.register(in: &migrator)   // orders, stock, payments, notifications, invoices
        return try SQLiteStore.openPool(at: url, migrator: migrator)
    }
}
