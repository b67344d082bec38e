import Accounts
import Catalog
import Checkout
import Foundation
import Storage

/// The monolith's one database: every table of every concern in one SQLite
/// file. That is what makes stage 1 simple (one transaction can create an
/// account and its welcome email, or a product and its stock) and what
/// later stages take apart: from stage 2 each concern's schema lives in its
/// own service's database.
enum ShopDatabase {
    static func open(at url: URL) throws -> DatabasePool {
        var migrator = DatabaseMigrator()
        AccountsSchema.register(in: &migrator)   // users
        CatalogSchema.register(in: &migrator)    // products
        CheckoutSchema.register(in: &migrator)   // orders, stock, payments, notifications, invoices
        return try SQLiteStore.openPool(at: url, migrator: migrator)
    }
}
