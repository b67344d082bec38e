import Accounts
import Catalog
import Checkout
import Foundation
import GRDB
import Messaging
@testable import Stage4
@testable import Stage5
@testable import Stage6
@testable import Stage7
@testable import Stage8
import Streams
import Events
import Storage
import Testing

/// Every migration the project ships, with the text it shipped with, is in
/// `shipped-migrations.sql` beside this file. A migration that has run on
/// somebody's database must never change (GRDB knows it by name only, and
/// would not run it again), so:
/// - a shipped migration whose text differs from the file fails here;
/// - a new migration fails here too, until its text is added to the file:
///   that is the moment it ships, and the diff of the file shows it.
///   `SHIP_MIGRATIONS=1 swift test --filter SchemaTests` appends the new
///   ones (it never rewrites an entry that is there).
@Suite struct FrozenMigrationsTests {
    /// Every database of every stage, by the migrations that make it.
    static let all: [Migration] = {
        // A stage copies the migrations of the stage before and adds its
        // own: the same name must have the same text everywhere, so copies
        // are dropped only when they are identical.
        var seen = Set<String>()
        let lists = [
            AccountsSchema.migrations, CatalogSchema.migrations, CheckoutSchema.migrations, MessagingSchema.migrations,
            DeadLetterOffice.migrations, Stage4.InventoryService.migrations, Stage4.NotificationService.migrations,
            Stage4.PaymentService.migrations, Stage4.OrderFlow.migrations,
            Stage5.InventoryService.migrations, Stage5.NotificationService.migrations,
            Stage5.PaymentService.migrations, Stage5.OrderFlow.migrations,
            Stage6.InventoryService.migrations, Stage6.NotificationService.migrations,
            Stage6.PaymentService.migrations, Stage6.OrderFlow.migrations, FlowLog.migrations,
            Stage7.InventoryService.migrations, Stage7.NotificationService.migrations,
            Stage7.PaymentService.migrations, Stage7.OrderFlow.migrations, ReadModel.migrations,
            Stage7.ReportingService.migrations, Stage7.AnalyticsService.migrations,
            Stage8.InventoryService.migrations, Stage8.NotificationService.migrations,
            Stage8.PaymentService.migrations, Stage8.OrderFlow.migrations, Stage8.OrderViews.migrations,
            Stage8.SalesView.migrations, Stage8.AnalyticsService.migrations,
        ]
        return lists.flatMap { $0 }.filter { seen.insert($0.name + "\u{0}" + $0.sql).inserted }
    }()

    static let snapshot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("shipped-migrations.sql")

    /// `-- migration: <name>` starts an entry; its text runs to the next one.
    static func shipped() throws -> [String: String] {
        let text = try String(contentsOf: snapshot, encoding: .utf8)
        var entries: [String: String] = [:]
        var name: String?
        var lines: [String] = []
        func close() { if let name { entries[name] = lines.joined(separator: "\n").trimmingCharacters(in: .newlines) } }
        for line in text.components(separatedBy: "\n") {
            if line.hasPrefix("-- migration: ") {
                close()
                name = String(line.dropFirst("-- migration: ".count))
                lines = []
            } else {
                lines.append(line)
            }
        }
        close()
        return entries
    }

    static func entry(_ migration: Migration) -> String {
        "-- migration: \(migration.name)\n\(migration.sql.trimmingCharacters(in: .newlines))\n"
    }

    @Test func noShippedMigrationHasChanged() throws {
        let shipped = try Self.shipped()
        for migration in Self.all {
            guard let text = shipped[migration.name] else { continue }
            #expect(migration.sql.trimmingCharacters(in: .newlines) == text,
                    "migration '\(migration.name)' has shipped and must not change: add a new migration instead")
        }
    }

    @Test func everyMigrationIsRecordedAsShipped() throws {
        let shipped = try Self.shipped()
        let missing = Self.all.filter { shipped[$0.name] == nil }
        if !missing.isEmpty, ProcessInfo.processInfo.environment["SHIP_MIGRATIONS"] == "1" {
            let handle = try FileHandle(forWritingTo: Self.snapshot)
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(missing.map { "\n" + Self.entry($0) }.joined().utf8))
            try handle.close()
            return
        }
        #expect(missing.map(\.name) == [], "new migrations: run SHIP_MIGRATIONS=1 swift test --filter SchemaTests when they ship")
    }

    /// Within one stage, a name means one migration. (Across stages the
    /// same name is the same migration, copied forward: `all` and the
    /// snapshot check that its text is the same.)
    @Test func namesAreUniqueWithinAStage() {
        let shared = [
            AccountsSchema.migrations, CatalogSchema.migrations, CheckoutSchema.migrations, MessagingSchema.migrations,
            DeadLetterOffice.migrations,
        ]
        let stages: [[[Migration]]] = [
            shared + [Stage4.InventoryService.migrations, Stage4.NotificationService.migrations,
                      Stage4.PaymentService.migrations, Stage4.OrderFlow.migrations],
            shared + [Stage5.InventoryService.migrations, Stage5.NotificationService.migrations,
                      Stage5.PaymentService.migrations, Stage5.OrderFlow.migrations],
            shared + [Stage6.InventoryService.migrations, Stage6.NotificationService.migrations,
                      Stage6.PaymentService.migrations, Stage6.OrderFlow.migrations, FlowLog.migrations],
            shared + [Stage7.InventoryService.migrations, Stage7.NotificationService.migrations,
                      Stage7.PaymentService.migrations, Stage7.OrderFlow.migrations, FlowLog.migrations,
                      ReadModel.migrations, Stage7.ReportingService.migrations, Stage7.AnalyticsService.migrations],
            shared + [Stage8.InventoryService.migrations, Stage8.NotificationService.migrations,
                      Stage8.PaymentService.migrations, Stage8.OrderFlow.migrations, FlowLog.migrations,
                      ReadModel.migrations, Stage8.OrderViews.migrations, Stage8.SalesView.migrations, Stage8.AnalyticsService.migrations],
        ]
        for lists in stages {
            let names = lists.flatMap { $0.map(\.name) }
            #expect(Set(names).count == names.count)
        }
    }
}

