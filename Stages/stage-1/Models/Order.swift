import Common
import Foundation
import Storage

struct OrderRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "orders"
    var id: String
    var userId: String
    var status: OrderStatus
    var cancelReason: CancelReason?
    var totalCents: Cents
    var paymentStatus: PaymentStatus
    var chargedCents: Cents
    var refundedCents: Cents
    var cardLast4: String
    var idempotencyKey: String?
    var requestFingerprint: String
    var createdAt: Date
    var updatedAt: Date

    func api(items: [OrderItemRecord]) -> API.Order {
        API.Order(
            id: id, userId: userId, status: status, cancelReason: cancelReason,
            items: items.map(\.api),
            payment: API.Payment(status: paymentStatus, chargedCents: chargedCents, refundedCents: refundedCents),
            createdAt: createdAt, updatedAt: updatedAt)
    }
}

/// A line of an order, with the product's sku, name and price copied in
/// at the moment the order was placed.
struct OrderItemRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "order_items"
    var orderId: String
    var line: Int
    var productId: String
    var sku: String
    var name: String
    var quantity: Int
    var unitPriceCents: Cents
    var lineTotalCents: Cents

    var api: API.OrderItem {
        API.OrderItem(productId: productId, sku: sku, name: name, quantity: quantity, unitPriceCents: unitPriceCents)
    }
}

struct PendingChargeRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "pending_charges"
    var orderId: String
    var card: String
}

struct PaymentRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "payments"
    enum Kind: String, Codable { case charge, refund }
    var id: String
    var orderId: String
    var kind: Kind
    var outcome: PaymentStatus
    var amountCents: Cents
    var attempts: Int
    var createdAt: Date
}

struct InvoiceRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "invoices"
    var orderId: String
    var number: Int
    var html: String
    var createdAt: Date
}

extension OrderRecord {
    static func find(_ id: String, in db: Database) throws -> OrderRecord? {
        try fetchOne(db, cached: "SELECT * FROM orders WHERE id = ?", [id])
    }
}

extension OrderItemRecord {
    static func lines(of orderId: String, in db: Database) throws -> [OrderItemRecord] {
        try fetchAll(db, cached: "SELECT * FROM order_items WHERE orderId = ? ORDER BY line", [orderId])
    }
}
