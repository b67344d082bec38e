import Auth
import Common
import Events
import Foundation
import GRDB
import Hummingbird
import Kafka
import Logging
import ServiceLifecycle
import ShopServer
import Storage
import Streams

// The services only a log makes possible: analytics, from the `orders`
// topic, and the query service (QueryService.swift), from the order
// service's own log. Neither is asked anything by the others, and their
// state is a stream of events and nothing else, kept in a database of
// their own, every row tagged with the read model's generation (see
// `ReadModel` in Sources/Streams). So they can be rewound to offset 0 and
// rebuilt beside the live state, and the figures they answer afterwards
// are exactly those they answered before.

/// What both services need: their database, their group's consumer, the
/// routes every read model has (its replay, its health).
enum ReadModelService {
    static func build(
        group: String, settings: Settings, dataDir: URL, messaging: ServiceMessaging, migrations: [Migration],
        tables: [String], logger: Logger, apply: @escaping ReadModel.Apply
    ) throws -> (Router<ShopRequestContext>, ReadModel, Authenticator, DatabasePool) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        let (model, db) = try Self.model(group: group, settings: settings, dataDir: dataDir, messaging: messaging, migrations: migrations,
                                         tables: tables, logger: logger, apply: apply)

        let router = ShopServerRunner.makeRouter()
        router.post("/reports/stream/:group/replay") { request, context in
            _ = try auth.admin(request, context: context)
            guard context.parameters.get("group") == group else { throw ShopError.notFound("consumer group \(context.parameters.get("group") ?? "")") }
            try await model.replay()
            return Reply.json(["group": group], status: .accepted)
        }
        router.get("/health") { _, _ in
            let up = (try? await db.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
            // Ready once its consumer has joined the group (see ServiceMessaging's health).
            let joined = model.hasJoined
            return Reply.json(
                API.Health(stage: ThisStage.number, services: [group: .up, "database": up ? .up : .down, "kafka": joined ? .up : .down]),
                status: up && joined ? .ok : .serviceUnavailable)
        }
        return (router, model, auth, db)
    }

    /// A read model: its database (`<group>.sqlite`), and its group's
    /// consumer on the topics the group reads.
    static func model(
        group: String, settings: Settings, dataDir: URL, messaging: ServiceMessaging, migrations: [Migration],
        tables: [String], logger: Logger, verify: ReadModel.Verify? = nil, committed: ReadModel.Committed? = nil,
        apply: @escaping ReadModel.Apply
    ) throws -> (ReadModel, DatabasePool) {
        guard let definition = StageTopology.group(group), definition.replayable else { preconditionFailure("\(group) is not a read model") }
        // Shared by every instance of the service (the supervisor gives them
        // one folder): two processes, one database, partitions shared out.
        let db = try SQLiteStore.openPool(at: dataDir.appendingPathComponent("\(group).sqlite"), migrations: ReadModel.migrations + migrations)
        var consumer = KafkaConsumerConfiguration(
            bootstrapServers: settings.kafkaBootstrap, groupID: "\(messaging.namespace).\(group)",
            topics: definition.topicNames(namespace: messaging.namespace), clientID: "\(messaging.namespace).\(group)")
        consumer.fetchWaitMax = StageTopology.fetchWait
        consumer.autoCommitStoredEvery = StageTopology.commitEvery
        let model = ReadModel(
            name: group, db: db, consumer: consumer, deadLetters: messaging.deadLetters, catalog: EventLog.catalog,
            tables: tables, logger: logger, readAs: EventLog.readAs, verify: verify, committed: committed, apply: apply)
        return (model, db)
    }
}

/// `GET /reports/analytics`: counts of the order events per minute and by
/// cancellation reason, the best sellers, and how long orders wait for
/// their decision, all from the events' own times, so that a replay
/// computes the same figures.
enum AnalyticsService {
    static let tables = ["analytics_orders", "analytics_lines", "analytics_minutes", "analytics_cancellations"]

