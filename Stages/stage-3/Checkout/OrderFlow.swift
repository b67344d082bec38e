import Auth
import Checkout
import Common
import Foundation
import GRDB
import Logging
import Storage

/// Placing, cancelling and shipping orders: the whole checkout,
/// synchronously, in the customer's request. Stages 1 to 3 run it in one
/// process; stage 4 replaces this file with a saga between services that
/// exchange messages (`scripts/diff-stages 3 4`).
///
/// One order goes through two transactions of the one database:
///   1. insert the order, reserve its stock (or cancel it: out of stock);
///   2. after charging the card, confirm (stock sold, invoice, email) or
///      cancel (stock released, email).
/// The charge sits between them, outside any transaction, because holding
/// the single SQLite writer while a payment provider thinks would stop every
/// other checkout. If the process dies between 1 and 2, the order is still
/// `pending` with its stock reserved; `resumePendingCharges` finishes it at
/// the next start.
///
/// Both go through `writer`, a group commit (Sources/Storage/GroupCommit.swift):
/// each is still a transaction of its own for everything it reads and
/// writes, but the orders of concurrent customers share a commit, which is
/// what lets one SQLite writer keep up with many of them.
struct OrderFlow: OrderCommands {
    let db: any DatabaseWriter
    let writer: GroupCommit
    let catalogue: any Catalogue
    let inventory: Stock
    let payments: Payments
    let notifications: Notifications
    let invoices: Invoices
    let queries: OrderQueries

    typealias Placement = OrderQueries.Placement

    func place(
        _ request: API.PlaceOrderRequest, idempotencyKey: String?, by principal: Principal, requestId: String, logger: Logger
    ) async throws -> Placement {
        let valid = try ValidOrderRequest(request)
        if let key = idempotencyKey, let earlier = try await queries.order(userId: principal.userId, idempotencyKey: key) {
            return try queries.replay(earlier, for: valid, as: try await queries.load(earlier.id))
        }
        // Prices and names are copied into the order now: a later change in
        // the catalogue cannot alter it. The catalogue is another service's
        // now, so it is asked before transaction 1 begins (holding the one
        // writer while another process answers would stop every checkout):
        // the prices are those of a moment just before the order is stored.
        // If the product service is down, nobody can order: its 503 reaches
        // the customer, and nothing is stored.
        let products = try await catalogue.products(ids: valid.lines.map(\.productId), requestId: requestId)
        let orderId = ID.make(ID.order)
        var logger = logger
        logger[metadataKey: "order_id"] = .string(orderId)
        let customer = Recipient(userId: principal.userId, email: principal.email, name: principal.name)

        // Transaction 1: store the order and hold its stock; or cancel it at
        // once for lack of stock (no charge is attempted).
        let placed: API.Order
        do {
            placed = try await writer.write { [inventory, notifications] db in
                let items = try Pricing.price(valid, catalogue: products)
                let now = Timestamp.now()
                var order = OrderRecord(
                    id: orderId, userId: principal.userId, status: .pending, cancelReason: nil,
                    totalCents: items.reduce(0) { $0 + $1.lineTotalCents }, paymentStatus: .pending,
                    chargedCents: 0, refundedCents: 0, cardLast4: valid.card.last4, pendingCard: valid.card.digits,
                    customerEmail: customer.email, customerName: customer.name, idempotencyKey: idempotencyKey, requestFingerprint: valid.fingerprint, createdAt: now, updatedAt: now)
                let lines = items.enumerated().map { index, item in
                    OrderItemRecord(
                        orderId: orderId, line: index + 1, productId: item.productId, sku: item.sku, name: item.name,
                        quantity: item.quantity, unitPriceCents: item.unitPriceCents, lineTotalCents: item.lineTotalCents)
                }
                try order.insert(db)
                for line in lines { try line.insert(db) }
                switch try inventory.reserve(lines, in: db) {
                case .reserved:
                    break
                case .rejected:
                    order.pendingCard = nil
                    order.status = try order.status.cancelling()
                    order.cancelReason = .outOfStock
                    try order.update(db)
                    try notifications.record(.orderCancelled, to: customer, orderId: orderId, in: db)
                }
                return order.api(items: lines)
            }
        } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE && idempotencyKey != nil {
            // Another request with the same key won the race: answer as a replay.
            guard let earlier = try await queries.order(userId: principal.userId, idempotencyKey: idempotencyKey!) else { throw error }
            return try queries.replay(earlier, for: valid, as: try await queries.load(earlier.id))
        }
        logger.debug("order placed", metadata: ["status": .string(placed.status.rawValue)])
        OrderMetrics.placed()
        guard placed.status == .pending else {
            OrderMetrics.decided(placed.status, reason: placed.cancelReason)
            return .created(placed)
        }

        let charge = await payments.charge(valid.card, orderId: orderId, logger: logger)
        let decided = try await settle(orderId: orderId, payment: charge.outcome, attempts: charge.attempts, logger: logger)
        return .created(decided ?? placed)
    }

