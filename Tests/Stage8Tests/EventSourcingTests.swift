import AsyncStageSupport
import Common
import Events
import Foundation
import GRDB
import ShopClient
import TestSupport
import Testing

/// Stage 8 against the real durable Kafka broker and real processes: time
/// travel through the API, concurrent commands on one order, rebuilds (one
/// that matches, one that refuses a difference, one cut by kill -9), the
/// order service killed under traffic, an old event upcast from the store,
/// and confluent-kafka reading the order store's log.
@Suite("Stage 8: events as the truth", .serialized)
struct EventSourcingTests {
    struct EventItem: Codable, Sendable, Equatable {
        var sequence: Int
        var type: String
        var occurredAt: Date
    }

    struct ProjectionItem: Codable, Sendable {
        var name: String
        var position: Int
        var lag: Int?
        var status: String
        var rebuiltAt: Date?
        var lastRebuild: LastRebuild?
        struct LastRebuild: Codable, Sendable { var generation: Int; var outcome: String?; var detail: String? }
    }

    static func events(_ d: Deployment, _ orderId: String, token: String) async throws -> [EventItem] {
        try await d.api.call("GET", "/orders/\(orderId)/events", token: token).expect(200, as: API.ItemList<EventItem>.self).items
    }

    static func projections(_ d: Deployment, _ path: String = "/admin/projections", method: String = "GET") async throws -> [ProjectionItem] {
        try await d.api.call(method, path, token: d.admin.token).expect(200, as: API.ItemList<ProjectionItem>.self).items
    }

    /// Every order, as the query side lists it.
    static func allOrders(_ d: Deployment) async throws -> [API.Order] { try await d.allOrders() }

    /// The query side has applied everything the store holds.
    static func atRest(_ d: Deployment, within deadline: Duration = .seconds(30)) async throws {
        _ = try await Poll.until("every projection has caught up with the store", within: deadline) {
            let items = try await projections(d)
            return items.allSatisfy { $0.lag == 0 && $0.status == "live" } ? items : nil
        }
    }

    /// The order service's store, beside the running service. (Not opened
    /// read-only: such a connection cannot use the WAL's index, and then
    /// misses what is not yet copied into the database file.)
    static func store(_ d: Deployment) throws -> DatabaseQueue {
        try DatabaseQueue(path: d.stage.dataDir.appendingPathComponent("order/orders.sqlite").path)
    }

    /// Everything that follows a decision has happened: every order is
    /// decided, every cancelled one whose payment was captured shows its
    /// refund, every consumer group has read everything (the order hears
    /// InventoryReserved at its own pace, sometimes after its decision),
    /// and the projections have applied the whole store.
    static func settled(_ d: Deployment) async throws {
        struct Stream: Decodable { var groups: [Group]; struct Group: Decodable { var group: String; var lag: Int } }
        _ = try await Poll.until("every order is decided, and every captured payment of a cancelled order refunded", within: .seconds(30)) { () async throws -> Bool? in
            let all = try await allOrders(d)
            return all.allSatisfy { $0.status.isDecided && ($0.status != .cancelled || $0.payment.status != .captured) } ? true : nil
        }
        _ = try await Poll.until("every consumer group has read everything", within: .seconds(30)) { () async throws -> Bool? in
            let stream = try await d.api.call("GET", "/reports/stream", token: d.admin.token).expect(200, as: Stream.self)
            return stream.groups.allSatisfy { $0.lag == 0 } ? true : nil
        }
        try await atRest(d)
    }

    /// What the query side answers, compared with what the store folds
    /// now, order by order; and the live sales report with the one folded
    /// from the log up to now.
    static func expectViewsMatchTheStore(_ d: Deployment) async throws {
        try await settled(d)
        let views = try await allOrders(d)
        #expect(!views.isEmpty)
        var differ: [String] = []
        for view in views {
            let folded: API.Order = try await d.api.call("GET", "/orders/\(view.id)?asOf=1000000", token: d.admin.token).expect(200)
            if folded != view { differ.append(view.id) }
        }
        #expect(differ == [], "the views and the store's fold differ")
        let live: API.SalesReport = try await d.api.call("GET", "/reports/sales", token: d.admin.token).expect(200)
        let now = Timestamp.format(Date().addingTimeInterval(1))
        let folded: API.SalesReport = try await d.api.call("GET", "/reports/sales?asOf=\(now)", token: d.admin.token).expect(200)
        #expect(live == folded)
    }