    static let migrations = [
        Migration("analytics v1", sql: """
            -- Times in ms since 1970, from the events' `time`. sold: confirmed or
            -- shipped and not cancelled since (what the sales report counts).
            CREATE TABLE analytics_orders (
                generation INTEGER NOT NULL,
                orderId TEXT NOT NULL,
                createdAt INTEGER NOT NULL,
                decidedAt INTEGER,
                sold INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (generation, orderId)
            ) WITHOUT ROWID;
            CREATE TABLE analytics_lines (
                generation INTEGER NOT NULL,
                orderId TEXT NOT NULL,
                line INTEGER NOT NULL,
                productId TEXT NOT NULL,
                sku TEXT,
                quantity INTEGER NOT NULL,
                PRIMARY KEY (generation, orderId, line)
            ) WITHOUT ROWID;
            -- minute: ms since 1970 of the minute's start.
            CREATE TABLE analytics_minutes (
                generation INTEGER NOT NULL,
                minute INTEGER NOT NULL,
                placed INTEGER NOT NULL DEFAULT 0,
                confirmed INTEGER NOT NULL DEFAULT 0,
                cancelled INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (generation, minute)
            ) WITHOUT ROWID;
            CREATE TABLE analytics_cancellations (
                generation INTEGER NOT NULL,
                reason TEXT NOT NULL,
                count INTEGER NOT NULL,
                PRIMARY KEY (generation, reason)
            ) WITHOUT ROWID;
            """),
    ]

