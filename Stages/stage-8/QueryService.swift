import Auth
import Common
import Discovery
import EventStore
import Events
import Foundation
import GRDB
import Hummingbird
import Logging
import Messaging
import Observability
import ServiceLifecycle
import ShopClient
import ShopServer
import Storage
import Streams

/// The query side of CQRS: a service with its own read database, whose
/// only input is the order service's log (`<ns>.order-store`), and which
/// answers `GET /orders`, `GET /orders/{id}`, the orders of the customer's
/// summary and `GET /reports/sales`. Two projections, each a `ReadModel`
/// (Sources/Streams) with its own consumer group and database:
/// - `order-views`: one row per order, its state folded by the write
///   side's own `Order.evolve`, so a view is exactly what the aggregate
///   is at the same position;
/// - `sales`: the report's figures, kept up to date event by event (an
///   order counts while confirmed or shipped).
/// Each stores, in the transaction of every update, the store position it
/// has reached (and `ReadModel` its offset and the event's id), so an
/// event applied twice changes nothing. Each can be rebuilt from the start
/// of the log (offset 0 of `<ns>.order-store`, which keeps every event the
/// store ever had) into a new generation while the old one answers, and is
/// switched to only if its tables' digests equal the live ones at the same
/// position.
enum QueryService {
    /// How long a read waits for the views to reach the caller's own last
    /// write (`Shop-Min-Position`; ReadYourWrites.swift).
    static let freshnessWait: Duration = .seconds(3)

    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, registry: ServiceRegistry, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let auth = Authenticator(signer: credentials.signer)
        // Readers waiting for an order to be decided (`Prefer: wait`): told
        // of each of its events once the view has committed it.
        let decisions = WaitList()
        let (views, viewsDB) = try ReadModelService.model(
            group: OrderViews.name, settings: settings, dataDir: dataDir, messaging: messaging, migrations: OrderViews.migrations,
            tables: OrderViews.tables.map(\.name), logger: logger,
            verify: { db, live, rebuilt in try ReadModel.compare(db, tables: OrderViews.tables, live: live, rebuilt: rebuilt) },
            committed: { event in if let stored = try? event.recorded { decisions.post(stored.stream) } },
            apply: OrderViews.apply)
        let (sales, salesDB) = try ReadModelService.model(
            group: SalesView.name, settings: settings, dataDir: dataDir, messaging: messaging, migrations: SalesView.migrations,
            tables: SalesView.tables.map(\.name), logger: logger,
            verify: { db, live, rebuilt in try ReadModel.compare(db, tables: SalesView.tables, live: live, rebuilt: rebuilt) },
            apply: SalesView.apply)
        let projections = [
            Projection(name: OrderViews.name, model: views, db: viewsDB, positions: OrderViews.positions),
            Projection(name: SalesView.name, model: sales, db: salesDB, positions: SalesView.positions),
        ]
        let orderService = DiscoveredService("order", directory: ServiceDirectory(registry), http: HTTPClient(timeout: .seconds(2)))
        let serviceToken = credentials.signer.sign(Principal(userId: "svc_query", email: "query@shop.local", name: "Query service", role: .admin))
        let status = ProjectionStatus(projections: projections) {
            let answer: OrderStore.Position = try await orderService.get("/internal/store/position", token: serviceToken)
            return answer.position
        }
        // `shop_projection_lag_events{projection}`: events in the store that
        // a projection has not applied yet, as `/admin/projections` shows it.
        // It rises during a burst of commands and falls back to 0. During
        // a rebuild the live views stand still (see ReadYourWrites), so it
        // climbs while orders keep coming, and drops once the rebuilt
        // generation is switched in.
        Observability.beforeEachScrape {
            guard let items = try? await status.items(projections) else { return }
            for item in items {
                if let lag = item.lag { Observability.gauge("shop_projection_lag_events", [("projection", item.name)]).record(lag) }
            }
        }

