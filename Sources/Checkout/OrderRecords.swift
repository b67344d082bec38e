import Common
import Foundation
import GRDB
import Storage

public struct OrderRecord: FetchableRecord, TableRecord, Sendable {
    public static let databaseTableName = "orders"
    public var id: String
    public var userId: String
    public var status: OrderStatus
    public var cancelReason: CancelReason?
    public var totalCents: Cents
    public var paymentStatus: PaymentStatus
    public var chargedCents: Cents
    public var refundedCents: Cents
    public var cardLast4: String
    /// The card number, only while the charge is undecided (see `resumePendingCharges`).
    public var pendingCard: String?
    /// Who ordered, as they were when they ordered (like prices): emails and
    /// the invoice need a name and an address, and the order side does not
    /// read the users table (from stage 2 on, it cannot).
    public var customerEmail: String
    public var customerName: String
    public var idempotencyKey: String?
    public var requestFingerprint: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        id: String, userId: String, status: OrderStatus, cancelReason: CancelReason?, totalCents: Cents,
        paymentStatus: PaymentStatus, chargedCents: Cents, refundedCents: Cents, cardLast4: String,
        pendingCard: String?, customerEmail: String, customerName: String, idempotencyKey: String?, requestFingerprint: String, createdAt: Date, updatedAt: Date
    ) {
        self.id = id; self.userId = userId; self.status = status; self.cancelReason = cancelReason
        self.totalCents = totalCents; self.paymentStatus = paymentStatus; self.chargedCents = chargedCents
        self.refundedCents = refundedCents; self.cardLast4 = cardLast4; self.pendingCard = pendingCard
        self.customerEmail = customerEmail; self.customerName = customerName
        self.idempotencyKey = idempotencyKey; self.requestFingerprint = requestFingerprint
        self.createdAt = createdAt; self.updatedAt = updatedAt
    }

    public init(row: Row) throws {
        id = row["id"]; userId = row["userId"]; status = row["status"]; cancelReason = row["cancelReason"]
        totalCents = row["totalCents"]; paymentStatus = row["paymentStatus"]; chargedCents = row["chargedCents"]
        refundedCents = row["refundedCents"]; cardLast4 = row["cardLast4"]; pendingCard = row["pendingCard"]
        customerEmail = row["customerEmail"]; customerName = row["customerName"]
        idempotencyKey = row["idempotencyKey"]; requestFingerprint = row["requestFingerprint"]
        createdAt = Date(databaseMilliseconds: row["createdAt"]); updatedAt = Date(databaseMilliseconds: row["updatedAt"])
    }

    // The statements are written out and prepared once: GRDB's generic
    // persistence builds the SQL and a column dictionary on every insert,
    // which showed in the order path's profile.

    public func insert(_ db: Database) throws {
        try db.run(cached: """
            INSERT INTO orders (id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents, refundedCents,
                                cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
                                createdAt, updatedAt)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [id, userId, status, cancelReason, totalCents, paymentStatus, chargedCents, refundedCents,
                  cardLast4, pendingCard, customerEmail, customerName, idempotencyKey, requestFingerprint,
                  createdAt.databaseMilliseconds, updatedAt.databaseMilliseconds])
    }

    /// Saves what a decision, a cancellation or a shipment changes.
    public func update(_ db: Database) throws {
        try db.run(cached: """
            UPDATE orders SET status = ?, cancelReason = ?, paymentStatus = ?, chargedCents = ?, refundedCents = ?,
                              pendingCard = ?, updatedAt = ?
            WHERE id = ?
            """, [status, cancelReason, paymentStatus, chargedCents, refundedCents, pendingCard, updatedAt.databaseMilliseconds, id])
    }

    public var customer: Recipient { Recipient(userId: userId, email: customerEmail, name: customerName) }

    public func api(items: [OrderItemRecord]) -> API.Order {
        API.Order(
            id: id, userId: userId, status: status, cancelReason: cancelReason,
            items: items.map(\.api),
            payment: API.Payment(status: paymentStatus, chargedCents: chargedCents, refundedCents: refundedCents),
            createdAt: createdAt, updatedAt: updatedAt)
    }

    public static func find(_ id: String, in db: Database) throws -> OrderRecord? {
        try fetchOne(db, cached: "SELECT * FROM orders WHERE id = ?", [id])
    }
}

/// A line of an order, with the product's sku, name and price copied in
/// at the moment the order was placed.
public struct OrderItemRecord: FetchableRecord, TableRecord, Sendable, StockLine {
    public static let databaseTableName = "order_items"
    public var orderId: String
    public var line: Int
    public var productId: String
    public var sku: String
    public var name: String
    public var quantity: Int
    public var unitPriceCents: Cents
    public var lineTotalCents: Cents

    public init(orderId: String, line: Int, productId: String, sku: String, name: String, quantity: Int, unitPriceCents: Cents, lineTotalCents: Cents) {
        self.orderId = orderId; self.line = line; self.productId = productId; self.sku = sku; self.name = name
        self.quantity = quantity; self.unitPriceCents = unitPriceCents; self.lineTotalCents = lineTotalCents
    }

    public init(row: Row) throws {
        orderId = row["orderId"]; line = row["line"]; productId = row["productId"]; sku = row["sku"]; name = row["name"]
        quantity = row["quantity"]; unitPriceCents = row["unitPriceCents"]; lineTotalCents = row["lineTotalCents"]
    }

    public func insert(_ db: Database) throws {
        try db.run(cached: """
            INSERT INTO order_items (orderId, line, productId, sku, name, quantity, unitPriceCents, lineTotalCents)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, [orderId, line, productId, sku, name, quantity, unitPriceCents, lineTotalCents])
    }

    public var api: API.OrderItem {
        API.OrderItem(productId: productId, sku: sku, name: name, quantity: quantity, unitPriceCents: unitPriceCents)
    }

    public static func lines(of orderId: String, in db: Database) throws -> [OrderItemRecord] {
        try fetchAll(db, cached: "SELECT * FROM order_items WHERE orderId = ? ORDER BY line", [orderId])
    }
}