/// "checkout v2" takes a database made by "checkout v1" (the stage 1 shape
/// before the group-commit work) to today's shape, keeping every row.
@Suite struct CheckoutUpgradeTests {
    func temporaryFile() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("schema-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("shop.sqlite")
    }

    @Test func v2KeepsOrdersInvoicesAndTheKeyRule() throws {
        let url = try temporaryFile()
        do {
            let old = try SQLiteStore.openPool(at: url, migrations: Array(CheckoutSchema.migrations.prefix(1)))
            try old.write { db in
                for (n, key) in [(1, "k1"), (2, nil), (3, "k3")] as [(Int, String?)] {
                    try db.execute(sql: """
                        INSERT INTO orders (id, userId, status, totalCents, paymentStatus, chargedCents, refundedCents, cardLast4,
                            customerEmail, customerName, idempotencyKey, requestFingerprint, createdAt, updatedAt)
                        VALUES (?, 'u1', 'confirmed', 100, 'captured', 100, 0, '4242', 'a@b.c', 'A', ?, 'f', 5, 5)
                        """, arguments: ["o\(n)", key])
                    try db.execute(sql: "INSERT INTO invoices (orderId, number, html, createdAt) VALUES (?, ?, '<p>', 5)", arguments: ["o\(n)", n])
                }
            }
            try old.close()
        }
        let pool = try SQLiteStore.openPool(at: url, migrations: CheckoutSchema.migrations)
        try pool.read { db in
            // Rows and their order (the rowid breaks ties between equal times).
            #expect(try String.fetchAll(db, sql: "SELECT id FROM orders ORDER BY rowid") == ["o1", "o2", "o3"])
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM invoices") == 3)
            // Today's shape: a partial index for keys, invoices with a rowid.
            let index = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'orders_by_idempotency_key'")
            #expect(index?.contains("WHERE idempotencyKey IS NOT NULL") == true)
            let invoices = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE name = 'invoices'") ?? ""
            #expect(!invoices.contains("WITHOUT ROWID"))
            #expect(try Int.fetchOne(db, sql: "SELECT count(*) FROM pragma_foreign_key_check") == 0)
        }
        // A key is still used once per customer.
        #expect(throws: DatabaseError.self) {
            try pool.write { db in
                try db.execute(sql: """
                    INSERT INTO orders (id, userId, status, totalCents, paymentStatus, chargedCents, refundedCents, cardLast4,
                        customerEmail, customerName, idempotencyKey, requestFingerprint, createdAt, updatedAt)
                    VALUES ('o4', 'u1', 'pending', 100, 'pending', 0, 0, '4242', 'a@b.c', 'A', 'k1', 'f', 6, 6)
                    """)
            }
        }
    }

    /// For a while "checkout v1" was edited in place to today's shape, so
    /// some databases ran that text under the same name: v2 upgrades those too.
    @Test func v2AlsoUpgradesADatabaseMadeByTheEditedV1() throws {
        let v1 = CheckoutSchema.migrations[0].sql
        let edited = v1
            .replacingOccurrences(of: "updatedAt INTEGER NOT NULL,\n    UNIQUE (userId, idempotencyKey)\n);", with: """
                updatedAt INTEGER NOT NULL
                );
                CREATE UNIQUE INDEX orders_by_idempotency_key ON orders(userId, idempotencyKey) WHERE idempotencyKey IS NOT NULL;
                """)
            .replacingOccurrences(of: "createdAt INTEGER NOT NULL\n) WITHOUT ROWID;", with: "createdAt INTEGER NOT NULL\n);")
        #expect(edited != v1 && edited.contains("WHERE idempotencyKey IS NOT NULL") && !edited.hasSuffix("WITHOUT ROWID;"))
        let url = try temporaryFile()
        do {
            let old = try SQLiteStore.openPool(at: url, migrations: [Migration("checkout v1", sql: edited)])
            try old.write { db in
                try db.execute(sql: """
                    INSERT INTO orders (id, userId, status, totalCents, paymentStatus, chargedCents, refundedCents, cardLast4,
                        customerEmail, customerName, idempotencyKey, requestFingerprint, createdAt, updatedAt)
                    VALUES ('o1', 'u1', 'confirmed', 100, 'captured', 100, 0, '4242', 'a@b.c', 'A', 'k1', 'f', 5, 5)
                    """)
                try db.execute(sql: "INSERT INTO invoices (orderId, number, html, createdAt) VALUES ('o1', 1, '<p>', 5)")
            }
            try old.close()
        }
        let pool = try SQLiteStore.openPool(at: url, migrations: CheckoutSchema.migrations)
        let (orders, invoices, indexes) = try pool.read { db in
            (try String.fetchAll(db, sql: "SELECT id FROM orders"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM invoices"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master WHERE name = 'orders_by_idempotency_key'"))
        }
        #expect(orders == ["o1"])
        #expect(invoices == 1)
        #expect(indexes == 1)
    }
}
