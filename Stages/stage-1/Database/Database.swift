import Checkout
import Foundation
import Storage

/// The monolith's one database: every table of every concern in one SQLite
/// file. That is what makes stage 1 simple (one transaction can create an
/// account and its welcome email, or a product and its stock) and what
/// later stages take apart.
enum ShopDatabase {
    static func open(at url: URL) throws -> DatabasePool {
        try SQLiteStore.openPool(at: url, migrator: migrator)
    }

    /// Named migrations; a shipped one never changes (add a new one instead).
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("accounts and catalogue v1") { db in
            try db.execute(sql: """
                -- Times are integer milliseconds since 1970, UTC. Users are keyed by a
                -- text id and never listed, so the table is its own primary-key index.
                CREATE TABLE users (
                    id TEXT PRIMARY KEY,
                    email TEXT NOT NULL,
                    emailKey TEXT NOT NULL UNIQUE,          -- lowercased: emails compare case-insensitively
                    name TEXT NOT NULL,
                    passwordHash TEXT NOT NULL,
                    role TEXT NOT NULL,
                    createdAt INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE products (
                    id TEXT PRIMARY KEY,
                    sku TEXT NOT NULL UNIQUE,
                    name TEXT NOT NULL,
                    description TEXT NOT NULL,
                    priceCents INTEGER NOT NULL CHECK (priceCents > 0),
                    createdAt INTEGER NOT NULL,
                    updatedAt INTEGER NOT NULL
                );
                """)
        }
        // Orders, stock, payments, notifications, invoices (Sources/Checkout).
        CheckoutSchema.register(in: &migrator)
        return migrator
    }
}
