import AsyncStageSupport
import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// Stage 6 against a real RabbitMQ and real processes: every event on the
/// wire checked against its schema by python's jsonschema, the causal
/// chain of each order, the cancel that races the choreography, duplicates,
/// a v1 event, and each service killed under traffic.
@Suite("Stage 6: choreography", .serialized)
struct ChoreographyTests {
    static let producers = ["user", "order", "inventory", "payment"]

    /// A queue of the test's own bound to every producer's exchange: adding
    /// a consumer changes no producer.
    static let tap = """
        import json, sys, pika
        url, exchange, queue = sys.argv[1:4]
        ns = exchange[:-len(".shop")]
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(queue, durable=False, auto_delete=False)
        for producer in ["user", "order", "inventory", "payment"]:
            ch.exchange_declare(ns + ".events." + producer, exchange_type="topic", durable=True)
            ch.queue_bind(queue, ns + ".events." + producer, routing_key="#")
        conn.close()
        print(json.dumps({"ok": True}))
        """

    /// Drains the tap and checks every event with python's jsonschema
    /// against the schema its `dataschema` names (docs/events), and the
    /// AMQP properties against the envelope.
    static let drainAndValidate = """
        import json, os, sys, time, pika, jsonschema
        url, exchange, queue, schemas, expected = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        events, problems = [], []
        deadline = time.time() + 30
        idle_since = time.time()
        while time.time() < deadline:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if not method:
                if len(events) >= expected and time.time() - idle_since > 2: break
                time.sleep(0.05); continue
            idle_since = time.time()
            try:
                event = json.loads(body)
            except Exception as e:
                problems.append("not JSON: %s" % e); continue
            events.append({"event": event, "exchange": method.exchange, "routingKey": method.routing_key,
                           "contentType": props.content_type, "messageId": props.message_id, "type": props.type,
                           "correlationId": props.correlation_id})
            base = "https://shop.local/schemas/events/"
            ds = event.get("dataschema", "")
            if not ds.startswith(base):
                problems.append("%s: dataschema %s" % (event.get("id"), ds)); continue
            path = os.path.join(schemas, ds[len(base):])
            try:
                schema = json.load(open(path))
                jsonschema.Draft202012Validator(schema).validate(event["data"])
            except Exception as e:
                problems.append("%s %s: %s" % (event.get("type"), event.get("id"), str(e).splitlines()[0]))
        ch.queue_delete(queue)
        conn.close()
        print(json.dumps({"events": events, "problems": problems}))
        """