        let router = ShopServerRunner.makeRouter()
        router.get("/orders") { request, context in
            let principal = try auth.principal(request, context: context)
            let query = try OrderListQuery(request.uri.queryParameters)
            if query.all && !principal.isAdmin {
                throw ShopError.forbidden("only an administrator may list every customer's orders (all=true)")
            }
            try await projections[0].waitFor(request)
            return Reply.json(try await viewsDB.read { db in
                try OrderViews.list(db, userId: query.all ? nil : principal.userId, limit: query.limit, startingAfter: query.startingAfter)
            })
        }
        router.get("/orders/:id") { request, context in
            let principal = try auth.principal(request, context: context)
            let orderId = try context.parameters.id("id")
            try await projections[0].waitFor(request)
            let read = { @Sendable () async throws -> API.Order in
                guard let order = try await viewsDB.read({ db in try OrderViews.order(db, id: orderId) }),
                      principal.isAdmin || order.userId == principal.userId else { throw ShopError.notFound("order \(orderId)") }
                return order.api
            }
            guard let wait = PreferredWait(request.headers) else { return Reply.json(try await read()) }
            var response = Reply.json(try await decisions.read(orderId, waitingUpTo: wait.duration, until: { $0.status != .pending }, read))
            response.headers[.preferenceApplied] = wait.applied
            return response
        }
        router.get("/reports/sales") { request, context in
            _ = try auth.admin(request, context: context)
            try await projections[1].waitFor(request)
            return Reply.json(try await salesDB.read { db in try SalesView.report(db) })
        }
        router.get("/admin/projections") { request, context in
            _ = try auth.admin(request, context: context)
            return Reply.json(API.ItemList(items: try await status.items(projections)))
        }
        router.post("/admin/projections/rebuild") { request, context in
            _ = try auth.admin(request, context: context)
            let chosen: [Projection]
            if let name = request.uri.queryParameters.get("projection") {
                guard let projection = projections.first(where: { $0.name == name }) else {
                    throw ShopError.notFound("projection \(name) (there are \(projections.map(\.name).joined(separator: ", ")))")
                }
                chosen = [projection]
            } else {
                chosen = projections
            }
            // Started together, waited for together: each reads the log
            // from position 0 into its next generation, and the answer
            // comes once every one has switched (or was dropped as unequal).
            let force: Bool
            switch request.uri.queryParameters.get("force") {
            case nil, "false": force = false
            case "true": force = true
            default: throw ShopError.invalid("force", "must be true or false")
            }
            for projection in chosen { try await projection.model.replay(force: force) }
            for projection in chosen { try await projection.waitUntilRebuilt(within: .seconds(300)) }
            return Reply.json(API.ItemList(items: try await status.items(chosen)))
        }
        // stage 7's way to the same thing, for the lag report's replayable groups
        router.post("/reports/stream/:group/replay") { request, context in
            _ = try auth.admin(request, context: context)
            let name = context.parameters.get("group") ?? ""
            guard let projection = projections.first(where: { $0.name == name }) else { throw ShopError.notFound("consumer group \(name)") }
            try await projection.model.replay()
            return Reply.json(["group": name], status: .accepted)
        }
        router.get("/health") { _, _ in
            let up = (try? await viewsDB.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
            let joined = projections.allSatisfy(\.model.hasJoined)
            return Reply.json(
                API.Health(stage: ThisStage.number, services: ["query": .up, "database": up ? .up : .down, "kafka": joined ? .up : .down]),
                status: up && joined ? .ok : .serviceUnavailable)
        }
        return (router, [views, sales])
    }
}

/// One projection as the query service handles it.
struct Projection: Sendable {
    let name: String
    let model: ReadModel
    let db: DatabasePool
    /// The store position the given generation has applied.
    let positions: @Sendable (Database, _ generation: Int) throws -> Int64