    /// Transaction 2: apply the payment's outcome to a pending order, and
    /// answer the order as it now is.
    @discardableResult
    func settle(orderId: String, payment: PaymentOutcome, attempts: Int, logger: Logger) async throws -> API.Order? {
        let (order, decidedNow): (API.Order?, Bool) = try await writer.write { [inventory, payments, notifications, invoices] db in
            guard var order = try OrderRecord.find(orderId, in: db) else { return (nil, false) }
            let lines = try OrderItemRecord.lines(of: orderId, in: db)
            let customer = order.customer
            order.pendingCard = nil
            order.updatedAt = Timestamp.now()

            guard order.status == .pending else {
                // Decided already (settled twice, e.g. by a recovery): nothing to do.
                guard order.status == .cancelled, order.paymentStatus == .pending else { return (order.api(items: lines), false) }
                // The customer cancelled while we were charging; the stock was
                // released then. A capture that happened anyway is refunded:
                // the compensation a saga would run, here in one transaction.
                if payment == .captured {
                    try payments.record(.charge, outcome: .captured, amount: order.totalCents, attempts: attempts, orderId: orderId, in: db)
                    try payments.record(.refund, outcome: .refunded, amount: order.totalCents, attempts: 1, orderId: orderId, in: db)
                    order.paymentStatus = .refunded
                    order.chargedCents = order.totalCents
                    order.refundedCents = order.totalCents
                } else {
                    order.paymentStatus = .declined
                }
                try order.update(db)
                return (order.api(items: lines), false)
            }

            switch OrderDecision.decide(stock: .reserved, payment: payment)! {
            case .confirm:
                try inventory.commit(lines, in: db)
                try payments.record(.charge, outcome: .captured, amount: order.totalCents, attempts: attempts, orderId: orderId, in: db)
                order.status = try order.status.confirming()
                order.paymentStatus = .captured
                order.chargedCents = order.totalCents
                try order.update(db)
                try notifications.record(.orderConfirmed, to: customer, orderId: orderId, in: db)
                try invoices.generate(for: order.api(items: lines), customer: customer, in: db)
            case .cancel(let reason):
                try inventory.release(lines, in: db)
                try payments.record(.charge, outcome: .declined, amount: 0, attempts: attempts, orderId: orderId, in: db)
                order.status = try order.status.cancelling()
                order.cancelReason = reason
                order.paymentStatus = .declined
                try order.update(db)
                try notifications.record(.orderCancelled, to: customer, orderId: orderId, in: db)
            }
            return (order.api(items: lines), true)
        }
        if let order, decidedNow {
            logger.info("order decided", metadata: ["status": .string(order.status.rawValue)])
            OrderMetrics.decided(order.status, reason: order.cancelReason)
        }
        return order
    }

    /// Finishes orders whose charge was interrupted by a crash. Runs before
    /// the server accepts requests.
    func resumePendingCharges(logger: Logger) async throws {
        let pending: [(orderId: String, card: String)] = try await db.read { db in
            try Row.fetchAll(db, sql: "SELECT id, pendingCard FROM orders WHERE pendingCard IS NOT NULL")
                .map { ($0["id"], $0["pendingCard"]) }
        }
        for (orderId, pendingCard) in pending {
            var logger = logger
            logger[metadataKey: "order_id"] = .string(orderId)
            logger.notice("resuming an order interrupted before its charge was decided")
            // One order that cannot be settled must not keep the whole shop
            // from starting (a crash loop): log it, leave it pending, go on.
            do {
                let card = try CardNumber(pendingCard)
                let result = await payments.charge(card, orderId: orderId, logger: logger)
                try await settle(orderId: orderId, payment: result.outcome, attempts: result.attempts, logger: logger)
            } catch {
                logger.error("could not resume the order; it stays pending until the next start", metadata: ["error": .string("\(error)")])
            }
        }
    }

    func cancel(orderId: String, by principal: Principal, requestId: String) async throws -> API.Order {
        let (answer, decidedNow): (API.Order, Bool) = try await writer.write { [inventory, payments, notifications] db in
            guard var order = try OrderRecord.find(orderId, in: db), OrderQueries.visible(order, to: principal) else {
                throw ShopError.notFound("order \(orderId)")
            }
            let lines = try OrderItemRecord.lines(of: orderId, in: db)
            let previous = order.status
            order.status = try order.status.cancelling()
            order.cancelReason = .customerRequest
            order.updatedAt = Timestamp.now()
            if previous == .confirmed {
                // Refund in full, and the units go back on the shelf.
                try inventory.putBack(lines, in: db)
                try payments.record(.refund, outcome: .refunded, amount: order.chargedCents, attempts: 1, orderId: orderId, in: db)
                order.paymentStatus = .refunded
                order.refundedCents = order.chargedCents
            } else {
                // Still pending: release the reservation; `settle` refunds a
                // charge that completes after this.
                try inventory.release(lines, in: db)
            }
            try order.update(db)
            try notifications.record(.orderCancelled, to: order.customer, orderId: orderId, in: db)
            return (order.api(items: lines), previous == .pending)
        }
        // A pending order cancelled by its customer is decided here.
        if decidedNow { OrderMetrics.decided(answer.status, reason: answer.cancelReason) }
        return answer
    }

    func ship(orderId: String, requestId: String) async throws -> API.Order {
        try await writer.write { [notifications] db in
            guard var order = try OrderRecord.find(orderId, in: db) else { throw ShopError.notFound("order \(orderId)") }
            order.status = try order.status.shipping()
            order.updatedAt = Timestamp.now()
            try order.update(db)
            try notifications.record(.orderShipped, to: order.customer, orderId: orderId, in: db)
            let lines = try OrderItemRecord.lines(of: orderId, in: db)
            return order.api(items: lines)
        }
    }

    /// The caller's newest orders, for the customer summary.
    func list(userId: String?, limit: Int, startingAfter: String?) async throws -> API.OrderList {
        try await queries.list(userId: userId, limit: limit, startingAfter: startingAfter)
    }
}