    @Test("time travel: an order's events, and the order as of each sequence and each time; before it existed 404; nonsense 400")
    func timeTravel() async throws {
        let d = try await Deployment.start(stage: 8)
        defer { Task { try? await d.finish() } }
        let customer = try await d.api.newCustomer("traveller")
        let stranger = try await d.api.newCustomer("stranger")
        let product = try await d.api.createProduct(API.CreateProductRequest(sku: "TT-\(ID.make("t").dropFirst(2))", name: "Hourglass", priceCents: 700, initialStock: 5), adminToken: d.admin.token)
        let beforeAnything = Timestamp.format(Date().addingTimeInterval(-1))
        let placed: API.Order = try await d.api.placeOrder([(product.id, 2)], card: SimulatedCardProcessor.approvedCard, token: customer.token).expect(201)
        #expect(try await d.api.decidedOrder(placed.id, token: customer.token).status == .confirmed)
        let _: API.Order = try await d.api.call("POST", "/orders/\(placed.id)/ship", token: d.admin.token).expect(202)

        // The order also hears InventoryReserved, on its own topic's pace.
        let events = try await Poll.until("the order's five events are stored", within: .seconds(10)) {
            let items = try await Self.events(d, placed.id, token: customer.token)
            return items.count == 5 ? items : nil
        }
        #expect(events.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(events.first?.type == "OrderCreated" && events.last?.type == "OrderShipped")
        #expect(Set(events.map(\.type)) == ["OrderCreated", "InventoryReserved", "PaymentCompleted", "OrderConfirmed", "OrderShipped"])
        let confirmedAt = try #require(events.firstIndex { $0.type == "OrderConfirmed" })
        #expect(events[confirmedAt - 1].type == "PaymentCompleted" || events[confirmedAt - 1].type == "InventoryReserved")

        // As of each sequence: the status of that moment.
        for event in events {
            let then: API.Order = try await d.api.call("GET", "/orders/\(placed.id)?asOf=\(event.sequence)", token: customer.token).expect(200)
            let expected: OrderStatus = event.sequence >= 5 ? .shipped : event.sequence > confirmedAt ? .confirmed : .pending
            #expect(then.status == expected, "as of #\(event.sequence) (\(event.type))")
            // As of its time: the same, or later events of the same moment.
            let byTime: API.Order = try await d.api.call("GET", "/orders/\(placed.id)?asOf=\(Timestamp.format(event.occurredAt))", token: customer.token).expect(200)
            #expect(byTime.updatedAt <= event.occurredAt)
            #expect(byTime.status == expected || events.contains { $0.occurredAt == event.occurredAt && $0.sequence > event.sequence })
        }
        let current: API.Order = try await d.api.call("GET", "/orders/\(placed.id)?asOf=99", token: customer.token).expect(200)
        #expect(current.status == .shipped)
        try await d.api.call("GET", "/orders/\(placed.id)?asOf=\(beforeAnything)", token: customer.token).expectError(404, .notFound)
        for nonsense in ["0", "-3", "yesterday", "2026-02-30T00:00:00Z", "2026-11-30"] {
            let error = try await d.api.call("GET", "/orders/\(placed.id)?asOf=\(nonsense)", token: customer.token).expectError(400, .invalidRequest)
            #expect(error.message.contains("asOf"))
        }
        // Someone else's order does not exist, now or then.
        try await d.api.call("GET", "/orders/\(placed.id)/events", token: stranger.token).expectError(404, .notFound)
        try await d.api.call("GET", "/orders/\(placed.id)?asOf=1", token: stranger.token).expectError(404, .notFound)

        // The sales report as it stood: empty before the order, the live one now.
        let empty: API.SalesReport = try await d.api.call("GET", "/reports/sales?asOf=\(beforeAnything)", token: d.admin.token).expect(200)
        #expect(empty == API.SalesReport(ordersConfirmed: 0, ordersCancelled: 0, revenueCents: 0, byProduct: []))
        try await d.api.call("GET", "/reports/sales?asOf=3", token: d.admin.token).expectError(400, .invalidRequest)
        try await Self.expectViewsMatchTheStore(d)
    }

