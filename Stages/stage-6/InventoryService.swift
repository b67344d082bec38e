import Auth
import Checkout
import Common
import Events
import Foundation
import GRDB
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// Stock, as a participant in the choreography. It reserves an order's
/// units when the order is created (`InventoryReserved` or
/// `InventoryRejected`), sells them when it is confirmed, and gives them back
/// on its own when a fact says the order will not go ahead: the payment
/// failed, or the order was cancelled (`InventoryReleased`). Stage 5 waited
/// for the order service's `stock.release`.
enum InventoryService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        let db = try openServiceDatabase(dataDir.appendingPathComponent("inventory.sqlite"), migrations: migrations)
        let inventory = Stock(db: db)
        let relay = messaging.relay(for: db)

        /// Gives back what the order holds (reserved units, or sold ones when
        /// it was confirmed), once: a second fact about the same order finds
        /// nothing left and publishes nothing.
        @Sendable func giveBack(_ orderId: String, causedBy event: ReceivedEvent, _ db: Database) throws -> [OutgoingMessage] {
            let reserved = try reservation(orderId, in: "reserved", db)
            try inventory.release(reserved, in: db)
            try setState(orderId, from: "reserved", to: "released", db)
            let sold = try reservation(orderId, in: "sold", db)
            try inventory.putBack(sold, in: db)
            try setState(orderId, from: "sold", to: "returned", db)
            guard !(reserved + sold).isEmpty else { return [] }
            return [try messaging.event(InventoryReleased(orderId: orderId, items: reserved + sold), correlationId: orderId, causedBy: event)]
        }

        let consumer = messaging.consumer("inventory", events: [
            // All or nothing, as in the monolith: the order's lines are
            // reserved together, or none is and the order is rejected.
            .on(OrderCreated.self) { event, message in
                let order = try event.decode(OrderCreated.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    // Decided for this order already: a copy of the event under
                    // another id (a producer that published twice) changes nothing.
                    // Rejected orders are kept as rows too, for this check.
                    if try Int.fetchOne(db, cached: "SELECT 1 FROM reservations WHERE orderId = ? LIMIT 1", [order.orderId]) != nil { return [] }
                    // Cancelled before this event reached us (it went down the
                    // retry ladder): nothing to hold.
                    if try Int.fetchOne(db, cached: "SELECT 1 FROM cancelled_orders WHERE orderId = ?", [order.orderId]) != nil { return [] }
                    let outcome = try inventory.reserve(order.items, in: db)
                    for line in order.items {
                        try db.run(cached: "INSERT OR IGNORE INTO reservations (orderId, productId, quantity, state) VALUES (?, ?, ?, ?)",
                                   [order.orderId, line.productId, line.quantity, outcome == .reserved ? "reserved" : "rejected"])
                    }
                    if outcome == .reserved {
                        return [try messaging.event(InventoryReserved(orderId: order.orderId, items: order.items), correlationId: order.orderId, causedBy: event)]
                    }
                    let short = try order.items.filter { line in
                        (try Int.fetchOne(db, cached: "SELECT available FROM inventory WHERE productId = ?", [line.productId]) ?? 0) < line.quantity
                    }.map(\.productId)
                    return [try messaging.event(InventoryRejected(orderId: order.orderId, shortProductIds: short), correlationId: order.orderId, causedBy: event)]
                }
            },
            // Confirmed: the reserved units are sold.
            .on(OrderConfirmed.self) { event, message in
                let order = try event.decode(OrderConfirmed.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    let lines = try reservation(order.orderId, in: "reserved", db)
                    try inventory.commit(lines, in: db)
                    try setState(order.orderId, from: "reserved", to: "sold", db)
                    return []
                }
            },
            // The payment failed: the order will not go ahead.
            .on(PaymentFailed.self) { event, message in
                let failure = try event.decode(PaymentFailed.self)
                try await Inbox.once(message, db: db, relay: relay) { db in try giveBack(failure.orderId, causedBy: event, db) }
            },
            // Cancelled, before or after it was confirmed.
            .on(OrderCancelled.self) { event, message in
                let cancelled = try event.decode(OrderCancelled.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    try db.run(cached: "INSERT OR IGNORE INTO cancelled_orders (orderId) VALUES (?)", [cancelled.orderId])
                    return try giveBack(cancelled.orderId, causedBy: event, db)
                }
            },
        ])

        let router = ShopServerRunner.makeRouter()
        router.addInventoryRoutes(inventory, auth: auth)
        // The gateway makes a new product's stock row right after the product
        // service created the product (administrators only: the gateway signs
        // its own token).
        router.post("/internal/stock") { request, context in
            _ = try auth.admin(request, context: context)
            var request = request
            let body = try await request.decodeJSON(InternalCalls.InitialStock.self)
            try await inventory.create(productId: body.productId, initialStock: Validate.initialStock(body.initialStock))
            return Reply.json([String: String]())
        }
        router.addServiceHealth(stage: ThisStage.number, name: "inventory", db: db, messaging: messaging)
        return (router, [messaging.client, relay, consumer] + messaging.housekeeping(for: db))
    }

    /// The stock table as the monolith had it, and what each order holds.
    static let migrations = [
        Migration("inventory v1", sql: """
            -- The CHECKs are the last line of defence against overselling: even a
            -- bug in the code cannot drive stock below zero.
            CREATE TABLE inventory (
                productId TEXT PRIMARY KEY,
                available INTEGER NOT NULL CHECK (available >= 0),
                reserved INTEGER NOT NULL CHECK (reserved >= 0)
            ) WITHOUT ROWID;
            -- What each order holds, so that confirming or releasing it later
            -- moves exactly these units, once. state: reserved → sold | released;
            -- sold → returned (a confirmed order cancelled); rejected (out of stock).
            CREATE TABLE reservations (
                orderId TEXT NOT NULL,
                productId TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                state TEXT NOT NULL,
                PRIMARY KEY (orderId, productId)
            ) WITHOUT ROWID;
            """),
        // Stage 6: a cancellation is remembered, so that an OrderCreated
        // arriving after it (down the retry ladder) holds nothing.
        Migration("inventory v2: cancelled orders", sql: """
            CREATE TABLE cancelled_orders (orderId TEXT PRIMARY KEY) WITHOUT ROWID;
            """),
    ]

    static func reservation(_ orderId: String, in state: String, _ db: Database) throws -> [Line] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT productId, quantity FROM reservations WHERE orderId = ? AND state = ?"),
                         arguments: [orderId, state])
            .map { Line(productId: $0["productId"], quantity: $0["quantity"]) }
    }

    static func setState(_ orderId: String, from: String, to: String, _ db: Database) throws {
        try db.run(cached: "UPDATE reservations SET state = ? WHERE orderId = ? AND state = ?", [to, orderId, from])
    }
}
