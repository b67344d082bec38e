import Checkout
import Foundation
import GRDB
import Storage

/// What is left of the monolith's database: the order side's tables. Users
/// and products have moved to the user and product services' own databases
/// (users.sqlite, products.sqlite), which this process never opens; so no
/// transaction spans an account and its welcome email, or a product and its
/// stock, any more.
enum ShopDatabase {
    static func open(at url: URL) throws -> DatabasePool {
        try SQLiteStore.openPool(at: url, migrations: migrations)
    }

    /// The order side (orders, stock, payments, notifications, invoices).
    static var migrations: [Migration] {
        CheckoutSchema.migrations
    }
}
