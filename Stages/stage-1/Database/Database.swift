import Accounts
import Catalog
import Checkout
import Foundation
import GRDB
import Storage

/// The monolith's one database: every table of every concern in one SQLite
/// file. That is what makes stage 1 simple (one transaction can create an
/// account and its welcome email, or a product and its stock) and what
/// later stages take apart: from stage 2 each concern's schema lives in its
/// own service's database.
enum ShopDatabase {
    static func open(at url: URL) throws -> DatabasePool {
        try SQLiteStore.openPool(at: url, migrations: migrations)
    }

    /// Each concern's migrations, in one file: users, products, then the
    /// order side (orders, stock, payments, notifications, invoices).
    static var migrations: [Migration] {
        AccountsSchema.migrations + CatalogSchema.migrations + CheckoutSchema.migrations
    }
}