    @Test("concurrent commands on one order: one cancel or one ship wins, the stream stays gapless, nothing is refunded twice")
    func concurrentCommands() async throws {
        let d = try await Deployment.start(stage: 8)
        defer { Task { try? await d.finish() } }
        let customer = try await d.api.newCustomer("racer")
        let product = try await d.api.createProduct(API.CreateProductRequest(sku: "RACE-\(ID.make("t").dropFirst(2))", name: "Baton", priceCents: 500, initialStock: 100), adminToken: d.admin.token)
        var ids: [String] = []
        for _ in 0..<8 {
            let placed: API.Order = try await d.api.placeOrder([(product.id, 1)], card: SimulatedCardProcessor.approvedCard, token: customer.token).expect(201)
            ids.append(placed.id)
        }
        for id in ids { #expect(try await d.api.decidedOrder(id, token: customer.token).status == .confirmed) }

        // Per order, three cancels and three ships at once.
        let statuses = await withTaskGroup(of: (String, Int).self) { group in
            for id in ids {
                for i in 0..<6 {
                    group.addTask {
                        let (path, token) = i % 2 == 0 ? ("/orders/\(id)/cancel", customer.token) : ("/orders/\(id)/ship", d.admin.token)
                        return (id, (try? await d.api.call("POST", path, token: token).status) ?? 0)
                    }
                }
            }
            return await group.reduce(into: [(String, Int)]()) { $0.append($1) }
        }
        for id in ids {
            let answers = statuses.filter { $0.0 == id }.map(\.1)
            #expect(answers.filter { $0 == 202 }.count == 1, "order \(id): \(answers.sorted())")
            #expect(answers.filter { $0 == 409 }.count == 5, "order \(id): \(answers.sorted())")
        }
        let store = try Self.store(d)
        _ = try await Poll.until("every cancelled order's refund is recorded", within: .seconds(20)) { () async throws -> Bool? in
            let orders = try await ids.asyncMap { id -> API.Order in try await d.api.call("GET", "/orders/\(id)?asOf=1000", token: d.admin.token).expect(200) }
            return orders.allSatisfy { $0.status != .cancelled || $0.payment.status == .refunded } ? true : nil
        }
        for id in ids {
            let types = try await store.read { db in try String.fetchAll(db, sql: "SELECT type FROM events WHERE stream = ? ORDER BY version", arguments: [id]) }
            let versions = try await store.read { db in try Int.fetchAll(db, sql: "SELECT version FROM events WHERE stream = ? ORDER BY version", arguments: [id]) }
            #expect(versions == Array(1...versions.count), "order \(id) has a gapless stream")
            #expect(types.filter { $0 == "OrderShipped" }.count + types.filter { $0 == "OrderCancelled" }.count == 1, "order \(id): \(types)")
            #expect(types.filter { $0 == "PaymentRefunded" }.count == types.filter { $0 == "OrderCancelled" }.count, "order \(id): \(types)")
        }
        let refunds = try d.moneyMovements().filter { $0.kind == "refund" }
        #expect(Set(refunds.map(\.orderId)).count == refunds.count, "no order refunded twice")

        // Cancels against the saga's own answers: placed and cancelled at once.
        var racing: [String] = []
        for _ in 0..<6 {
            let placed: API.Order = try await d.api.placeOrder([(product.id, 1)], card: SimulatedCardProcessor.approvedCard, token: customer.token).expect(201)
            racing.append(placed.id)
            _ = try await d.api.call("POST", "/orders/\(placed.id)/cancel", token: customer.token)
        }
        try await Self.settled(d)
        let final = try await Self.allOrders(d)
        #expect(Set(final.map(\.id)) == Set(ids + racing))
        let movements = try d.moneyMovements()
        for order in final {
            let charges = movements.filter { $0.orderId == order.id && $0.kind == "charge" }
            let refunds = movements.filter { $0.orderId == order.id && $0.kind == "refund" }
            #expect(charges.count <= 1 && refunds.count <= 1, "order \(order.id): \(charges.count) charges, \(refunds.count) refunds")
            #expect(order.payment.chargedCents - order.payment.refundedCents == (order.status.countsAsSale ? order.totalCents : 0), "net charge of \(order.id)")
        }
        let stock = try await Poll.until("the stock is at rest", within: .seconds(20)) {
            let stock = try await d.api.inventory(product.id)
            return stock.reserved == 0 ? stock : nil
        }
        #expect(stock.available == 100 - final.filter(\.status.countsAsSale).count)
        try await Self.expectViewsMatchTheStore(d)
    }

    @Test("rebuild: identical views after it, reads answer during it, a difference is refused unless forced, and kill -9 in the middle ends the same")
    func rebuild() async throws {
        let d = try await Deployment.start(stage: 8)
        defer { Task { try? await d.finish() } }
        let traffic = try await Traffic.prepare(d, scarceStock: 30, label: "rebuild")
        let run = traffic.run()
        try await traffic.waitFor(200)  // a few hundred orders, of every kind the traffic makes
        run.cancel()
        await run.value
        // A few shipped and a few cancelled after confirmation, for every kind of order.
        let confirmed = try await Poll.until("the traffic's orders are decided", within: .seconds(60)) { () async throws -> [API.Order]? in
            let all = try await Self.allOrders(d)
            return all.allSatisfy(\.status.isDecided) ? all.filter { $0.status == .confirmed } : nil
        }
        for (index, order) in confirmed.prefix(6).enumerated() {
            let path = index % 2 == 0 ? "/orders/\(order.id)/ship" : "/orders/\(order.id)/cancel"
            let _: API.Order = try await d.api.call("POST", path, token: d.admin.token).expect(202)
        }
        try await Self.settled(d)
        let before = try await Self.allOrders(d)
        let salesBefore: API.SalesReport = try await d.api.call("GET", "/reports/sales", token: d.admin.token).expect(200)

        // Reads keep answering while every projection is rebuilt.
        let reader = Task { () -> [Int] in
            var failures: [Int] = []
            while !Task.isCancelled {
                let status = (try? await d.api.call("GET", "/orders/\(before[0].id)", token: d.admin.token).status) ?? 0
                if status != 200 { failures.append(status) }
                try? await Task.sleep(for: .milliseconds(20))
            }
            return failures
        }
        let rebuilt = try await Self.projections(d, "/admin/projections/rebuild", method: "POST")
        reader.cancel()
        #expect(await reader.value == [])
        #expect(rebuilt.map(\.name).sorted() == ["order-views", "sales"])
        for item in rebuilt {
            #expect(item.status == "live" && item.lastRebuild?.outcome == "switched" && item.lastRebuild?.generation == 2 && item.rebuiltAt != nil, "\(item.name)")
        }
        #expect(try await Self.allOrders(d) == before)
        #expect(try await d.api.call("GET", "/reports/sales", token: d.admin.token).expect(200, as: API.SalesReport.self) == salesBefore)

        // A live view that is wrong: the rebuild differs from it and is not switched to...
        let victim = before[0]
        try await Self.corrupt(d, orderId: victim.id)
        let corrupted: API.Order = try await d.api.call("GET", "/orders/\(victim.id)", token: d.admin.token).expect(200)
        #expect(corrupted.payment.chargedCents == 1)
        let refused = try await Self.projections(d, "/admin/projections/rebuild?projection=order-views", method: "POST")
        #expect(refused.count == 1 && refused[0].lastRebuild?.outcome == "mismatch" && refused[0].lastRebuild?.detail?.contains("order_views") == true)
        #expect(try await d.api.call("GET", "/orders/\(victim.id)", token: d.admin.token).expect(200, as: API.Order.self) == corrupted)
        // ...unless the operator says it is the live one that is wrong.
        let forced = try await Self.projections(d, "/admin/projections/rebuild?projection=order-views&force=true", method: "POST")
        #expect(forced[0].lastRebuild?.outcome == "switched" && forced[0].lastRebuild?.detail?.contains("order_views") == true)
        #expect(try await d.api.call("GET", "/orders/\(victim.id)", token: d.admin.token).expect(200, as: API.Order.self) == victim)
        try await d.api.call("POST", "/admin/projections/rebuild?projection=nothing", token: d.admin.token).expectError(404, .notFound)

        // kill -9 of the query service in the middle of a rebuild.
        let started = Task { try? await d.api.call("POST", "/admin/projections/rebuild", token: d.admin.token) }
        _ = try await Poll.until("a rebuild is under way", within: .seconds(10)) {
            try await Self.projections(d).contains { $0.status == "rebuilding" } ? true : nil
        }
        let pid = try #require(d.stage.child(serving: "query"))
        kill(pid, SIGKILL)
        _ = await started.value
        let query = try await d.restart("query")
        defer { Task { await query.stop() } }
        try await Self.atRest(d, within: .seconds(60))
        #expect(try await Self.allOrders(d) == before)
        #expect(try await d.api.call("GET", "/reports/sales", token: d.admin.token).expect(200, as: API.SalesReport.self) == salesBefore)
        try await Self.expectViewsMatchTheStore(d)
    }

    /// Changes one order's live view behind the service's back.
    static func corrupt(_ d: Deployment, orderId: String) async throws {
        let db = try DatabaseQueue(path: d.stage.dataDir.appendingPathComponent("query/order-views.sqlite").path)
        try await db.write { db in
            try db.execute(sql: """
                UPDATE order_views SET state = json_set(state, '$.chargedCents', 1)
                WHERE orderId = ? AND generation = (SELECT live FROM read_model_generations)
                """, arguments: [orderId])
        }
    }

    @Test("kill -9 of the order service under traffic: every acknowledged order's events are there, and no event is counted twice")
    func killTheWriteSide() async throws {
        let d = try await Deployment.start(stage: 8)
        defer { Task { try? await d.finish() } }
        let traffic = try await Traffic.prepare(d, scarceStock: 20, label: "write-side")
        let run = traffic.run()
        let restarted = try await traffic.killInTurn(["order", "order"], before: 15, after: 15)
        defer { for process in restarted { Task { await process.stop() } } }
        try await traffic.waitFor(15)
        run.cancel()
        await run.value
        try await verifyEverythingAppliedOnce(
            d, orders: await traffic.ledger.orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 20)], customers: traffic.customers)
        let store = try Self.store(d)
        for (id, _) in await traffic.ledger.orders {
            let first = try await store.read { db in try String.fetchOne(db, sql: "SELECT type FROM events WHERE stream = ? AND version = 1", arguments: [id]) }
            #expect(first == "OrderCreated", "the acknowledged order \(id) is in the store")
        }
        try await Self.expectViewsMatchTheStore(d)
    }

    @Test("an OrderCreated v3 written straight into the store is read as v4 (names null), folded, published and projected")
    func upcastFromTheStore() async throws {
        let d = try await Deployment.start(stage: 8)
        defer { Task { try? await d.finish() } }
        let customer = try await d.api.newCustomer("historian")
        let product = try await d.api.createProduct(API.CreateProductRequest(sku: "OLD-\(ID.make("t").dropFirst(2))", name: "Relic", priceCents: 900, initialStock: 5), adminToken: d.admin.token)
        let orderId = ID.make(ID.order)
        let v3 = """
            {"orderId":"\(orderId)","customer":{"userId":"\(customer.user.id)","email":"\(customer.user.email)","name":"historian"},\
            "items":[{"productId":"\(product.id)","sku":"\(product.sku)","quantity":1,"unitPriceCents":900}],\
            "total":{"amountCents":900,"currency":"USD"},"card":"4242424242424242"}
            """
        let db = try DatabaseQueue(path: d.stage.dataDir.appendingPathComponent("order/orders.sqlite").path)
        try await db.write { db in
            try db.execute(sql: """
                INSERT INTO events (stream, version, type, schemaVersion, data, correlationId, time) VALUES (?, 1, 'OrderCreated', 3, ?, ?, ?)
                """, arguments: [orderId, v3, orderId, Int64(Date().timeIntervalSince1970 * 1000)])
        }
        let then: API.Order = try await d.api.call("GET", "/orders/\(orderId)?asOf=1", token: customer.token).expect(200)
        #expect(then.items == [API.OrderItem(productId: product.id, sku: product.sku, name: "", quantity: 1, unitPriceCents: 900)])
        #expect(then.status == .pending && then.totalCents == 900)
        // The relay finds it at the next poll, and the saga decides it like any other.
        let decided = try await d.api.decidedOrder(orderId, token: customer.token, within: .seconds(20))
        #expect(decided.status == .confirmed && decided.items.first?.name == "")
        let stored = try await db.read { db in try Int.fetchOne(db, sql: "SELECT schemaVersion FROM events WHERE stream = ? AND version = 1", arguments: [orderId]) }
        #expect(stored == 3, "the stored row keeps the version it was written at")
    }

    @Test("confluent-kafka reads the order store's log: one record per stored event, each order's in sequence, in the store's order")
    func theStoreOnKafka() async throws {
        let d = try await Deployment.start(stage: 8)
        defer { Task { try? await d.finish() } }
        let traffic = try await Traffic.prepare(d, scarceStock: 5, label: "log")
        let run = traffic.run()
        try await traffic.waitFor(25)
        run.cancel()
        await run.value
        try await Self.settled(d)
        let store = try Self.store(d)
        let stored = try await store.read { db in
            try Row.fetchAll(db, sql: "SELECT position, stream, version FROM events ORDER BY position").map { ($0["position"] as Int, $0["stream"] as String, $0["version"] as Int) }
        }
        let answer = try await PythonPeer.runJSON("""
            import json, sys, time
            from confluent_kafka import Consumer, TopicPartition
            bootstrap, topic = sys.argv[1:3]
            c = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-store-reader", "enable.auto.commit": False, "fetch.wait.max.ms": 50})
            c.assign([TopicPartition(topic, 0, 0)])
            records, idle = [], time.time()
            while time.time() - idle < 2:
                for m in c.consume(500, 0.2):
                    if m.error(): continue
                    idle = time.time()
                    e = json.loads(m.value())
                    records.append({"key": m.key().decode(), "id": e["id"], "subject": e["subject"], "sequence": e["sequence"], "position": e["position"]})
            c.close()
            print(json.dumps({"records": records, "partitions": len(Consumer({"bootstrap.servers": bootstrap, "group.id": "x"}).list_topics(topic, timeout=10).topics[topic].partitions)}))
            """, arguments: [d.kafkaBootstrap, "\(d.namespace).order-store"])
        #expect(answer["partitions"] as? Int == 1)
        let records = try #require(answer["records"] as? [[String: Any]])
        #expect(records.count == stored.count, "one record per stored event")
        #expect(records.compactMap { $0["position"] as? Int } == stored.map(\.0), "in the store's order")
        #expect(records.map { "\($0["key"] ?? "")" } == stored.map(\.1), "keyed by the order's id")
        #expect(records.map { "\($0["id"] ?? "")" } == stored.map { "\($0.1).\($0.2)" })
        var last: [String: Int] = [:]
        for record in records {
            let key = "\(record["key"] ?? "")", sequence = record["sequence"] as? Int ?? -1
            #expect(sequence == (last[key] ?? 0) + 1, "\(key) in sequence")
            last[key] = sequence
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}

extension HTTPResponse {
    /// Checks an error answer: its status and the contract's code.
    @discardableResult
    func expectError(_ status: Int, _ code: ErrorCode) throws -> ErrorBody.Detail {
        guard self.status == status, let detail = error, detail.code == code.rawValue else {
            throw WrongAnswer(description: "expected HTTP \(status) \(code.rawValue), got \(self.status): \(text.prefix(300))")
        }
        return detail
    }
}

struct WrongAnswer: Error, CustomStringConvertible { var description: String }
