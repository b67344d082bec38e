import AsyncStageSupport
import Common
import Events
import Foundation
import ShopClient
import TestSupport
import Testing

/// Stage 7 against the real durable Kafka broker and real processes:
/// confluent-kafka reads every topic and checks keys, order and envelopes;
/// confluent-kafka publishes a valid event, a duplicate and poison; the
/// reports are checked against the orders and replayed; lag is checked
/// while a group is stopped; each consumer is killed under traffic.
@Suite("Stage 7: the log", .serialized)
struct StreamTests {
    static let topics = ["users", "orders", "inventory", "payments"]
    static let producerOf: [String: String] = [
        "UserRegistered": "users", "OrderCreated": "orders", "OrderConfirmed": "orders", "OrderCancelled": "orders", "OrderShipped": "orders",
        "InventoryReserved": "inventory", "InventoryRejected": "inventory", "InventoryReleased": "inventory",
        "PaymentCompleted": "payments", "PaymentFailed": "payments", "PaymentRefunded": "payments",
    ]

    /// Reads every record of the deployment's topics from offset 0 (by
    /// assignment, no group) until nothing new came for two seconds, and
    /// checks each against the schema its `dataschema` names.
    static let readAll = """
        import json, os, sys, time, jsonschema
        from confluent_kafka import Consumer, TopicPartition
        bootstrap, ns, schemas = sys.argv[1:4]
        topics = sys.argv[4].split(",")
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-reader", "enable.auto.commit": False, "fetch.wait.max.ms": 50})
        md = c.list_topics(timeout=10)
        parts = [TopicPartition(ns + "." + t, p, 0) for t in topics for p in md.topics[ns + "." + t].partitions]
        c.assign(parts)
        records, problems = [], []
        idle = time.time()
        while time.time() - idle < 2:
            for m in c.consume(500, 0.2):
                if m.error(): problems.append(str(m.error())); continue
                idle = time.time()
                headers = dict((k, v.decode()) for k, v in (m.headers() or []))
                try:
                    event = json.loads(m.value())
                except Exception as e:
                    problems.append("%s[%d]@%d not JSON" % (m.topic(), m.partition(), m.offset())); continue
                base = "https://shop.local/schemas/events/"
                ds = event.get("dataschema", "")
                try:
                    schema = json.load(open(os.path.join(schemas, ds[len(base):])))
                    jsonschema.Draft202012Validator(schema).validate(event["data"])
                except Exception as e:
                    problems.append("%s %s: %s" % (event.get("type"), event.get("id"), str(e).splitlines()[0]))
                records.append({"topic": m.topic()[len(ns) + 1:], "partition": m.partition(), "offset": m.offset(),
                                "key": m.key().decode() if m.key() else None, "contentType": headers.get("content-type"),
                                "type": event.get("type"), "id": event.get("id"), "subject": event.get("subject"),
                                "source": event.get("source"), "time": event.get("time"), "specversion": event.get("specversion"),
                                "correlationid": event.get("correlationid"), "dataschema": ds})
        c.close()
        print(json.dumps({"records": records, "problems": problems}))
        """

    struct Record: Decodable {
        var topic: String
        var partition: Int
        var offset: Int
        var key: String?
        var contentType: String?
        var type: String
        var id: String
        var subject: String?
        var source: String?
        var specversion: String?
        var correlationid: String?
        var name: String { String(type.split(separator: ".").last ?? "") }
    }

    static func records(_ deployment: Deployment, topics: [String] = topics) async throws -> [Record] {
        let answer = try await PythonPeer.runJSON(readAll, arguments: [deployment.kafkaBootstrap, deployment.namespace, EventCatalog.bundledSchemas.path, topics.joined(separator: ",")])
        let problems = answer["problems"] as? [String] ?? ["no answer"]
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        let data = try JSONSerialization.data(withJSONObject: answer["records"] ?? [])
        return try JSONDecoder().decode([Record].self, from: data)
    }

    struct StreamGroup: Decodable {
        var group: String
        var replayable: Bool
        var lag: Int
        var lagSeconds: Double
        var partitions: [Partition]
        struct Partition: Decodable { var topic: String; var partition: Int; var committedOffset: Int; var endOffset: Int; var lag: Int }
    }