    struct Report: Codable, Sendable, Equatable {
        struct Cancellations: Codable, Sendable, Equatable {
            var out_of_stock: Int
            var payment_declined: Int
            var customer_request: Int
        }
        struct Product: Codable, Sendable, Equatable {
            var productId: String
            var sku: String
            var unitsSold: Int
        }
        struct Latency: Codable, Sendable, Equatable {
            var p50: Int
            var p99: Int
        }
        struct Minute: Codable, Sendable, Equatable {
            var minute: String
            var placed: Int
            var confirmed: Int
            var cancelled: Int
        }
        var ordersPlaced: Int
        var ordersConfirmed: Int
        var ordersCancelled: Int
        var cancellations: Cancellations
        var topProducts: [Product]
        var decisionLatencyMs: Latency
        var perMinute: [Minute]
    }

    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let (router, model, auth, db) = try ReadModelService.build(
            group: "analytics", settings: settings, dataDir: dataDir, messaging: messaging, migrations: migrations,
            tables: tables, logger: logger, apply: apply)
        router.get("/reports/analytics") { request, context in
            _ = try auth.admin(request, context: context)
            return Reply.json(try await db.read { db in try report(db) })
        }
        return (router, [model])
    }

    struct AboutAnOrder: Decodable { var orderId: String }

    @Sendable static func apply(_ event: ReceivedEvent, generation: Int, db: Database) throws {
        let time = Timestamp.milliseconds(event.time)
        let minute = time - time % 60_000
        func count(_ column: String) throws {
            try db.execute(sql: """
                INSERT INTO analytics_minutes (generation, minute, \(column)) VALUES (?, ?, 1)
                ON CONFLICT (generation, minute) DO UPDATE SET \(column) = \(column) + 1
                """, arguments: [generation, minute])
        }
        func decided(_ orderId: String) throws {
            try db.execute(sql: "UPDATE analytics_orders SET decidedAt = ? WHERE generation = ? AND orderId = ? AND decidedAt IS NULL",
                           arguments: [time, generation, orderId])
        }
        switch event.name {
        case OrderCreated.name:
            let order = try event.decode(OrderCreated.self)
            try db.execute(sql: "INSERT INTO analytics_orders (generation, orderId, createdAt) VALUES (?, ?, ?)", arguments: [generation, order.orderId, time])
            for (index, line) in order.items.enumerated() {
                try db.execute(sql: "INSERT INTO analytics_lines (generation, orderId, line, productId, sku, quantity) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [generation, order.orderId, index + 1, line.productId, line.sku, line.quantity])
            }
            try count("placed")
        case OrderConfirmed.name:
            let orderId = try event.decode(AboutAnOrder.self).orderId
            try decided(orderId)
            try db.execute(sql: "UPDATE analytics_orders SET sold = 1 WHERE generation = ? AND orderId = ?", arguments: [generation, orderId])
            try count("confirmed")
        case OrderCancelled.name:
            let cancelled = try event.decode(OrderCancelled.self)
            try decided(cancelled.orderId)
            try db.execute(sql: "UPDATE analytics_orders SET sold = 0 WHERE generation = ? AND orderId = ?", arguments: [generation, cancelled.orderId])
            try db.execute(sql: """
                INSERT INTO analytics_cancellations (generation, reason, count) VALUES (?, ?, 1)
                ON CONFLICT (generation, reason) DO UPDATE SET count = count + 1
                """, arguments: [generation, cancelled.reason.rawValue])
            try count("cancelled")
        default: break
        }
    }

    static func report(_ db: Database) throws -> Report {
        let generation = try ReadModel.liveGeneration(db)
        let totals = try Row.fetchOne(db, sql: """
            SELECT coalesce(sum(placed), 0) AS placed, coalesce(sum(confirmed), 0) AS confirmed, coalesce(sum(cancelled), 0) AS cancelled
            FROM analytics_minutes WHERE generation = ?
            """, arguments: [generation])
        var reasons: [String: Int] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT reason, count FROM analytics_cancellations WHERE generation = ?", arguments: [generation]) {
            reasons[row["reason"]] = row["count"]
        }
        let top = try Row.fetchAll(db, sql: """
            SELECT l.productId, max(l.sku) AS sku, sum(l.quantity) AS units
            FROM analytics_lines l JOIN analytics_orders o ON o.generation = l.generation AND o.orderId = l.orderId
            WHERE l.generation = ? AND o.sold = 1
            GROUP BY l.productId ORDER BY units DESC, sku LIMIT 10
            """, arguments: [generation])
        let latencies = try Int64.fetchAll(db, sql: """
            SELECT decidedAt - createdAt FROM analytics_orders WHERE generation = ? AND decidedAt IS NOT NULL ORDER BY 1
            """, arguments: [generation])
        // Nearest rank: the smallest latency at or above the given share.
        func percentile(_ share: Double) -> Int {
            guard !latencies.isEmpty else { return 0 }
            let rank = Int((share * Double(latencies.count)).rounded(.up))
            return Int(max(0, latencies[max(0, min(latencies.count, rank) - 1)]))
        }
        let minutes = try Row.fetchAll(db, sql: """
            SELECT minute, placed, confirmed, cancelled FROM analytics_minutes WHERE generation = ? ORDER BY minute DESC LIMIT 60
            """, arguments: [generation]).reversed()
        return Report(
            ordersPlaced: totals?["placed"] ?? 0, ordersConfirmed: totals?["confirmed"] ?? 0, ordersCancelled: totals?["cancelled"] ?? 0,
            cancellations: .init(
                out_of_stock: reasons[CancelReason.outOfStock.rawValue] ?? 0,
                payment_declined: reasons[CancelReason.paymentDeclined.rawValue] ?? 0,
                customer_request: reasons[CancelReason.customerRequest.rawValue] ?? 0),
            topProducts: top.map { .init(productId: $0["productId"], sku: $0["sku"] ?? "", unitsSold: $0["units"]) },
            decisionLatencyMs: .init(p50: percentile(0.5), p99: percentile(0.99)),
            perMinute: minutes.map { row in
                let start = Date(timeIntervalSince1970: Double(row["minute"] as Int64) / 1000)
                return .init(minute: Timestamp.format(start), placed: row["placed"], confirmed: row["confirmed"], cancelled: row["cancelled"])
            })
    }
}
