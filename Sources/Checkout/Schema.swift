import Foundation
import GRDB
import Storage

/// The order side of the shop: orders and their lines, stock, payments,
/// notifications, invoices. Stages 1 to 3 keep all of it in one database;
/// stage 1 adds users and products beside it, stages 2 and 3 have those in
/// services of their own. Other concerns are referenced by id only, never by
/// foreign key: from stage 2 on they live in other databases.
public enum CheckoutSchema {
    /// A database of the order side alone: what the monolith keeps once
    /// accounts and the catalogue have services (and databases) of their own
    /// (stages 2 and 3: the remaining monolith, then the order service).
    public static func openDatabase(at url: URL) throws -> DatabasePool {
        try SQLiteStore.openPool(at: url, migrations: migrations)
    }

    public static let migrations = [
        Migration("checkout v1", sql: """
            -- Times (createdAt, updatedAt) are integer milliseconds since 1970, UTC.
            -- Tables keyed by a text id are WITHOUT ROWID unless they are listed
            -- newest first (orders and notifications use the rowid to break ties
            -- between equal times). Without a rowid the table *is* its primary-key
            -- index: one b-tree page written per insert instead of two.

            -- The CHECKs are the last line of defence against overselling: even a
            -- bug in the code cannot drive stock below zero.
            CREATE TABLE inventory (
                productId TEXT PRIMARY KEY,
                available INTEGER NOT NULL CHECK (available >= 0),
                reserved INTEGER NOT NULL CHECK (reserved >= 0)
            ) WITHOUT ROWID;

            CREATE TABLE orders (
                id TEXT PRIMARY KEY,
                userId TEXT NOT NULL,
                status TEXT NOT NULL,
                cancelReason TEXT,
                totalCents INTEGER NOT NULL,
                paymentStatus TEXT NOT NULL,
                chargedCents INTEGER NOT NULL,
                refundedCents INTEGER NOT NULL,
                cardLast4 TEXT NOT NULL,
                -- The card is kept only while its charge is undecided, so that a
                -- restart can finish the charge of an order caught mid-request.
                pendingCard TEXT,
                customerEmail TEXT NOT NULL,
                customerName TEXT NOT NULL,
                idempotencyKey TEXT,
                requestFingerprint TEXT NOT NULL,
                createdAt INTEGER NOT NULL,
                updatedAt INTEGER NOT NULL,
                UNIQUE (userId, idempotencyKey)
            );
            CREATE INDEX orders_by_user ON orders(userId, createdAt);
            CREATE INDEX orders_with_pending_charge ON orders(pendingCard) WHERE pendingCard IS NOT NULL;
            CREATE TABLE order_items (
                orderId TEXT NOT NULL REFERENCES orders(id),
                line INTEGER NOT NULL,
                productId TEXT NOT NULL,
                sku TEXT NOT NULL,
                name TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                unitPriceCents INTEGER NOT NULL,
                lineTotalCents INTEGER NOT NULL,
                PRIMARY KEY (orderId, line)
            ) WITHOUT ROWID;

            -- One row per money movement. UNIQUE(orderId, kind): an order is
            -- charged at most once and refunded at most once, whatever retries
            -- or redelivers it.
            CREATE TABLE payments (
                id TEXT PRIMARY KEY,
                orderId TEXT NOT NULL REFERENCES orders(id),
                kind TEXT NOT NULL,                     -- charge | refund
                outcome TEXT NOT NULL,                  -- captured | declined | refunded
                amountCents INTEGER NOT NULL,
                attempts INTEGER NOT NULL,
                createdAt INTEGER NOT NULL,
                UNIQUE (orderId, kind)
            ) WITHOUT ROWID;

            CREATE TABLE notifications (
                id TEXT PRIMARY KEY,
                userId TEXT NOT NULL,
                kind TEXT NOT NULL,
                orderId TEXT,
                channel TEXT NOT NULL,
                recipient TEXT NOT NULL,
                subject TEXT NOT NULL,
                createdAt INTEGER NOT NULL
            );
            -- Exactly one notification of a kind per order (per user for welcome).
            CREATE UNIQUE INDEX one_notification_per_kind ON notifications(userId, kind, ifnull(orderId, ''));

            CREATE TABLE invoices (
                orderId TEXT PRIMARY KEY REFERENCES orders(id),
                number INTEGER NOT NULL UNIQUE,
                html TEXT NOT NULL,
                createdAt INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
        Migration("checkout v2: a partial idempotency index, invoices with a rowid", sql: """
            -- Most orders come without an Idempotency-Key, and v1's UNIQUE
            -- constraint gave each of them an index entry that only cost a page
            -- write; a partial index holds only the orders that have a key. A
            -- table constraint cannot be dropped, so the table is rebuilt (the
            -- rowid is copied: it orders orders created in the same millisecond).
            CREATE TABLE orders_v2 (
                id TEXT PRIMARY KEY,
                userId TEXT NOT NULL,
                status TEXT NOT NULL,
                cancelReason TEXT,
                totalCents INTEGER NOT NULL,
                paymentStatus TEXT NOT NULL,
                chargedCents INTEGER NOT NULL,
                refundedCents INTEGER NOT NULL,
                cardLast4 TEXT NOT NULL,
                pendingCard TEXT,
                customerEmail TEXT NOT NULL,
                customerName TEXT NOT NULL,
                idempotencyKey TEXT,
                requestFingerprint TEXT NOT NULL,
                createdAt INTEGER NOT NULL,
                updatedAt INTEGER NOT NULL
            );
            INSERT INTO orders_v2 (rowid, id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents,
                refundedCents, cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
                createdAt, updatedAt)
            SELECT rowid, id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents,
                refundedCents, cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
                createdAt, updatedAt FROM orders;
            DROP TABLE orders;
            ALTER TABLE orders_v2 RENAME TO orders;
            CREATE UNIQUE INDEX orders_by_idempotency_key ON orders(userId, idempotencyKey) WHERE idempotencyKey IS NOT NULL;
            CREATE INDEX orders_by_user ON orders(userId, createdAt);
            CREATE INDEX orders_with_pending_charge ON orders(pendingCard) WHERE pendingCard IS NOT NULL;

            -- An invoice is about a kilobyte of HTML, and SQLite's WITHOUT ROWID
            -- b-trees are meant for small rows; a rowid table appends large rows
            -- cheaply at its end.
            CREATE TABLE invoices_v2 (
                orderId TEXT PRIMARY KEY REFERENCES orders(id),
                number INTEGER NOT NULL UNIQUE,
                html TEXT NOT NULL,
                createdAt INTEGER NOT NULL
            );
            INSERT INTO invoices_v2 (orderId, number, html, createdAt) SELECT orderId, number, html, createdAt FROM invoices;
            DROP TABLE invoices;
            ALTER TABLE invoices_v2 RENAME TO invoices;
            """),
    ]
}