    static func stream(_ deployment: Deployment) async throws -> [StreamGroup] {
        struct Report: Decodable { var groups: [StreamGroup] }
        return try await deployment.api.call("GET", "/reports/stream", token: deployment.admin.token).expect(200, as: Report.self).groups
    }

    /// Every group has processed everything (lag 0 everywhere).
    static func caughtUp(_ deployment: Deployment, within deadline: Duration = .seconds(30)) async throws -> [StreamGroup] {
        try await Poll.until("every consumer group has caught up", within: deadline) {
            let groups = try await stream(deployment)
            return groups.allSatisfy { $0.lag == 0 && $0.lagSeconds == 0 } ? groups : nil
        }
    }

    /// The sales report as the contract defines it, from the orders the API lists.
    static func expectedSales(_ deployment: Deployment) async throws -> API.SalesReport {
        var all: [API.Order] = []
        var after: String?
        repeat {
            let page: API.OrderList = try await deployment.api.call(
                "GET", "/orders?all=true&limit=1000" + (after.map { "&startingAfter=\($0)" } ?? ""), token: deployment.admin.token).expect(200)
            all += page.items
            after = page.hasMore ? page.items.last?.id : nil
        } while after != nil
        let sold = all.filter { $0.status.countsAsSale }
        var byProduct: [String: API.ProductSales] = [:]
        for item in sold.flatMap(\.items) {
            var entry = byProduct[item.productId] ?? API.ProductSales(productId: item.productId, sku: item.sku, unitsSold: 0, revenueCents: 0)
            entry.unitsSold += item.quantity
            entry.revenueCents += item.lineTotalCents
            byProduct[item.productId] = entry
        }
        return API.SalesReport(
            ordersConfirmed: sold.count, ordersCancelled: all.filter { $0.status == .cancelled }.count,
            revenueCents: sold.reduce(0) { $0 + $1.totalCents },
            byProduct: byProduct.values.sorted { ($0.revenueCents, $1.sku) > ($1.revenueCents, $0.sku) })
    }

