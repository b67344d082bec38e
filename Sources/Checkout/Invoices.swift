import Common
import Foundation
import GRDB
import Storage

/// Generates the HTML invoice when an order is confirmed, in the same
/// transaction. Stage 5 turns this into a background job.
public struct Invoices: Sendable {
    let db: any DatabaseWriter

    public init(db: any DatabaseWriter) { self.db = db }

    public func generate(for order: API.Order, customer: Recipient, in db: Database) throws {
        let next = (try Int.fetchOne(db, cached: "SELECT max(number) FROM invoices") ?? 0) + 1
        let billedTo = API.User(id: customer.userId, email: customer.email, name: customer.name, role: .customer)
        let html = InvoiceDocument.html(number: InvoiceDocument.number(next), order: order, customer: billedTo)
        try InvoiceRecord(orderId: order.id, number: next, html: html, createdAt: Timestamp.now()).insertOnce(db)
    }

    public func html(orderId: String) async throws -> String? {
        try await db.read { db in try String.fetchOne(db, cached: "SELECT html FROM invoices WHERE orderId = ?", [orderId]) }
    }
}
