import Foundation
import GRDB

/// Opening SQLite the same way in every service of every stage.
public enum SQLiteStore {
    /// A WAL database pool: many readers beside one writer.
    ///
    /// `synchronous = NORMAL`: in WAL mode a commit survives the process
    /// being killed at any point (the failure this workshop exercises);
    /// only a power cut can lose the last commits. FULL would also cover
    /// that, at about a sixth of the write rate on these machines.
    public static func openPool(at url: URL, migrator: DatabaseMigrator) throws -> DatabasePool {
        var config = Configuration()
        // Several processes may share one file (replicas of a service, from
        // stage 3): wait for another's write lock instead of failing at once.
        config.busyMode = .timeout(5)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // SQLite's automatic checkpoint (every 1,000 pages) is kept: a
            // larger interval (8,000) gave no more orders/s here, and doubled
            // p90 latency, because the commit that triggers it waits for it.
            // 32 MiB of page cache per connection (default 2 MiB): pages read
            // back from the WAL were a visible share of the order path.
            try db.execute(sql: "PRAGMA cache_size = -32768")
            // Temporary files in memory. The one that matters is the statement
            // journal: inside a transaction, a savepoint (or a statement that
            // may fail half-way) keeps the pages it changes as they were, to
            // undo it alone. Past 64 KiB SQLite spills that journal to a
            // temporary file, and a group commit (GroupCommit.swift) runs a
            // savepoint per order: under load those writes outnumbered the
            // WAL's own. It is never needed after the transaction.
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        let pool = try DatabasePool(path: url.path, configuration: config)
        try migrator.migrate(pool)
        return pool
    }
}

// Statements on the hot path are prepared once and reused: SQLite parses
// and plans a statement in about as long as it runs a simple one, so
// reusing them roughly halves the cost of a short transaction. GRDB keeps
// one cache per connection, keyed by the SQL text.

extension FetchableRecord {
    public static func fetchOne(_ db: Database, cached sql: String, _ arguments: StatementArguments = []) throws -> Self? {
        try fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }

    public static func fetchAll(_ db: Database, cached sql: String, _ arguments: StatementArguments = []) throws -> [Self] {
        try fetchAll(db.cachedStatement(sql: sql), arguments: arguments)
    }
}

extension DatabaseValueConvertible {
    public static func fetchOne(_ db: Database, cached sql: String, _ arguments: StatementArguments = []) throws -> Self? {
        try fetchOne(db.cachedStatement(sql: sql), arguments: arguments)
    }
}

extension Database {
    /// Runs one cached statement and answers how many rows it changed.
    @discardableResult
    public func run(cached sql: String, _ arguments: StatementArguments = []) throws -> Int {
        try cachedStatement(sql: sql).execute(arguments: arguments)
        return changesCount
    }

    /// `?, ?, ?` for an `IN (...)` of `count` values.
    public static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}

// Times are stored as integer milliseconds since 1970 (UTC): they sort as
// numbers, compare without parsing, and cost nothing to encode; a date
// formatted as text for every row written showed up in profiles.
extension Date {
    public var databaseMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    public init(databaseMilliseconds ms: Int64) { self.init(timeIntervalSince1970: Double(ms) / 1000) }
}