    /// The report built from the stream reaches what the orders say (the
    /// contract allows it 5 s at rest; the test gives it 15).
    static func expectSalesMatchOrders(_ deployment: Deployment) async throws {
        let expected = try await expectedSales(deployment)
        var last = try await sales(deployment)
        let deadline = ContinuousClock.now + .seconds(15)
        while last != expected && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            last = try await sales(deployment)
        }
        #expect(last == expected, "the sales report from the stream against the orders")
    }

    static func sales(_ deployment: Deployment) async throws -> API.SalesReport {
        try await deployment.api.call("GET", "/reports/sales", token: deployment.admin.token).expect(200)
    }

    static func analytics(_ deployment: Deployment) async throws -> [String: Any] {
        let response = try await deployment.api.call("GET", "/reports/analytics", token: deployment.admin.token)
        #expect(response.status == 200)
        return try JSONSerialization.jsonObject(with: Data(response.text.utf8)) as? [String: Any] ?? [:]
    }

    /// The read model's generation, from its own database (what a replay changes).
    static func generation(_ deployment: Deployment, _ model: String) throws -> (live: Int, building: Int?) {
        let path = deployment.stage.dataDir.appendingPathComponent("\(model)/\(model).sqlite").path
        let result = try runSQLite(path, "SELECT live || ',' || ifnull(building, '') FROM read_model_generations")
        let parts = result.split(separator: ",", omittingEmptySubsequences: false)
        return (Int(parts[0]) ?? 0, parts.count > 1 ? Int(parts[1]) : nil)
    }

    static func runSQLite(_ path: String, _ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); print(c.execute(sys.argv[2]).fetchone()[0])", path, sql]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("confluent-kafka reads every event: keyed by its aggregate, on its producer's topic, in order per order, valid against its schema; the reports match the orders; a replay rebuilds them identically")
    func eventsOnTheLog() async throws {
        let deployment = try await Deployment.start(stage: 7)
        defer { deployment.stage.requestStop() }
        let traffic = try await Traffic.prepare(deployment, scarceStock: 4, label: "log")
        let running = traffic.run()
        try await traffic.waitFor(30)
        running.cancel()
        await running.value
        // A confirmed order cancelled (refunded) and one shipped: every kind of story.
        let orders = await traffic.ledger.orders
        try await verifyEverythingAppliedOnce(
            deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 4)], customers: traffic.customers)
        let all: API.OrderList = try await deployment.api.call("GET", "/orders?all=true&limit=1000", token: deployment.admin.token).expect(200)
        let confirmed = all.items.filter { $0.status == .confirmed }
        #expect(confirmed.count >= 2)
        _ = try await deployment.api.call("POST", "/orders/\(confirmed[0].id)/cancel", token: deployment.admin.token).expect(202, as: API.Order.self)
        _ = try await deployment.api.call("POST", "/orders/\(confirmed[1].id)/ship", token: deployment.admin.token)
        _ = try await Self.caughtUp(deployment)

        let records = try await Self.records(deployment)
        #expect(records.count >= orders.count * 4)
        for record in records {
            #expect(record.contentType == "application/cloudevents+json", "\(record.id)")
            #expect(record.key != nil && record.key == record.subject, "key of \(record.id) is its subject")
            #expect(record.specversion == "1.0")
            #expect(Self.producerOf[record.name] == record.topic, "\(record.name) on \(record.topic)")
            #expect(record.source == "/shop/" + ["users": "user", "orders": "order", "inventory": "inventory", "payments": "payment"][record.topic]!)
        }
        // The producer is not idempotent (Stages/stage-7/Wiring.swift says
        // why): a batch sent again may put an event on the log twice, but
        // only as the same record, in the same place.
        for (id, copies) in Dictionary(grouping: records, by: \.id) where copies.count > 1 {
            #expect(Set(copies.map { "\($0.topic) \($0.partition) \($0.key ?? "")" }).count == 1, "the copies of \(id) are the same record")
        }
        // One order's events: one partition per topic, and on the orders
        // topic OrderCreated first.
        let byOrder = Dictionary(grouping: records.filter { $0.topic != "users" }, by: { $0.subject ?? "" })
        for (orderId, events) in byOrder {
            for (topic, inTopic) in Dictionary(grouping: events, by: \.topic) {
                #expect(Set(inTopic.map(\.partition)).count == 1, "\(orderId)'s events on \(topic) share a partition")
            }
            let onOrders = events.filter { $0.topic == "orders" }.sorted { $0.offset < $1.offset }
            #expect(onOrders.first?.name == "OrderCreated", "\(orderId): \(onOrders.map(\.name))")
            #expect(events.allSatisfy { $0.correlationid == orderId })
        }

        // The reports, built from the stream only, agree with the orders.
        let expected = try await Self.expectedSales(deployment)
        let sales = try await Poll.until("the sales report matches the orders", within: .seconds(10)) {
            let sales = try await Self.sales(deployment)
            return sales == expected ? sales : nil
        }
        let created = records.filter { $0.name == "OrderCreated" }.count
        let analytics = try await Self.analytics(deployment)
        #expect(analytics["ordersPlaced"] as? Int == created)
        #expect(analytics["ordersConfirmed"] as? Int == records.filter { $0.name == "OrderConfirmed" }.count)
        #expect(analytics["ordersCancelled"] as? Int == records.filter { $0.name == "OrderCancelled" }.count)

        // Replays: the two read models rebuild beside the live state and
        // switch; the figures are the same. Other groups cannot be replayed.
        for group in ["inventory", "payment", "order", "notification", "flow"] {
            let refused = try await deployment.api.call("POST", "/reports/stream/\(group)/replay", token: deployment.admin.token)
            #expect(refused.status == 409 && refused.text.contains("group_not_replayable"), "\(group): \(refused.status)")
        }
        #expect(try await deployment.api.call("POST", "/reports/stream/nobody/replay", token: deployment.admin.token).status == 404)
        let customer = traffic.customers[0]
        #expect(try await deployment.api.call("POST", "/reports/stream/reporting/replay", token: customer.token).status == 403)
        for model in ["reporting", "analytics"] {
            #expect(try Self.generation(deployment, model).live == 1)
            let accepted = try await deployment.api.call("POST", "/reports/stream/\(model)/replay", token: deployment.admin.token)
            #expect(accepted.status == 202 && accepted.text.contains("\"\(model)\""))
        }
        for model in ["reporting", "analytics"] {
            _ = try await Poll.until("\(model) rebuilt and switched", within: .seconds(60)) {
                let generation = try Self.generation(deployment, model)
                return generation.live == 2 && generation.building == nil ? true : nil
            }
        }
        #expect(try await Self.sales(deployment) == sales, "the sales report after the replay")
        let replayed = try await Self.analytics(deployment)
        #expect(NSDictionary(dictionary: replayed).isEqual(to: analytics), "the analytics report after the replay: \(replayed) against \(analytics)")
        _ = try await Self.caughtUp(deployment)
        try await deployment.finish()
    }

    /// Publishes with confluent-kafka to `<ns>.users`, as the user service would.
    static let publish = """
        import json, sys
        from confluent_kafka import Producer
        bootstrap, topic, key, value = sys.argv[1:5]
        p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        errors = []
        p.produce(topic, key=key.encode(), value=value.encode(), headers=[("content-type", b"application/cloudevents+json")],
                  on_delivery=lambda err, msg: errors.append(str(err)) if err else None)
        p.flush(10)
        print(json.dumps({"errors": errors}))
        """

    func produce(_ deployment: Deployment, topic: String, key: String, value: String) async throws {
        let answer = try await PythonPeer.runJSON(Self.publish, arguments: [deployment.kafkaBootstrap, "\(deployment.namespace).\(topic)", key, value])
        #expect((answer["errors"] as? [String] ?? ["?"]).isEmpty)
    }

    /// How many emails in the notification service's Maildir are addressed to `email`.
    static func emails(_ deployment: Deployment, to email: String) throws -> Int {
        let root = deployment.stage.dataDir.appendingPathComponent("notification/mail")
        var count = 0
        for folder in ["new", "cur"] {
            let dir = root.appendingPathComponent(folder)
            for file in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
                let text = (try? String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)) ?? ""
                if text.contains("To: ") && text.contains(email) { count += 1 }
            }
        }
        return count
    }

    @Test("a confluent-kafka producer's valid event is processed once, its duplicate changes nothing, and poison lands in the dead letters with its reason while orders keep flowing")
    func foreignProducer() async throws {
        let deployment = try await Deployment.start(stage: 7)
        defer { deployment.stage.requestStop() }
        let userId = "usr_" + ID.make("x").dropFirst(2)
        let email = "kafka-\(ID.make("e").dropFirst(2))@example.com"
        let event: [String: Any] = [
            "specversion": "1.0", "id": "evt_ext_" + ID.make("x").dropFirst(2), "source": "/shop/user", "type": "shop.UserRegistered",
            "time": Timestamp.format(Date()), "subject": userId, "datacontenttype": "application/json",
            "dataschema": "https://shop.local/schemas/events/UserRegistered/v1.json", "correlationid": userId,
            "data": ["userId": userId, "email": email, "name": "From Kafka"],
        ]
        let valid = String(decoding: try JSONSerialization.data(withJSONObject: event), as: UTF8.self)
        try await produce(deployment, topic: "users", key: userId, value: valid)
        _ = try await Poll.until("the welcome email of the foreign event is sent", within: .seconds(30)) {
            try Self.emails(deployment, to: email) == 1 ? true : nil
        }
        // The same event again: the inbox knows its id.
        try await produce(deployment, topic: "users", key: userId, value: valid)
        // Poison: data that breaks its schema, and bytes that are no JSON.
        var broken = event
        broken["id"] = "evt_bad_" + ID.make("x").dropFirst(2)
        broken["data"] = ["userId": userId, "name": "No email"]
        let poison = String(decoding: try JSONSerialization.data(withJSONObject: broken), as: UTF8.self)
        try await produce(deployment, topic: "users", key: userId, value: poison)
        try await produce(deployment, topic: "users", key: userId, value: "this is not an event")

        // Orders keep flowing past the poison.
        let customer = try await deployment.api.newCustomer("after-poison")
        let product = try await deployment.api.createProduct(.init(sku: "KP-\(ID.make("x").dropFirst(2))", name: "After", priceCents: 700, initialStock: 5), adminToken: deployment.admin.token)
        let placed = try await deployment.api.placeOrder([(product.id, 1)], card: SimulatedCardProcessor.approvedCard, token: customer.token).decode(API.Order.self)
        _ = try await Poll.until("the order placed after the poison is decided", within: .seconds(20)) {
            let order: API.Order = try await deployment.api.call("GET", "/orders/\(placed.id)", token: customer.token).expect(200)
            return order.status.isDecided ? order : nil
        }
        let letters = try await Poll.until("the poison is among the dead letters", within: .seconds(20)) {
            let letters = try await deployment.deadLetters()
            return letters.filter { $0.queue == "notification" }.count >= 2 ? letters : nil
        }
        let fromNotification = letters.filter { $0.queue == "notification" }
        // Each consumer of the users topic met the poison: notification, and
        // the desk's flow log. Each files it once.
        #expect(fromNotification.count == 2, "\(fromNotification.map(\.reason))")
        #expect(fromNotification.contains { $0.reason.contains("email") }, "the reason names the missing field: \(fromNotification.map(\.reason))")
        #expect(fromNotification.contains { $0.messageId == nil })
        #expect(letters.filter { $0.queue == "flow" }.count == 2)
        _ = try await Self.caughtUp(deployment)
        #expect(try Self.emails(deployment, to: email) == 1, "the duplicate sent no second email")
        try await deployment.finish()
    }

    @Test("a group stopped while orders come: its lag counts exactly the records written meanwhile and its age grows; resumed, it reaches 0")
    func lagOfAStoppedGroup() async throws {
        let deployment = try await Deployment.start(stage: 7)
        defer { deployment.stage.requestStop() }
        let customer = try await deployment.api.newCustomer("lag")
        let product = try await deployment.api.createProduct(.init(sku: "LAG-\(ID.make("x").dropFirst(2))", name: "Lag", priceCents: 300, initialStock: 100), adminToken: deployment.admin.token)
        _ = try await Self.caughtUp(deployment)
        let before = try await Self.records(deployment, topics: ["orders"]).count
        guard let analytics = deployment.stage.child(serving: "analytics") else { throw LaunchError("no analytics process") }
        kill(analytics, SIGSTOP)
        var ids: [String] = []
        for _ in 0..<6 {
            ids.append(try await deployment.api.placeOrder([(product.id, 1)], card: SimulatedCardProcessor.approvedCard, token: customer.token).decode(API.Order.self).id)
        }
        for id in ids {
            _ = try await Poll.until("order \(id) is decided", within: .seconds(20)) {
                let order: API.Order = try await deployment.api.call("GET", "/orders/\(id)", token: customer.token).expect(200)
                return order.status.isDecided ? true : nil
            }
        }
        let written = try await Self.records(deployment, topics: ["orders"]).count - before
        #expect(written == 12, "an OrderCreated and a decision per order")
        let lagging = try await Poll.until("the lag report counts what analytics has not read", within: .seconds(15)) {
            let groups = try await Self.stream(deployment)
            let reporting = groups.first { $0.group == "reporting" }
            return reporting?.lag == 0 ? groups.first { $0.group == "analytics" } : nil
        }
        kill(analytics, SIGCONT)
        #expect(lagging.lag == written)
        #expect(lagging.partitions.reduce(0) { $0 + $1.lag } == written)
        #expect(lagging.lagSeconds > 0)
        #expect(lagging.partitions.allSatisfy { $0.lag == $0.endOffset - $0.committedOffset })
        let groups = try await Self.caughtUp(deployment, within: .seconds(60))
        #expect(groups.map(\.group).sorted() == ["analytics", "deadletter", "flow", "inventory", "notification", "order", "payment", "reporting"])
        #expect(groups.filter(\.replayable).map(\.group).sorted() == ["analytics", "reporting"])
        let report = try await Self.analytics(deployment)
        #expect(report["ordersPlaced"] as? Int == 6)
        try await deployment.finish()
    }

    @Test("kill -9 of each consumer service in turn under traffic, and of one of the two reporting instances: every order decided once, the reports right")
    func killEachConsumer() async throws {
        let deployment = try await Deployment.start(stage: 7, ["JOB_LOCK_MS": "2000"])
        defer { deployment.stage.requestStop() }
        let traffic = try await Traffic.prepare(deployment, scarceStock: 6, label: "k7")
        let running = traffic.run()
        let restarted = try await traffic.killInTurn(["payment", "inventory", "notification", "reporting", "analytics", "order"], before: 8, after: 6)
        defer { for process in restarted { process.requestStop() } }
        try await traffic.waitFor(8)
        running.cancel()
        await running.value
        let orders = await traffic.ledger.orders
        try await verifyEverythingAppliedOnce(
            deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 6)],
            customers: traffic.customers, within: .seconds(120))
        _ = try await Self.caughtUp(deployment, within: .seconds(60))
        try await Self.expectSalesMatchOrders(deployment)
        // By event id: the order service killed between its send and the
        // outbox's delete sends that batch again, so an event may be on the
        // log twice; consumers count it once.
        let created = Set(try await Self.records(deployment, topics: ["orders"]).filter { $0.name == "OrderCreated" }.map(\.id)).count
        let placed = try await Self.analytics(deployment)["ordersPlaced"] as? Int
        #expect(placed == created, "nothing counted twice, nothing missed: \(placed ?? -1) placed, \(created) OrderCreated on the log")
        #expect(try await deployment.deadLetters().isEmpty, "a crash is not a reason to dead-letter anything")
        for process in restarted { await process.stop() }
        try await deployment.finish()
    }
}