/// One money movement: a charge or a refund.
public struct PaymentRecord {
    public enum Kind: String, Sendable { case charge, refund }
    var id: String
    var orderId: String
    var kind: Kind
    var outcome: PaymentStatus
    var amountCents: Cents
    var attempts: Int
    var createdAt: Date

    /// `OR IGNORE` with `UNIQUE(orderId, kind)`: a second charge or refund
    /// of the same order is a no-op, whatever retried it.
    func insertOnce(_ db: Database) throws {
        try db.run(cached: """
            INSERT OR IGNORE INTO payments (id, orderId, kind, outcome, amountCents, attempts, createdAt)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            """, [id, orderId, kind.rawValue, outcome, amountCents, attempts, createdAt.databaseMilliseconds])
    }
}

struct InvoiceRecord {
    var orderId: String
    var number: Int
    var html: String
    var createdAt: Date

    func insertOnce(_ db: Database) throws {
        try db.run(cached: "INSERT OR IGNORE INTO invoices (orderId, number, html, createdAt) VALUES (?, ?, ?, ?)",
                   [orderId, number, html, createdAt.databaseMilliseconds])
    }
}

/// Stock of one product. `available` can be sold; `reserved` is held by
/// orders whose payment is not decided yet.
struct InventoryRecord: FetchableRecord, PersistableRecord {
    static let databaseTableName = "inventory"
    var productId: String
    var available: Int
    var reserved: Int

    var api: API.Inventory { API.Inventory(productId: productId, available: available, reserved: reserved) }

    init(productId: String, available: Int, reserved: Int) {
        self.productId = productId; self.available = available; self.reserved = reserved
    }

    init(row: Row) throws { productId = row["productId"]; available = row["available"]; reserved = row["reserved"] }

    func encode(to container: inout PersistenceContainer) throws {
        container["productId"] = productId; container["available"] = available; container["reserved"] = reserved
    }
}
