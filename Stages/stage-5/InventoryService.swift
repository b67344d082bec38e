import Auth
import Checkout
import Common
import Foundation
import GRDB
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// Stock, as a service of its own. It reserves an order's units when the
/// order is created, sells them when it is confirmed, and gives them back
/// when the order service asks (`stock.release`): the same all-or-nothing
/// movements as the monolith's, now each in its own transaction, started by
/// a message.
enum InventoryService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        let db = try openServiceDatabase(dataDir.appendingPathComponent("inventory.sqlite"), migrations: migrations)
        let inventory = Stock(db: db)
        let relay = messaging.relay(for: db)

        let consumer = messaging.consumer("inventory", handlers: [
            // All or nothing, as in the monolith: the order's lines are
            // reserved together, or none is and the order is rejected.
            Topic.orderCreated: { message in
                let order = try message.decodeChecked(OrderCreated.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    // Decided for this order already: a copy of the message under
                    // another id (a producer that published twice) changes nothing.
                    // Rejected orders are kept as rows too, for this check.
                    if try Int.fetchOne(db, cached: "SELECT 1 FROM reservations WHERE orderId = ? LIMIT 1", [order.orderId]) != nil { return [] }
                    let outcome = try inventory.reserve(order.items, in: db)
                    for line in order.items {
                        try db.run(cached: "INSERT OR IGNORE INTO reservations (orderId, productId, quantity, state) VALUES (?, ?, ?, ?)",
                                   [order.orderId, line.productId, line.quantity, outcome == .reserved ? "reserved" : "rejected"])
                    }
                    let type = outcome == .reserved ? Topic.stockReserved : Topic.stockRejected
                    return [try OutgoingMessage(type, StockMessage(orderId: order.orderId), order: order.orderId)]
                }
            },
            // Confirmed: the reserved units are sold.
            Topic.orderConfirmed: { message in
                let order = try message.decodeChecked(OrderOutcome.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    let lines = try reservation(order.orderId, in: "reserved", db)
                    try inventory.commit(lines, in: db)
                    try setState(order.orderId, from: "reserved", to: "sold", db)
                    return []
                }
            },
            // The order will not go ahead, or was cancelled after it was
            // confirmed: the units go back. Answered even when there was
            // nothing to give back, so that the order service can finish.
            Topic.stockRelease: { message in
                let request = try message.decodeChecked(StockMessage.self)
                try await Inbox.once(message, db: db, relay: relay) { db in
                    try inventory.release(try reservation(request.orderId, in: "reserved", db), in: db)
                    try setState(request.orderId, from: "reserved", to: "released", db)
                    try inventory.putBack(try reservation(request.orderId, in: "sold", db), in: db)
                    try setState(request.orderId, from: "sold", to: "returned", db)
                    return [try OutgoingMessage(Topic.stockReleased, StockMessage(orderId: request.orderId), order: request.orderId)]
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
