import AsyncStageSupport
import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// Stage 4 against a real RabbitMQ and real processes: crashes, duplicates,
/// poison, dead letters and their replay. Each test runs a deployment of its
/// own (own queues, own etcd namespace); the suite runs one test at a time,
/// as they are heavy on a two-core machine.
@Suite("Stage 4: messaging", .serialized)
struct MessagingTests {
    @Test("kill -9 each consumer service in turn under traffic: every order is decided; stock, charges and emails apply once")
    func killEachConsumer() async throws {
        let deployment = try await Deployment.start(stage: 4)
        defer { deployment.stage.requestStop() }
        let traffic = try await Traffic.prepare(deployment, scarceStock: 6, label: "crash")
        let running = traffic.run()

        let restarted = try await traffic.killInTurn(["payment", "inventory", "notification", "order"], before: 12, after: 8)
        defer { for process in restarted { process.requestStop() } }
        try await traffic.waitFor(10)
        running.cancel()
        await running.value

        let orders = await traffic.ledger.orders
        #expect(orders.count >= 70)
        try await verifyEverythingAppliedOnce(deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 6)], customers: traffic.customers)
        #expect(try await deployment.deadLetters().isEmpty, "a crash is not a reason to dead-letter anything")
        for process in restarted { await process.stop() }
        try await deployment.finish()
    }

    /// Binds a queue of the test's own to the stage's exchange, so that pika
    /// sees real `order.created` messages as the services do.
    static let tap = """
        import json, sys, pika
        url, exchange, queue = sys.argv[1:4]
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(queue, durable=False, auto_delete=False)
        ch.queue_bind(queue, exchange, routing_key="order.created")
        conn.close()
        print(json.dumps({"ok": True}))
        """

    /// Takes the tapped message and publishes it to the stage's exchange
    /// again, twice: exactly as it was (a redelivery), and under a new
    /// message id (a producer that sent it twice).
    static let republish = """
        import json, sys, time, pika
        url, exchange, queue = sys.argv[1:4]
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        deadline = time.time() + 10
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method or time.time() > deadline: break
            time.sleep(0.05)
        if not method:
            print(json.dumps({"error": "no order.created on the tap"})); sys.exit(1)
        ch.confirm_delivery()
        ch.basic_publish(exchange, "order.created", body, props, mandatory=True)
        copy = pika.BasicProperties(content_type=props.content_type, delivery_mode=2, type=props.type,
                                    message_id="dup-" + props.message_id, headers=props.headers)
        ch.basic_publish(exchange, "order.created", body, copy, mandatory=True)
        ch.queue_delete(queue)
        conn.close()
        print(json.dumps({"messageId": props.message_id, "type": props.type, "body": json.loads(body)}))
        """

    @Test("a duplicate of a real order.created, published with pika, changes nothing")
    func duplicateChangesNothing() async throws {
        let deployment = try await Deployment.start(stage: 4)
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let product = try await api.createProduct(.init(sku: "D-\(ID.make("x").dropFirst(2))", name: "Once", priceCents: 1_500, initialStock: 5), adminToken: deployment.admin.token)
        let customer = try await api.newCustomer("dup")
        let tap = "\(deployment.namespace).test-tap"
        _ = try await deployment.pika(Self.tap, [tap])

        let placed: API.Order = try await api.placeOrder([(product.id, 2)], token: customer.token).expect(201)
        let order = try await api.decidedOrder(placed.id, token: customer.token)
        #expect(order.status == .confirmed)
        let stock = try await Poll.until("the reservation is sold", within: .seconds(5)) {
            let stock = try await api.inventory(product.id)
            return stock.reserved == 0 ? stock : nil
        }
        #expect(stock.available == 3)

        let copied = try await deployment.pika(Self.republish, [tap])
        #expect(copied["type"] as? String == "order.created")
        #expect((copied["body"] as? [String: Any])?["orderId"] as? String == order.id)

        // A later order goes through the same queues behind the copies: once
        // it is decided, the copies have been handled.
        let marker = try await api.decidedOrder(try await api.placeOrder([(product.id, 1)], token: customer.token).expect(201, as: API.Order.self).id, token: customer.token)
        #expect(marker.status == .confirmed)

        let after = try await api.order(order.id, token: customer.token)
        #expect(after.status == .confirmed && after.payment == order.payment && after.updatedAt == order.updatedAt)
        #expect(try await api.inventory(product.id) == API.Inventory(productId: product.id, available: 2, reserved: 0), "2 + 1 sold, no more")
        let charges = try deployment.moneyMovements().filter { $0.orderId == order.id }
        #expect(charges.count == 1 && charges[0].kind == "charge" && charges[0].amountCents == 3_000)
        let notifications = try await api.call("GET", "/notifications", token: customer.token).expect(200, as: API.ItemList<API.Notification>.self).items
        #expect(notifications.filter { $0.orderId == order.id }.map(\.kind) == [.orderConfirmed])
        #expect(try await deployment.deadLetters().isEmpty)
        try await deployment.finish()
    }

    /// Poison of four kinds, straight onto the exchange as `order.created`:
    /// not JSON; JSON without the fields; a type nobody handles; no message id.
    static let poison = """
        import json, sys, pika
        url, exchange = sys.argv[1:3]
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.confirm_delivery()
        def send(body, message_id, type_):
            ch.basic_publish(exchange, "order.created", body,
                             pika.BasicProperties(delivery_mode=2, message_id=message_id, type=type_), mandatory=True)
        send(b"{not json", "poison-unparseable", "order.created")
        send(json.dumps({"orderId": "ord_x", "items": []}).encode(), "poison-invalid", "order.created")
        send(json.dumps({"orderId": "ord_y"}).encode(), "poison-unknown-type", "order.exploded")
        send(b"{}", None, "order.created")
        conn.close()
        print(json.dumps({"ok": True}))
        """

    @Test("poison published with pika lands among the dead letters with its reason, while orders keep flowing")
    func poisonIsDeadLettered() async throws {
        let deployment = try await Deployment.start(stage: 4)
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let customer = try await api.newCustomer("poison")
        _ = try await deployment.pika(Self.poison)

        let product = try await api.createProduct(.init(sku: "P-\(ID.make("x").dropFirst(2))", name: "Fine", priceCents: 200, initialStock: 5), adminToken: deployment.admin.token)
        let order = try await api.decidedOrder(try await api.placeOrder([(product.id, 1)], token: customer.token).expect(201, as: API.Order.self).id, token: customer.token)
        #expect(order.status == .confirmed, "the poison did not stop the queues")

        // Each poison message reached the three queues bound to order.created.
        let letters = try await Poll.until("12 dead letters are listed", within: .seconds(10)) {
            let letters = try await deployment.deadLetters()
            return letters.count >= 12 ? letters : nil
        }
        #expect(letters.count == 12)
        #expect(Set(letters.map(\.queue)) == ["payment", "inventory", "notification"])
        #expect(letters.allSatisfy { $0.attempts == 1 && $0.reason.hasPrefix("poison:") })
        let reasons = Dictionary(grouping: letters, by: { $0.messageId ?? "none" }).mapValues { $0.map(\.reason) }
        #expect(reasons["poison-unparseable"]?.allSatisfy { $0.contains("not valid JSON") } == true, "\(reasons)")
        #expect(reasons["poison-invalid"]?.allSatisfy { $0.contains("customer") || $0.contains("items") } == true, "\(reasons)")
        #expect(reasons["poison-unknown-type"]?.allSatisfy { $0.contains("order.exploded") } == true, "\(reasons)")
        #expect(reasons["none"]?.allSatisfy { $0.contains("message-id") } == true, "\(reasons)")

        let customerView = try await api.call("GET", "/admin/dead-letters", token: customer.token)
        #expect(customerView.status == 403)
        // Replaying poison sends it back, and it comes straight back.
        let unparseable = try #require(letters.first { $0.messageId == "poison-unparseable" && $0.queue == "payment" })
        _ = try await api.call("POST", "/admin/dead-letters/\(unparseable.id)/replay", token: deployment.admin.token).expect(202, as: ReplayAnswer.self)
        let again = try await Poll.until("the replayed poison is back", within: .seconds(10)) { () async throws -> DeadLetter? in
            try await deployment.deadLetters().first { $0.messageId == "poison-unparseable" && $0.queue == "payment" && $0.id != unparseable.id }
        }
        #expect(again.attempts == 2)
        try await deployment.finish()
    }

    struct ReplayAnswer: Codable { var id: String; var queue: String; var replayedAt: Date }

    @Test("a payment that exhausts its retries is dead-lettered, the order waits, and a replay finishes it")
    func exhaustedThenReplayed() async throws {
        // Two attempts in all (one retry step of 100 ms): the card that fails
        // twice cannot get through on its own.
        let deployment = try await Deployment.start(stage: 4, ["RETRY_DELAYS_MS": "100"])
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let customer = try await api.newCustomer("replay")
        let product = try await api.createProduct(.init(sku: "R-\(ID.make("x").dropFirst(2))", name: "Patient", priceCents: 4_200, initialStock: 3), adminToken: deployment.admin.token)
        let placed: API.Order = try await api.placeOrder([(product.id, 1)], card: SimulatedCardProcessor.flakyCard, token: customer.token).expect(201)

        let letter = try await Poll.until("the payment is dead-lettered", within: .seconds(10)) {
            try await deployment.deadLetters().first { $0.payload.orderId == placed.id }
        }
        #expect(letter.queue == "payment" && letter.messageType == "order.created" && letter.attempts == 2)
        #expect(letter.reason.contains("gave up after 2 attempts") && letter.reason.contains("transient"), "\(letter.reason)")
        #expect(try await api.order(placed.id, token: customer.token).status == .pending, "the order waits for its payment")
        #expect(try await api.inventory(product.id).reserved == 1, "its unit stays reserved meanwhile")

        let replay: ReplayAnswer = try await api.call("POST", "/admin/dead-letters/\(letter.id)/replay", token: deployment.admin.token).expect(202)
        #expect(replay.id == letter.id && replay.queue == "payment")
        let order = try await api.decidedOrder(placed.id, token: customer.token)
        #expect(order.status == .confirmed && order.payment == API.Payment(status: .captured, chargedCents: 4_200, refundedCents: 0))
        #expect(try await deployment.deadLetters().allSatisfy { $0.id != letter.id }, "a replayed letter leaves the list")
        let twice = try await api.call("POST", "/admin/dead-letters/\(letter.id)/replay", token: deployment.admin.token)
        #expect(twice.status == 404)
        #expect(try await api.call("POST", "/admin/dead-letters/dlq_doesnotexist0000000/replay", token: deployment.admin.token).status == 404)
        try await deployment.finish()
    }
}