/// Restarts the shared Kafka broker (Tansu and its storage), so scripts/test
/// runs it on its own, after everything else (its name starts with
/// `brokerRestart`).
@Suite("Stage 7: Kafka restart", .serialized)
struct KafkaRestartTests {
    @Test("restart the Kafka broker and its storage in the middle of a burst: orders wait in the outboxes, then every one is decided once and the reports are right")
    func brokerRestartKafkaMidBurst() async throws {
        // Orders keep coming while the broker is away (about 20 s with its
        // storage), thousands of them: the emails' rate limit (50/s) would
        // make their notifications the slowest part of the test, and that
        // is not what it is about.
        let deployment = try await Deployment.start(stage: 7, ["EMAIL_RATE_LIMIT": "5000"])
        defer { deployment.stage.requestStop() }
        let traffic = try await Traffic.prepare(deployment, scarceStock: 5, label: "kburst")
        let running = traffic.run()
        try await traffic.waitFor(20)

        let down = try await runProcess(Repository.infraScript, ["down", "kafka", "seaweedfs"], timeout: .seconds(90))
        #expect(down.status == 0, "infra down: \(down.stderr)")
        let stillUp = (try? await runProcess("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/9092"], timeout: .seconds(5)))?.status == 0
        #expect(!stillUp, "the Kafka broker on 9092 was not this checkout's, so it was not restarted")
        // Orders are still taken while the broker is away: their events
        // wait in the order service's outbox.
        try await traffic.waitFor(15)
        let up = try await runProcess(Repository.infraScript, ["up", "kafka"], timeout: .seconds(120))
        #expect(up.status == 0, "infra up: \(up.stderr)")
        try await traffic.waitFor(15)
        running.cancel()
        await running.value

        let orders = await traffic.ledger.orders
        let failures = await traffic.ledger.failures
        #expect(failures.isEmpty, "placing never failed: \(failures)")
        try await verifyEverythingAppliedOnce(
            deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 5)],
            customers: traffic.customers, within: .seconds(120))
        _ = try await StreamTests.caughtUp(deployment, within: .seconds(60))
        try await StreamTests.expectSalesMatchOrders(deployment)
        let created = Set(try await StreamTests.records(deployment, topics: ["orders"]).filter { $0.name == "OrderCreated" }.map(\.id)).count
        #expect(try await StreamTests.analytics(deployment)["ordersPlaced"] as? Int == created)
        #expect(try await deployment.deadLetters().isEmpty)
        try await deployment.finish()
    }
}