    @Test("every event of orders of every kind fits its schema (python jsonschema); ids unique; one correlation id per order; every cause seen before; the flow view shows the chain")
    func eventsOnTheWire() async throws {
        let deployment = try await Deployment.start(stage: 6)
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let queue = "tap-\(ID.make("t").dropFirst(2))"
        _ = try await deployment.pika(Self.tap, [queue])

        let customer = try await api.newCustomer("tap")
        let product = try await api.createProduct(.init(sku: "EV-\(ID.make("x").dropFirst(2))", name: "Evented", priceCents: 1_000, initialStock: 3), adminToken: deployment.admin.token)
        var orders: [String] = []
        for card in [SimulatedCardProcessor.approvedCard, SimulatedCardProcessor.declinedCard, SimulatedCardProcessor.flakyCard] {
            let order: API.Order = try await api.placeOrder([(product.id, 1)], card: card, token: customer.token).expect(201)
            orders.append(try await api.decidedOrder(order.id, token: customer.token).id)
        }
        // Out of stock (1 left), a customer's cancellation of a confirmed order, and a shipment.
        let tooMany: API.Order = try await api.placeOrder([(product.id, 5)], token: customer.token).expect(201)
        #expect(try await api.decidedOrder(tooMany.id, token: customer.token).cancelReason == .outOfStock)
        orders.append(tooMany.id)
        let _: API.Order = try await api.call("POST", "/orders/\(orders[0])/cancel", token: customer.token).expect(202)
        let last: API.Order = try await api.placeOrder([(product.id, 1)], token: customer.token).expect(201)
        #expect(try await api.decidedOrder(last.id, token: customer.token).status == .confirmed)
        let _: API.Order = try await api.call("POST", "/orders/\(last.id)/ship", token: deployment.admin.token).expect(202)
        orders.append(last.id)

        let schemas = Repository.find("docs/events") ?? "docs/events"
        let drained = try await deployment.pika(Self.drainAndValidate, [queue, schemas, "20"])
        let problems = drained["problems"] as? [String] ?? ["no answer"]
        #expect(problems.isEmpty, "\(problems)")
        let events = (drained["events"] as? [[String: Any]] ?? [])
        let envelopes = events.compactMap { $0["event"] as? [String: Any] }
        #expect(envelopes.count >= 20, "\(envelopes.count) events")
        let ids = envelopes.compactMap { $0["id"] as? String }
        #expect(Set(ids).count == ids.count, "event ids are unique")

        let known: Set<String> = ["shop.UserRegistered", "shop.OrderCreated", "shop.OrderConfirmed", "shop.OrderCancelled", "shop.OrderShipped",
                                  "shop.InventoryReserved", "shop.InventoryRejected", "shop.InventoryReleased",
                                  "shop.PaymentCompleted", "shop.PaymentFailed", "shop.PaymentRefunded"]
        var seen = Set<String>()
        for record in events {
            let envelope = record["event"] as! [String: Any]
            let type = envelope["type"] as? String ?? ""
            #expect(known.contains(type), "\(type) is in the catalogue")
            #expect(envelope["specversion"] as? String == "1.0")
            #expect(record["contentType"] as? String == "application/cloudevents+json")
            #expect(record["messageId"] as? String == envelope["id"] as? String, "message id mirrors the event id")
            #expect(record["type"] as? String == type, "AMQP type mirrors the event type")
            #expect(record["correlationId"] as? String == envelope["correlationid"] as? String, "AMQP correlation id mirrors the extension")
            let producer = (envelope["source"] as? String ?? "").replacingOccurrences(of: "/shop/", with: "")
            #expect((record["exchange"] as? String)?.hasSuffix(".events.\(producer)") == true, "\(type) goes to its producer's own exchange")
            if let cause = envelope["causationid"] as? String {
                #expect(seen.contains(cause), "\(type) \(envelope["id"] ?? "") names a cause seen before it")
            } else {
                #expect(envelope["requestid"] is String, "\(type) without a cause carries the request id")
            }
            seen.insert(envelope["id"] as? String ?? "")
            if let order = envelope["subject"] as? String, orders.contains(order) {
                #expect(envelope["correlationid"] as? String == order, "every event of \(order) carries its correlation id")
            }
        }

        // The flow view: the approved order's chain, oldest first, each cause before its effect.
        struct Flow: Decodable { var items: [Step] }
        struct Step: Decodable { var id: String; var type: String; var source: String; var time: Date; var causationid: String? }
        let flow: Flow = try await Poll.until("the flow log has the cancellation", within: .seconds(10)) {
            let flow: Flow = try await api.call("GET", "/admin/orders/\(orders[0])/flow", token: deployment.admin.token).expect(200)
            return flow.items.contains { $0.type == "PaymentRefunded" } ? flow : nil
        }
        #expect(Array(flow.items.map(\.type).prefix(4)) == ["OrderCreated", "InventoryReserved", "PaymentCompleted", "OrderConfirmed"])
        #expect(Set(flow.items.map(\.type)).isSuperset(of: ["OrderCancelled", "PaymentRefunded", "InventoryReleased"]))
        var earlier = Set<String>()
        for step in flow.items {
            if let cause = step.causationid { #expect(earlier.contains(cause), "\(step.type)'s cause comes before it") }
            earlier.insert(step.id)
        }
        #expect(try await api.call("GET", "/admin/orders/ord_doesnotexist000000000/flow", token: deployment.admin.token).status == 404)
        #expect(try await api.call("GET", "/admin/orders/\(orders[0])/flow", token: customer.token).status == 403)
        // Each stage serves its own event catalogue: stage 6's has the producers' exchanges.
        let catalogue = try await api.call("GET", "/asyncapi.yaml")
        #expect(catalogue.status == 200 && catalogue.text.contains("asyncapi: 3.0.0") && catalogue.text.contains("address: '{namespace}.events.order'"))
        try await deployment.finish()
    }

    @Test("a customer's cancel racing the choreography, sent at many points of the flow: nothing charged, nothing held")
    func cancelRace() async throws {
        let deployment = try await Deployment.start(stage: 6)
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let customer = try await api.newCustomer("race")
        let initial = 200
        let product = try await api.createProduct(.init(sku: "RC-\(ID.make("x").dropFirst(2))", name: "Raced", priceCents: 300, initialStock: initial), adminToken: deployment.admin.token)
        let delays = [0, 0, 1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200, 400]
        var placed: [String] = []
        for (index, delay) in delays.enumerated() {
            let card = index % 3 == 2 ? SimulatedCardProcessor.flakyCard : SimulatedCardProcessor.approvedCard
            let order: API.Order = try await api.placeOrder([(product.id, 1)], card: card, token: customer.token).expect(201)
            if delay > 0 { try await Task.sleep(for: .milliseconds(delay)) }
            let cancel = try await api.call("POST", "/orders/\(order.id)/cancel", token: customer.token)
            #expect(cancel.status == 202, "cancel after \(delay) ms: \(cancel.status) \(cancel.text)")
            placed.append(order.id)
        }
        // At rest: every order cancelled by the customer, its money back, its unit back.
        for id in placed {
            let order = try await Poll.until("order \(id) is at rest", within: .seconds(20)) { () async throws -> API.Order? in
                let order = try await api.order(id, token: customer.token)
                let settled = order.payment.chargedCents == order.payment.refundedCents
                return order.status == .cancelled && settled ? order : nil
            }
            #expect(order.cancelReason == .customerRequest)
        }
        let stock = try await Poll.until("nothing is held", within: .seconds(20)) {
            let stock = try await api.inventory(product.id)
            return stock.reserved == 0 && stock.available == initial ? stock : nil
        }
        #expect(stock.available == initial)
        let movements = try deployment.moneyMovements().filter { placed.contains($0.orderId) }
        for id in placed {
            let mine = movements.filter { $0.orderId == id }
            let charged = mine.filter { $0.kind == "charge" && $0.outcome == "captured" }.reduce(0) { $0 + $1.amountCents }
            let refunded = mine.filter { $0.kind == "refund" }.reduce(0) { $0 + $1.amountCents }
            #expect(charged == refunded, "\(id): charged \(charged), refunded \(refunded) in the payment service's own rows")
        }
        try await deployment.finish()
    }

    @Test("a real OrderCreated published again with pika, as it was and under a new id, changes nothing")
    func duplicates() async throws {
        let deployment = try await Deployment.start(stage: 6)
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let queue = "dup-\(ID.make("t").dropFirst(2))"
        _ = try await deployment.pika(Self.tapOrderCreated, [queue])
        let customer = try await api.newCustomer("dup")
        let product = try await api.createProduct(.init(sku: "DU-\(ID.make("x").dropFirst(2))", name: "Twice", priceCents: 800, initialStock: 5), adminToken: deployment.admin.token)
        let placed: API.Order = try await api.placeOrder([(product.id, 2)], token: customer.token).expect(201)
        #expect(try await api.decidedOrder(placed.id, token: customer.token).status == .confirmed)
        _ = try await deployment.pika(Self.republish, [queue])
        // Give the copies a chance to be processed: the flow log records both
        // (it keeps everything it is sent); nothing else may move.
        _ = try await Poll.until("the copy reached the flow log", within: .seconds(10)) { () async throws -> Bool? in
            struct Flow: Decodable { var items: [Step] }
            struct Step: Decodable { var id: String; var type: String }
            let flow: Flow = try await api.call("GET", "/admin/orders/\(placed.id)/flow", token: deployment.admin.token).expect(200)
            return flow.items.filter { $0.type == "OrderCreated" }.count >= 2 ? true : nil
        }
        let stock = try await api.inventory(product.id)
        #expect(stock.available == 3 && stock.reserved == 0, "\(stock)")
        let charges = try deployment.moneyMovements().filter { $0.orderId == placed.id }
        #expect(charges.count == 1 && charges[0].kind == "charge")
        #expect(try await deployment.deadLetters().isEmpty)
        try await deployment.finish()
    }

    @Test("an OrderCreated v1 published with pika is read as v2 (upcast): reserved, charged its total in dollars")
    func version1IsUpcast() async throws {
        let deployment = try await Deployment.start(stage: 6)
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let product = try await api.createProduct(.init(sku: "V1-\(ID.make("x").dropFirst(2))", name: "Old", priceCents: 1_500, initialStock: 5), adminToken: deployment.admin.token)
        // An order the order service never placed: an older producer's event.
        let orderId = "ord_v1\(ID.make("x").dropFirst(2).prefix(18))"
        _ = try await deployment.pika(Self.publishV1, [orderId, product.id])
        let stock = try await Poll.until("inventory reserved the v1 order's units", within: .seconds(10)) {
            let stock = try await api.inventory(product.id)
            return stock.reserved == 2 ? stock : nil
        }
        #expect(stock.available == 3)
        let charge = try await Poll.until("payment charged the v1 order", within: .seconds(10)) {
            try deployment.moneyMovements().first { $0.orderId == orderId && $0.kind == "charge" }
        }
        #expect(charge.outcome == "captured" && charge.amountCents == 3_000, "the v1 totalCents became v2's total.amountCents")
        // The order service has never heard of the order: it sets the
        // payment's answer aside, with a reason a person can act on.
        let letter = try await Poll.until("the order service set the unknown order aside", within: .seconds(15)) {
            try await deployment.deadLetters().first { $0.payload.orderId == orderId }
        }
        #expect(letter.queue == "order" && letter.reason.contains("does not exist"), "\(letter.reason)")
        try await deployment.finish()
    }

    @Test("kill -9 each service in turn under traffic: every order decided; stock, charges and emails apply once")
    func killEachService() async throws {
        let deployment = try await Deployment.start(stage: 6, ["JOB_LOCK_MS": "2000"])
        defer { deployment.stage.requestStop() }
        let traffic = try await Traffic.prepare(deployment, scarceStock: 6, label: "chor")
        let running = traffic.run()
        let restarted = try await traffic.killInTurn(["payment", "inventory", "notification", "order"], before: 10, after: 6)
        defer { for process in restarted { process.requestStop() } }
        try await traffic.waitFor(10)
        running.cancel()
        await running.value
        let orders = await traffic.ledger.orders
        #expect(orders.count >= 50)
        try await verifyEverythingAppliedOnce(
            deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 6)],
            customers: traffic.customers, within: .seconds(90))
        #expect(try await deployment.deadLetters().isEmpty, "a crash is not a reason to dead-letter anything")
        for process in restarted { await process.stop() }
        try await deployment.finish()
    }

    static let tapOrderCreated = """
        import json, sys, pika
        url, exchange, queue = sys.argv[1:4]
        ns = exchange[:-len(".shop")]
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.queue_declare(queue, durable=False, auto_delete=False)
        ch.exchange_declare(ns + ".events.order", exchange_type="topic", durable=True)
        ch.queue_bind(queue, ns + ".events.order", routing_key="shop.OrderCreated")
        conn.close()
        print(json.dumps({"ok": True}))
        """

    /// The tapped OrderCreated, published again to the order exchange: as
    /// it was (a redelivery), and under a new message and event id (a
    /// producer that sent it twice).
    static let republish = """
        import json, sys, time, pika
        url, exchange, queue = sys.argv[1:4]
        ns = exchange[:-len(".shop")]
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        deadline = time.time() + 10
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method or time.time() > deadline: break
            time.sleep(0.05)
        if not method:
            print(json.dumps({"error": "no OrderCreated on the tap"})); sys.exit(1)
        ch.confirm_delivery()
        ch.basic_publish(ns + ".events.order", method.routing_key, body, props, mandatory=True)
        event = json.loads(body)
        event["id"] = "dup-" + event["id"]
        copy = pika.BasicProperties(content_type=props.content_type, delivery_mode=2, type=props.type,
                                    message_id=event["id"], correlation_id=props.correlation_id)
        ch.basic_publish(ns + ".events.order", method.routing_key, json.dumps(event).encode(), copy, mandatory=True)
        ch.queue_delete(queue)
        conn.close()
        print(json.dumps({"ok": True}))
        """

    /// A version 1 OrderCreated, as an older order service wrote it
    /// (`totalCents` where v2 has `total`).
    static let publishV1 = """
        import json, sys, uuid, datetime, pika
        url, exchange, order_id, product_id = sys.argv[1:5]
        ns = exchange[:-len(".shop")]
        event_id = "evt_v1" + uuid.uuid4().hex[:18]
        event = {
            "specversion": "1.0", "id": event_id, "source": "/shop/order", "type": "shop.OrderCreated",
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
            "subject": order_id, "datacontenttype": "application/json",
            "dataschema": "https://shop.local/schemas/events/OrderCreated/v1.json",
            "correlationid": order_id, "requestid": "req_pika",
            "data": {"orderId": order_id, "customer": {"userId": "usr_pika", "email": "pika@example.com", "name": "Pika"},
                     "items": [{"productId": product_id, "quantity": 2}], "totalCents": 3000, "card": "4242424242424242"},
        }
        conn = pika.BlockingConnection(pika.URLParameters(url))
        ch = conn.channel()
        ch.confirm_delivery()
        props = pika.BasicProperties(content_type="application/cloudevents+json", delivery_mode=2, type="shop.OrderCreated",
                                     message_id=event_id, correlation_id=order_id)
        ch.basic_publish(ns + ".events.order", "shop.OrderCreated", json.dumps(event).encode(), props, mandatory=True)
        conn.close()
        print(json.dumps({"id": event_id}))
        """
}
