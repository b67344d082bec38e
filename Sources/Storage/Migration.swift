import Foundation
import GRDB

/// One step of a database's schema, as it shipped: a name and the SQL it
/// runs, written out in full where it is declared. A migration that has
/// shipped never changes: databases out there already ran it, and GRDB
/// remembers it by name only, so an edited one would leave them with the
/// old tables and new ones with the new, silently. A change of schema is a
/// new migration. `Tests/SchemaTests` fails when a shipped migration's text
/// changes, and lists each one's fingerprint.
public struct Migration: Sendable, Hashable {
    public let name: String
    public let sql: String

    public init(_ name: String, sql: String) {
        self.name = name
        self.sql = sql
    }
}

extension DatabaseMigrator {
    /// Registers migrations in order. GRDB runs each pending one in a
    /// transaction of its own, with foreign keys checked at its end (so a
    /// migration may rebuild a table that others reference).
    public mutating func register(_ migrations: [Migration]) {
        for migration in migrations {
            registerMigration(migration.name) { db in try db.execute(sql: migration.sql) }
        }
    }
}

extension SQLiteStore {
    /// A pool over `url` with these migrations run.
    public static func openPool(at url: URL, migrations: [Migration]) throws -> DatabasePool {
        var migrator = DatabaseMigrator()
        migrator.register(migrations)
        return try openPool(at: url, migrator: migrator)
    }
}