    func livePosition() async throws -> Int64 {
        try await db.read { db in try positions(db, try ReadModel.liveGeneration(db)) }
    }

    /// Read your own writes: a request with `Shop-Min-Position` waits until
    /// the live generation has applied that position, at most
    /// `QueryService.freshnessWait`; then it answers what there is.
    func waitFor(_ request: Request) async throws {
        guard let wanted = request.headers[Consistency.minPosition].flatMap({ Int64($0) }) else { return }
        let clock = ContinuousClock()
        let deadline = clock.now + QueryService.freshnessWait
        while try await livePosition() < wanted, clock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func waitUntilRebuilt(within limit: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while try await model.status().building != nil {
            guard clock.now < deadline else { throw ShopError.unavailable("the rebuild of \(name) (still running; GET /admin/projections shows it)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// `GET /admin/projections`: where each projection is, against the store.
struct ProjectionStatus: Sendable {
    let projections: [Projection]
    let storePosition: @Sendable () async throws -> Int64

    init(projections: [Projection], storePosition: @escaping @Sendable () async throws -> Int64) {
        self.projections = projections
        self.storePosition = storePosition
    }

    struct Item: Codable, Sendable {
        var name: String
        /// The store position the live generation has applied.
        var position: Int64
        /// Events stored but not applied yet (null when the order service
        /// does not answer).
        var lag: Int64?
        /// `live`, or `rebuilding` while a new generation is being built.
        var status: String
        /// When the live generation was switched to (null: never rebuilt).
        var rebuiltAt: Date?
        /// The newest rebuild: `switched`, `mismatch` (dropped: its tables
        /// differed from the live ones at the same position; `detail` says
        /// which), or null while it runs.
        var lastRebuild: LastRebuild?

        // Every field is always there, null when it has no value, as the
        // contract lists them (Swift's encoder would leave nils out).
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(position, forKey: .position)
            try c.encode(lag, forKey: .lag)
            try c.encode(status, forKey: .status)
            try c.encode(rebuiltAt, forKey: .rebuiltAt)
            try c.encode(lastRebuild, forKey: .lastRebuild)
        }
    }

    struct LastRebuild: Codable, Sendable {
        var generation: Int
        var outcome: String?
        var detail: String?
        var startedAt: Date
        var finishedAt: Date?

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(generation, forKey: .generation)
            try c.encode(outcome, forKey: .outcome)
            try c.encode(detail, forKey: .detail)
            try c.encode(startedAt, forKey: .startedAt)
            try c.encode(finishedAt, forKey: .finishedAt)
        }
    }

    func items(_ chosen: [Projection]) async throws -> [Item] {
        let store = try? await storePosition()
        var items: [Item] = []
        for projection in chosen {
            let position = try await projection.livePosition()
            let status = try await projection.model.status()
            let rebuilds = try await projection.db.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM read_model_rebuilds ORDER BY generation DESC")
            }
            let switchedAt = rebuilds.first { $0["generation"] == status.live && $0["outcome"] == "switched" }
                .flatMap { ($0["finishedAt"] as Int64?).map(Date.init(databaseMilliseconds:)) }
            let last = rebuilds.first.map { row in
                LastRebuild(generation: row["generation"], outcome: row["outcome"], detail: row["detail"],
                            startedAt: Date(databaseMilliseconds: row["startedAt"]), finishedAt: (row["finishedAt"] as Int64?).map(Date.init(databaseMilliseconds:)))
            }
            items.append(Item(
                name: projection.name, position: position, lag: store.map { max(0, $0 - position) },
                status: status.building == nil ? "live" : "rebuilding", rebuiltAt: switchedAt, lastRebuild: last))
        }
        return items
    }
}

/// A stored event as it arrives on the order service's log: the envelope's
/// `subject` is its stream, and the relay's `sequence` and `position`
/// extensions its place in the stream and in the store.
extension ReceivedEvent {
    var recorded: RecordedEvent {
        get throws {
            guard let subject = envelope.subject, let sequence = envelope.extensions["sequence"]?.intValue,
                  let position = envelope.extensions["position"]?.intValue else {
                throw MessageFailure.poison("event \(id) on the order store's log lacks its subject, sequence or position")
            }
            return RecordedEvent(
                position: Int64(position), stream: subject, version: sequence, type: name, schemaVersion: version,
                data: Data(data.encoded()), metadata: EventMetadata(correlationId: correlationId, causationId: envelope.causationid),
                time: time)
        }
    }
}

/// Every order as the write side's fold makes it, one row each, with the
/// columns a list needs to be sorted and filtered.
enum OrderViews {
    static let name = "order-views"
    static let tables: [(name: String, orderBy: String)] = [("order_views", "orderId"), ("view_positions", "generation")]

    static let migrations = [
        Migration("order views v1", sql: """
            -- version: how many of the order's events are folded into state.
            CREATE TABLE order_views (
                generation INTEGER NOT NULL,
                orderId TEXT NOT NULL,
                userId TEXT NOT NULL,
                createdAt INTEGER NOT NULL,
                version INTEGER NOT NULL,
                status TEXT NOT NULL,
                state TEXT NOT NULL,
                PRIMARY KEY (generation, orderId)
            ) WITHOUT ROWID;
            CREATE INDEX order_views_by_user ON order_views(generation, userId, createdAt);
            CREATE INDEX order_views_by_time ON order_views(generation, createdAt);
            -- The store position each generation has applied.
            CREATE TABLE view_positions (
                generation INTEGER PRIMARY KEY,
                position INTEGER NOT NULL
            );
            """),
    ]

    @Sendable static func positions(_ db: Database, generation: Int) throws -> Int64 {
        try Int64.fetchOne(db, cached: "SELECT position FROM view_positions WHERE generation = ?", [generation]) ?? 0
    }

    @Sendable static func apply(_ event: ReceivedEvent, generation: Int, db: Database) throws {
        let stored = try event.recorded
        try db.run(cached: """
            INSERT INTO view_positions (generation, position) VALUES (?, ?)
            ON CONFLICT (generation) DO UPDATE SET position = max(position, excluded.position)
            """, [generation, stored.position])
        let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT version, state FROM order_views WHERE generation = ? AND orderId = ?"),
                                   arguments: [generation, stored.stream])
        let version: Int = row?["version"] ?? 0
        // Already folded in (the relay sent it twice under another offset).
        guard stored.version > version else { return }
        guard stored.version == version + 1 else {
            throw MessageFailure.poison("order \(stored.stream): event #\(stored.version) arrived after #\(version); the log lost one")
        }
        let before: OrderState? = try row.map { try JSON.decoder().decode(OrderState.self, from: Data(($0["state"] as String).utf8)) }
        guard let after = Order.evolve(before, try Order.decode(stored)) else {
            throw MessageFailure.poison("order \(stored.stream): \(stored.type) before the order was created")
        }
        try db.run(cached: """
            INSERT INTO order_views (generation, orderId, userId, createdAt, version, status, state) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (generation, orderId) DO UPDATE SET version = excluded.version, status = excluded.status, state = excluded.state
            """, [generation, after.id, after.userId, after.createdAt.databaseMilliseconds, stored.version, after.status.rawValue,
                  String(decoding: try JSON.encoder().encode(after), as: UTF8.self)])
    }

    static func order(_ db: Database, id: String) throws -> OrderState? {
        let generation = try ReadModel.liveGeneration(db)
        return try String.fetchOne(db, cached: "SELECT state FROM order_views WHERE generation = ? AND orderId = ?", [generation, id])
            .map { try JSON.decoder().decode(OrderState.self, from: Data($0.utf8)) }
    }

    /// Newest first, a page at a time (`startingAfter` is the last id seen).
    static func list(_ db: Database, userId: String?, limit: Int, startingAfter: String?) throws -> API.OrderList {
        let generation = try ReadModel.liveGeneration(db)
        var sql = "SELECT state FROM order_views WHERE generation = ?"
        var arguments: StatementArguments = [generation]
        if let userId {
            sql += " AND userId = ?"
            arguments += [userId]
        }
        if let cursorId = startingAfter {
            guard let createdAt = try Int64.fetchOne(db, sql: "SELECT createdAt FROM order_views WHERE generation = ? AND orderId = ?", arguments: [generation, cursorId]) else {
                throw ShopError.invalid("startingAfter", "is not an order id from a previous page")
            }
            sql += " AND (createdAt, orderId) < (?, ?)"
            arguments += [createdAt, cursorId]
        }
        sql += " ORDER BY createdAt DESC, orderId DESC LIMIT ?"
        arguments += [limit + 1]
        let page = try String.fetchAll(db, sql: sql, arguments: arguments).map { try JSON.decoder().decode(OrderState.self, from: Data($0.utf8)) }
        return API.OrderList(items: page.prefix(limit).map(\.api), hasMore: page.count > limit)
    }
}

/// The sales report's figures, kept as the events come: an order counts
/// from its confirmation until it is cancelled (refunded); its lines then
/// add to, or come off, its products' totals.
enum SalesView {
    static let name = "sales"
    static let tables: [(name: String, orderBy: String)] = [
        ("sales_orders", "orderId"), ("sales_lines", "orderId, line"), ("sales_products", "productId"), ("sales_positions", "generation"),
    ]

    static let migrations = [
        Migration("sales v1 (from the order store)", sql: """
            CREATE TABLE sales_orders (
                generation INTEGER NOT NULL,
                orderId TEXT NOT NULL,
                status TEXT NOT NULL,
                totalCents INTEGER NOT NULL,
                PRIMARY KEY (generation, orderId)
            ) WITHOUT ROWID;
            CREATE TABLE sales_lines (
                generation INTEGER NOT NULL,
                orderId TEXT NOT NULL,
                line INTEGER NOT NULL,
                productId TEXT NOT NULL,
                sku TEXT NOT NULL,
                quantity INTEGER NOT NULL,
                lineTotalCents INTEGER NOT NULL,
                PRIMARY KEY (generation, orderId, line)
            ) WITHOUT ROWID;
            CREATE TABLE sales_products (
                generation INTEGER NOT NULL,
                productId TEXT NOT NULL,
                sku TEXT NOT NULL,
                unitsSold INTEGER NOT NULL,
                revenueCents INTEGER NOT NULL,
                PRIMARY KEY (generation, productId)
            ) WITHOUT ROWID;
            CREATE TABLE sales_positions (
                generation INTEGER PRIMARY KEY,
                position INTEGER NOT NULL
            );
            """),
        // Each order's place in its stream, as the order views keep it: an
        // event the relay sent again, after a later one, is then recognised
        // as already counted instead of moving the order back.
        Migration("sales v2: each order's version", sql: """
            ALTER TABLE sales_orders ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
            """),
    ]

    @Sendable static func positions(_ db: Database, generation: Int) throws -> Int64 {
        try Int64.fetchOne(db, cached: "SELECT position FROM sales_positions WHERE generation = ?", [generation]) ?? 0
    }

    @Sendable static func apply(_ event: ReceivedEvent, generation: Int, db: Database) throws {
        let stored = try event.recorded
        try db.run(cached: """
            INSERT INTO sales_positions (generation, position) VALUES (?, ?)
            ON CONFLICT (generation) DO UPDATE SET position = max(position, excluded.position)
            """, [generation, stored.position])
        let orderId = stored.stream
        // Every event of the order counts for its version, whether it
        // changes a sale or not; one at or below it was counted already.
        let version = try Int.fetchOne(db, cached: "SELECT version FROM sales_orders WHERE generation = ? AND orderId = ?", [generation, orderId]) ?? 0
        guard stored.version > version else { return }
        guard stored.version == version + 1 else {
            throw MessageFailure.poison("order \(orderId): event #\(stored.version) arrived after #\(version); the log lost one")
        }
        defer { _ = try? db.run(cached: "UPDATE sales_orders SET version = ? WHERE generation = ? AND orderId = ?", [stored.version, generation, orderId]) }
        switch try Order.decode(stored).fact {
        case .created(let created):
            try db.run(cached: "INSERT OR IGNORE INTO sales_orders (generation, orderId, status, totalCents) VALUES (?, ?, 'pending', ?)",
                       [generation, orderId, created.total.amountCents])
            for (index, line) in created.items.enumerated() {
                try db.run(cached: """
                    INSERT OR IGNORE INTO sales_lines (generation, orderId, line, productId, sku, quantity, lineTotalCents) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, [generation, orderId, index + 1, line.productId, line.sku ?? "", line.quantity, (line.unitPriceCents ?? 0) * line.quantity])
            }
        case .confirmed: try move(orderId, to: .confirmed, generation: generation, db)
        case .shipped: try move(orderId, to: .shipped, generation: generation, db)
        case .cancelled: try move(orderId, to: .cancelled, generation: generation, db)
        default: break  // what the order heard changes no sale
        }
    }

    /// A status change; when it starts or ends the sale, the order's lines
    /// go onto, or come off, their products.
    private static func move(_ orderId: String, to status: OrderStatus, generation: Int, _ db: Database) throws {
        guard let raw = try String.fetchOne(db, cached: "SELECT status FROM sales_orders WHERE generation = ? AND orderId = ?", [generation, orderId]),
              let before = OrderStatus(rawValue: raw) else { return }
        let sold: Set<OrderStatus> = [.confirmed, .shipped]
        try db.run(cached: "UPDATE sales_orders SET status = ? WHERE generation = ? AND orderId = ?", [status.rawValue, generation, orderId])
        let sign = sold.contains(status) == sold.contains(before) ? 0 : (sold.contains(status) ? 1 : -1)
        guard sign != 0 else { return }
        try db.run(cached: """
            INSERT INTO sales_products (generation, productId, sku, unitsSold, revenueCents)
            SELECT generation, productId, sku, ? * quantity, ? * lineTotalCents FROM sales_lines WHERE generation = ? AND orderId = ? AND true
            ON CONFLICT (generation, productId) DO UPDATE SET unitsSold = unitsSold + excluded.unitsSold,
                revenueCents = revenueCents + excluded.revenueCents, sku = max(sku, excluded.sku)
            """, [sign, sign, generation, orderId])
    }

    /// The contract's report, from the live generation.
    static func report(_ db: Database) throws -> API.SalesReport {
        let generation = try ReadModel.liveGeneration(db)
        let totals = try Row.fetchOne(db, sql: """
            SELECT count(*) FILTER (WHERE status IN ('confirmed', 'shipped')) AS confirmed,
                   count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
                   coalesce(sum(totalCents) FILTER (WHERE status IN ('confirmed', 'shipped')), 0) AS revenue
            FROM sales_orders WHERE generation = ?
            """, arguments: [generation])
        let products = try Row.fetchAll(db, sql: """
            SELECT productId, sku, unitsSold, revenueCents FROM sales_products
            WHERE generation = ? AND unitsSold > 0 ORDER BY revenueCents DESC, sku
            """, arguments: [generation])
        return API.SalesReport(
            ordersConfirmed: totals?["confirmed"] ?? 0, ordersCancelled: totals?["cancelled"] ?? 0, revenueCents: totals?["revenue"] ?? 0,
            byProduct: products.map { API.ProductSales(productId: $0["productId"], sku: $0["sku"], unitsSold: $0["unitsSold"], revenueCents: $0["revenueCents"]) })
    }
}
