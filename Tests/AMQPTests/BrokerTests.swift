@testable import AMQP
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing

// Everything that needs RabbitMQ lives in this one serialized suite: the
// tests share the broker, and the last one stops and restarts it, so
// nothing may run beside it. Serialized tests run in source order; keep the
// restart test at the bottom of the file.

@Suite("RabbitMQ, against a real broker", .serialized)
struct BrokerTests {
    // MARK: Interoperability with pika

    @Test("Swift publishes with confirms; pika reads properties and headers intact")
    func swiftPublishesPikaConsumes() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let queue = Broker.unique("to-pika")
        try await channel.queueDeclare(queue, durable: true)
        try await channel.confirmSelect()

        let properties = BasicProperties(
            contentType: "application/json",
            headers: ["tenant": "acme", "attempt": 3, "vip": true, "big": .int(5_000_000_000)],
            deliveryMode: .persistent, correlationID: "corr-42", messageID: "msg-1",
            timestamp: Date(timeIntervalSince1970: 1_700_000_000), type: "order.created", appID: "swift-tests")
        try await channel.publish(Array(#"{"order":1}"#.utf8), routingKey: queue, properties: properties)

        let seen = try await Pika.run(Pika.getOne, [queue])
        #expect(seen["found"] as? Bool == true)
        #expect(seen["body"] as? String == #"{"order":1}"#)
        #expect(seen["routing_key"] as? String == queue)
        #expect(seen["content_type"] as? String == "application/json")
        #expect(seen["message_id"] as? String == "msg-1")
        #expect(seen["correlation_id"] as? String == "corr-42")
        #expect(seen["timestamp"] as? Int == 1_700_000_000)
        #expect(seen["type"] as? String == "order.created")
        #expect(seen["app_id"] as? String == "swift-tests")
        #expect(seen["delivery_mode"] as? Int == 2)
        let headers = try #require(seen["headers"] as? [String: Any])
        #expect(headers["tenant"] as? String == "acme")
        #expect(headers["attempt"] as? Int == 3)
        #expect(headers["vip"] as? Bool == true)
        #expect(headers["big"] as? Int == 5_000_000_000)

        try await channel.queueDelete(queue)
        await connection.close()
    }

    @Test("pika publishes; Swift consumes with properties intact and acks")
    func pikaPublishesSwiftConsumes() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let queue = Broker.unique("from-pika")
        try await channel.queueDeclare(queue, durable: true)

        _ = try await Pika.run(
            """
            import json, sys, pika
            conn = pika.BlockingConnection(pika.URLParameters(sys.argv[1]))
            ch = conn.channel()
            ch.confirm_delivery()
            ch.basic_publish("", sys.argv[2], b"hello from pika", pika.BasicProperties(
                content_type="text/plain", message_id="p-1", correlation_id="c-9",
                timestamp=1700000123, type="payment.captured", delivery_mode=2,
                headers={"tenant": "acme", "attempt": 2, "vip": False}))
            conn.close()
            print(json.dumps({"ok": True}))
            """, [queue])

        try await channel.qos(prefetchCount: 10)
        let consumer = try await channel.consume(queue: queue)
        let delivery = try #require(try await next(consumer))
        #expect(delivery.bodyString == "hello from pika")
        #expect(delivery.routingKey == queue)
        #expect(delivery.exchange == "")
        #expect(!delivery.redelivered)
        let p = delivery.properties
        #expect(p.contentType == "text/plain")
        #expect(p.messageID == "p-1")
        #expect(p.correlationID == "c-9")
        #expect(p.timestamp == Date(timeIntervalSince1970: 1_700_000_123))
        #expect(p.type == "payment.captured")
        #expect(p.deliveryMode == .persistent)
        #expect(p.headers == ["tenant": "acme", "attempt": 2, "vip": false])
        try await delivery.ack()
        try await consumer.cancel()

        // Acked means gone: the queue is empty and has no consumer left.
        let info = try await channel.queueDeclarePassive(queue)
        #expect(info.messageCount == 0)
        #expect(info.consumerCount == 0)
        try await channel.queueDelete(queue)
        await connection.close()
    }

    // MARK: Dead-lettering and retries

    @Test("A message rejected without requeue lands in the dead-letter queue, with x-death")
    func rejectedMessageIsDeadLettered() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let work = Broker.unique("work")
        let deadLetters = Broker.unique("dlq")
        let exchange = Broker.unique("dlx")
        try await channel.exchangeDeclare(exchange, type: .direct, durable: true)
        try await channel.queueDeclare(deadLetters, durable: true)
        try await channel.queueBind(queue: deadLetters, exchange: exchange, routingKey: "dead")
        try await channel.queueDeclare(
            work, durable: true,
            arguments: QueueArguments(deadLetterExchange: exchange, deadLetterRoutingKey: "dead"))

        try await channel.confirmSelect()
        try await channel.publish(
            Array("poison".utf8), routingKey: work,
            properties: BasicProperties(headers: ["order-id": 7], deliveryMode: .persistent, messageID: "bad-1"))

        let consumer = try await channel.consume(queue: work)
        let delivery = try #require(try await next(consumer))
        #expect(delivery.xDeath.isEmpty)
        try await delivery.reject(requeue: false)
        try await consumer.cancel()

        let seen = try await Pika.run(Pika.getOne, [deadLetters])
        #expect(seen["found"] as? Bool == true)
        #expect(seen["body"] as? String == "poison")
        #expect(seen["message_id"] as? String == "bad-1")
        let headers = try #require(seen["headers"] as? [String: Any])
        #expect(headers["order-id"] as? Int == 7)
        let deaths = try #require(headers["x-death"] as? [[String: Any]])
        #expect(deaths.count == 1)
        #expect(deaths.first?["queue"] as? String == work)
        #expect(deaths.first?["reason"] as? String == "rejected")
        #expect(deaths.first?["count"] as? Int == 1)
        #expect(deaths.first?["exchange"] as? String == "")
        #expect(headers["x-first-death-reason"] as? String == "rejected")

        try await channel.queueDelete(work)
        try await channel.queueDelete(deadLetters)
        try await channel.exchangeDelete(exchange)
        await connection.close()
    }

    @Test("Retry ladder: rejected into a TTL queue, dead-lettered back to work after the TTL")
    func retryQueueRedeliversAfterTTL() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let work = Broker.unique("work")
        let retry = Broker.unique("retry-300ms")
        // The default exchange ("") routes by queue name, so each queue
        // dead-letters straight into the other: work -> retry on reject,
        // retry -> work when the TTL expires.
        try await channel.queueDeclare(
            work, durable: true, arguments: QueueArguments(deadLetterExchange: "", deadLetterRoutingKey: retry))
        try await channel.queueDeclare(
            retry, durable: true,
            arguments: QueueArguments(deadLetterExchange: "", deadLetterRoutingKey: work, messageTTL: .milliseconds(300)))
        try await channel.confirmSelect()
        try await channel.publish(Array("flaky".utf8), routingKey: work)

        let received = Mutex<[(Delivery, ContinuousClock.Instant)]>([])
        let consumer = try await channel.consume(queue: work)
        let collector = Task {
            for try await delivery in consumer {
                received.withLock { $0.append((delivery, .now)) }
                if received.withLock({ $0.count }) == 1 {
                    try await delivery.reject(requeue: false)  // first attempt fails
                } else {
                    try await delivery.ack()
                }
            }
        }
        try await Poll.until("the message is delivered twice", within: .seconds(10)) { received.withLock { $0.count } >= 2 ? true : nil }
        try await consumer.cancel()
        _ = try? await collector.value

        let deliveries = received.withLock { $0 }
        try #require(deliveries.count == 2)
        let (first, firstAt) = deliveries[0]
        let (second, secondAt) = deliveries[1]
        #expect(first.bodyString == "flaky")
        #expect(second.bodyString == "flaky")
        #expect(secondAt - firstAt >= .milliseconds(250), "came back before the TTL: \(secondAt - firstAt)")
        // Newest death first: expired in the retry queue, rejected in work.
        let deaths = second.xDeath
        #expect(deaths.map(\.queue) == [retry, work])
        #expect(deaths.map(\.reason) == ["expired", "rejected"])
        #expect(deaths.map(\.count) == [1, 1])
        #expect(deaths.first?.routingKeys == [retry])

        try await channel.queueDelete(work)
        try await channel.queueDelete(retry)
        await connection.close()
    }

    // MARK: Flow control and counts

    @Test("Prefetch bounds the unacknowledged deliveries")
    func prefetchLimitsUnackedDeliveries() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let queue = Broker.unique("prefetch")
        try await channel.queueDeclare(queue, durable: false, autoDelete: false)
        try await channel.confirmSelect()
        let messages = (0..<10).map { OutboundMessage(routingKey: queue, body: Array("m\($0)".utf8)) }
        try await channel.publish(contentsOf: messages, window: 10)

        let consumerChannel = try await connection.openChannel()
        try await consumerChannel.qos(prefetchCount: 3)
        let consumer = try await consumerChannel.consume(queue: queue)
        let received = Mutex<[Delivery]>([])
        let collector = Task {
            for try await delivery in consumer { received.withLock { $0.append(delivery) } }
        }
        try await Poll.until("3 deliveries (the prefetch) arrive", within: .seconds(10)) { received.withLock { $0.count } == 3 ? true : nil }
        try await Task.sleep(for: .milliseconds(400))
        #expect(received.withLock { $0.count } == 3, "more than prefetch delivered without acks")
        #expect(try await channel.queueDeclarePassive(queue).messageCount == 7)

        // Each ack makes room for exactly one more.
        try await received.withLock { $0[0] }.ack()
        try await Poll.until("a 4th delivery arrives after one ack", within: .seconds(10)) { received.withLock { $0.count } == 4 ? true : nil }
        try await Task.sleep(for: .milliseconds(300))
        #expect(received.withLock { $0.count } == 4)

        try await consumerChannel.ack(deliveryTag: received.withLock { $0.last!.deliveryTag }, multiple: true)
        try await Poll.until("7 deliveries arrive after the multiple ack", within: .seconds(10)) { received.withLock { $0.count } == 7 ? true : nil }
        try await consumer.cancel()
        _ = try? await collector.value
        try await consumerChannel.close()
        // Closing the channel returned the unacked ones to the queue.
        try await Poll.until("the 6 unacked messages are back in the queue", within: .seconds(10)) {
            try await channel.queueDeclarePassive(queue).messageCount == 6 ? true : nil
        }
        try await channel.queueDelete(queue)
        await connection.close()
    }

    @Test("Windowed publish confirms everything; passive declare, purge and delete report counts")
    func windowedPublishAndCounts() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let queue = Broker.unique("window")
        try await channel.queueDeclare(queue, durable: true, arguments: QueueArguments(maxLength: 10_000))
        try await channel.confirmSelect()
        let body = [UInt8](repeating: 0x61, count: 1024)
        let messages = (0..<500).map { _ in OutboundMessage(routingKey: queue, body: body) }
        try await channel.publish(contentsOf: messages, window: 64)
        try await channel.publish(contentsOf: messages, window: 1)
        #expect(try await channel.queueDeclarePassive(queue).messageCount == 1000)
        #expect(try await channel.queuePurge(queue) == 1000)
        try await channel.publish(contentsOf: Array(messages.prefix(5)), window: 256)
        #expect(try await channel.queueDelete(queue) == 5)
        await connection.close()
    }

    @Test("Cancelling the consuming task cancels the subscription; unacked deliveries go back")
    func cancellingTheTaskCancelsTheConsumer() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let queue = Broker.unique("cancel")
        try await channel.queueDeclare(queue, durable: false)
        try await channel.confirmSelect()
        try await channel.publish(contentsOf: (0..<3).map { OutboundMessage(routingKey: queue, body: Array("c\($0)".utf8)) })

        let consumerChannel = try await connection.openChannel()
        try await consumerChannel.qos(prefetchCount: 1)
        let consumer = try await consumerChannel.consume(queue: queue)
        let received = Mutex(0)
        let task = Task {
            for try await _ in consumer { received.withLock { $0 += 1 } }  // never acks
        }
        try await Poll.until("the first delivery arrives", within: .seconds(10)) { received.withLock { $0 } == 1 ? true : nil }
        #expect(try await channel.queueDeclarePassive(queue).consumerCount == 1)
        task.cancel()
        _ = try? await task.value
        try await Poll.until("the queue has no consumer", within: .seconds(10)) {
            try await channel.queueDeclarePassive(queue).consumerCount == 0 ? true : nil
        }
        try await consumerChannel.close()
        try await Poll.until("all 3 messages are back in the queue", within: .seconds(10)) {
            try await channel.queueDeclarePassive(queue).messageCount == 3 ? true : nil
        }
        try await channel.queueDelete(queue)
        await connection.close()
    }

    @Test("A publish the broker refuses (basic.nack) throws publishNotConfirmed")
    func nackSurfacesAsError() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let queue = Broker.unique("full")
        // A full queue that refuses new messages answers them with basic.nack.
        try await channel.queueDeclare(
            queue, durable: false,
            arguments: QueueArguments(maxLength: 1, extra: ["x-overflow": "reject-publish"]))
        try await channel.confirmSelect()
        try await channel.publish(Array("first".utf8), routingKey: queue)
        do {
            try await channel.publish(Array("second".utf8), routingKey: queue)
            Issue.record("publish to a full reject-publish queue was confirmed")
        } catch let error as AMQPError {
            guard case .publishNotConfirmed = error else { throw error }
        }
        // In a window, the nack fails the batch, after the rest settled.
        await #expect(throws: AMQPError.self) {
            try await channel.publish(contentsOf: (0..<5).map { _ in OutboundMessage(routingKey: queue, body: [1]) }, window: 2)
        }
        #expect(try await channel.queueDeclarePassive(queue).messageCount == 1)
        try await channel.queueDelete(queue)
        await connection.close()
    }

    // MARK: Errors

    @Test("Channel errors are typed (404, 406) and leave the connection usable")
    func channelErrorsAreTyped() async throws {
        let connection = try await Broker.connect()
        let missing = Broker.unique("missing")
        let channel = try await connection.openChannel()
        do {
            _ = try await channel.queueDeclarePassive(missing)
            Issue.record("passive declare of a missing queue succeeded")
        } catch let error as AMQPError {
            guard case .channelClosed(404, let text) = error else { throw error }
            #expect(text.contains("NOT_FOUND"))
            #expect(text.contains(missing))
        }
        // The closed channel refuses further use with the same reason...
        await #expect(throws: AMQPError.self) { try await channel.queueDeclare(Broker.unique("x")) }
        // ...while the connection and new channels carry on.
        #expect(connection.isOpen)
        let second = try await connection.openChannel()
        let queue = Broker.unique("args")
        try await second.queueDeclare(queue, durable: true, arguments: QueueArguments(messageTTL: .seconds(1)))
        do {
            try await second.queueDeclare(queue, durable: true, arguments: QueueArguments(messageTTL: .seconds(2)))
            Issue.record("redeclare with other arguments succeeded")
        } catch let error as AMQPError {
            #expect(error.replyCode == 406)
            #expect("\(error)".contains("PRECONDITION_FAILED"))
        }
        let third = try await connection.openChannel()
        try await third.queueDelete(queue)
        await connection.close()
        #expect(!connection.isOpen)
        await #expect(throws: AMQPError.connectionClosed) { try await connection.openChannel() }
    }

    @Test("An unroutable mandatory publish is returned, and surfaces as an error")
    func mandatoryUnroutableIsReturned() async throws {
        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let key = Broker.unique("nowhere")
        do {
            try await channel.publish(Array("x".utf8), exchange: "amq.direct", routingKey: key, mandatory: true)
            Issue.record("unroutable mandatory publish was confirmed")
        } catch let error as AMQPError {
            guard case .returned(312, let text) = error else { throw error }
            #expect(text == "NO_ROUTE")
        }
        // Without mandatory the broker just drops it, and confirms.
        try await channel.publish(Array("x".utf8), exchange: "amq.direct", routingKey: key)
        await connection.close()
    }

    @Test("Connecting to a closed port fails at once, naming the address")
    func refusedAddressFailsFast() async throws {
        let port = try closedPort()
        var configuration = try Broker.configuration()
        configuration.port = port
        // "At once" must be told apart from "after the connect timeout"
        // whatever else the machine is doing: with a timeout of 20 s, a
        // failure within 5 s can only be the refusal, and 5 s leaves a busy
        // machine room to schedule the test again.
        configuration.connectTimeout = .seconds(20)
        let started = ContinuousClock.now
        do {
            _ = try await AMQPConnection.connect(configuration)
            Issue.record("connected to a closed port")
        } catch let error as AMQPError {
            guard case .cannotConnect(let address, let reason) = error else { throw error }
            #expect(address == "127.0.0.1:\(port)")
            #expect(reason.contains("refused"))
            #expect("\(error)".contains("127.0.0.1:\(port)"))
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test("A peer that accepts TCP but never speaks AMQP times out within the bound")
    func silentPeerTimesOut() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        var configuration = try Broker.configuration()
        configuration.port = listener.port
        configuration.connectTimeout = .seconds(1)
        let started = ContinuousClock.now
        do {
            _ = try await AMQPConnection.connect(configuration)
            Issue.record("connected to a silent peer")
        } catch let error as AMQPError {
            guard case .cannotConnect(let address, let reason) = error else { throw error }
            #expect(address == "127.0.0.1:\(listener.port)")
            #expect(reason.contains("timed out"))
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(900))
        #expect(elapsed < .seconds(3))
    }

    // MARK: Heartbeats

    @Test("Heartbeats keep an idle connection alive")
    func heartbeatsKeepIdleConnectionAlive() async throws {
        let connection = try await Broker.connect(heartbeat: .seconds(1))
        #expect(connection.heartbeat == .seconds(1))
        let channel = try await connection.openChannel()
        // Idle for over three intervals: without our heartbeats the broker
        // would close the connection after two missed ones.
        try await Task.sleep(for: .milliseconds(3500))
        #expect(connection.isOpen)
        let info = try await channel.queueDeclare("", durable: false, exclusive: true, autoDelete: true)
        #expect(info.name.hasPrefix("amq.gen-"))
        await connection.close()
    }

    @Test("A broker that goes silent is detected by missed heartbeats while idle")
    func silentBrokerIsDetected() async throws {
        // A TCP proxy between us and the broker that can stop forwarding:
        // the socket stays open but nothing comes through, as with a hung
        // broker or a dead network path.
        try await Broker.connect().close()
        let target = try Broker.configuration()
        let proxy = try PythonPeer.start(freezingProxy, arguments: [target.host, String(target.port)])
        defer { proxy.stop() }
        let port = try #require(Int(await proxy.readLine()))
        var configuration = target
        configuration.port = port
        configuration.heartbeat = .seconds(1)
        let connection = try await AMQPConnection.connect(configuration)
        _ = try await connection.openChannel()

        proxy.send("freeze")
        let started = ContinuousClock.now
        let reason = await connection.closed()
        let elapsed = ContinuousClock.now - started
        #expect(reason == .heartbeatTimeout(address: "127.0.0.1:\(port)"))
        #expect(elapsed < .seconds(5), "took \(elapsed) to notice")
        #expect(!connection.isOpen)
    }

    // MARK: Service

    @Test("ConsumerService handles deliveries and returns on graceful shutdown")
    func consumerServiceShutsDownGracefully() async throws {
        try await Broker.connect().close()  // fail early and clearly without a broker
        let queue = Broker.unique("service")
        let client = RabbitClient(configuration: try Broker.configuration()) { channel in
            try await channel.queueDeclare(queue, durable: true)
        }
        let handled = Mutex<[String]>([])
        let service = ConsumerService(client: client, queue: queue, prefetch: 5) { delivery in
            try await Task.sleep(for: .milliseconds(20))
            handled.withLock { $0.append(delivery.bodyString) }
            return .ack
        }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let group = ServiceGroup(services: [client, service], gracefulShutdownSignals: [], logger: logger)
        let running = Task { try await group.run() }

        try await client.waitUntilConnected(timeout: .seconds(10))
        let messages = (0..<20).map { OutboundMessage(routingKey: queue, body: Array("job-\($0)".utf8)) }
        try await client.publish(contentsOf: messages, window: 20)
        try await Poll.until("the service handled all 20 messages", within: .seconds(10)) { handled.withLock { $0.count } == 20 ? true : nil }

        await group.triggerGracefulShutdown()
        try await running.value
        #expect(handled.withLock { Set($0) } == Set((0..<20).map { "job-\($0)" }))

        let connection = try await Broker.connect()
        let channel = try await connection.openChannel()
        let info = try await channel.queueDeclarePassive(queue)
        #expect(info.messageCount == 0)
        #expect(info.consumerCount == 0)
        try await channel.queueDelete(queue)
        await connection.close()
    }

    // MARK: Recovery (keep last: it stops and restarts the broker)

    @Test("Broker restart mid-stream: clear error, reconnect, consuming resumes, nothing confirmed lost")
    func brokerRestartRecovery() async throws {
        try await Broker.connect().close()
        let queue = Broker.unique("restart")
        var configuration = try Broker.configuration(heartbeat: .seconds(2))
        configuration.connectionName = "AMQPTests restart"
        var logger = Logger(label: "restart-test")
        logger.logLevel = .warning
        let client = RabbitClient(
            configuration: configuration,
            options: .init(initialBackoff: .milliseconds(200), maximumBackoff: .seconds(1)),
            logger: logger
        ) { channel in
            // Durable queue, persistent messages: both are needed for
            // messages to survive the restart.
            try await channel.queueDeclare(queue, durable: true)
        }
        let events = Mutex<[RabbitClient.Event]>([])
        let eventStream = client.events()
        let eventTask = Task { for await event in eventStream { events.withLock { $0.append(event) } } }
        let running = Task { try await client.run() }
        try await client.waitUntilConnected(timeout: .seconds(10))

        let received = Mutex<Set<String>>([])
        let consumer = client.consume(queue: queue, prefetch: 20)
        let consuming = Task {
            for try await delivery in consumer {
                received.withLock { _ = $0.insert(delivery.properties.messageID ?? "") }
                try? await delivery.ack()  // fails for deliveries of a dead connection: they come again
            }
        }

        // Publish steadily; a publish that fails is retried until it is
        // confirmed. Only confirmed ids count as "must arrive".
        let confirmed = Mutex<Set<String>>([])
        let publishErrors = Mutex<[AMQPError]>([])
        let total = 300
        let publishing = Task {
            for index in 0..<total {
                let id = "m-\(index)"
                let message = OutboundMessage(
                    routingKey: queue, body: Array("payload \(index)".utf8),
                    properties: BasicProperties(deliveryMode: .persistent, messageID: id))
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline {
                    do {
                        try await client.publish(message)
                        confirmed.withLock { _ = $0.insert(id) }
                        break
                    } catch let error as AMQPError {
                        publishErrors.withLock { $0.append(error) }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }

        try await Poll.until("60 publishes are confirmed", within: .seconds(10)) { confirmed.withLock { $0.count } >= 60 ? true : nil }
        var restartProblem: String?
        let down = try await runProcess(Repository.infraScript, ["down", "rabbitmq"], timeout: .seconds(90))
        if down.status != 0 { restartProblem = "infra down failed: \(down.stderr)" }
        // scripts/infra leaves alone a broker it did not start (a system
        // service, another checkout's): then nothing was restarted, and the
        // assertions below would fail for the wrong reason. Say so.
        let stillUp = (try? await runProcess("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/5672"], timeout: .seconds(5)))?.status == 0
        if stillUp {
            restartProblem = "the RabbitMQ on 127.0.0.1:5672 was not started by this checkout's scripts/infra, so this test cannot restart it: stop it and let scripts/test start its own"
        }
        // Whatever happened, bring the broker back before asserting.
        let up = try await runProcess(Repository.infraScript, ["up", "rabbitmq"], timeout: .seconds(120))
        if up.status != 0 { restartProblem = (restartProblem ?? "") + " infra up failed: \(up.stderr)" }
        #expect(restartProblem == nil)

        try await publishing.value
        #expect(confirmed.withLock { $0.count } == total)
        let allArrived = (try? await Poll.until("every confirmed message is delivered", within: .seconds(30)) {
            confirmed.withLock { $0 }.isSubset(of: received.withLock { $0 }) ? true : nil
        }) != nil
        let missing = confirmed.withLock { $0 }.subtracting(received.withLock { $0 })
        #expect(allArrived, "confirmed but never delivered: \(missing.sorted().prefix(10))")

        // The outage was reported clearly, then the client came back.
        let seen = events.withLock { $0 }
        let disconnects = seen.compactMap { event -> AMQPError? in
            if case .disconnected(let error) = event { return error } else { return nil }
        }
        #expect(!disconnects.isEmpty)
        if let first = disconnects.first {
            switch first {
            case .connectionClosedByBroker(320, let text):
                #expect(text.contains("CONNECTION_FORCED"))
            case .connectionLost, .heartbeatTimeout:
                break
            default:
                Issue.record("unexpected disconnect reason: \(first)")
            }
        }
        #expect(seen.contains(.connected(generation: 2)) || seen.contains(.connected(generation: 3)))
        #expect(!publishErrors.withLock { $0.isEmpty }, "no publish failed during the outage?")
        // Each failed publish said why: the broker's goodbye, a lost
        // connection, or "not connected" while the client reconnected.
        for error in publishErrors.withLock({ $0 }) {
            switch error {
            case .connectionClosedByBroker, .connectionLost, .notConnected, .channelClosed, .heartbeatTimeout: break
            default: Issue.record("unexpected publish error: \(error)")
            }
        }

        await consumer.close()
        consuming.cancel()
        _ = try await client.withChannel { channel in try await channel.queueDelete(queue) }
        client.shutdown()
        try await running.value
        eventTask.cancel()
    }
}

// MARK: Helpers

/// A port on loopback where nothing listens (bound once, then released).
func closedPort() throws -> Int {
    let listener = try SilentListener()
    let port = listener.port
    listener.close()
    return port
}

/// Listens on 127.0.0.1 and never accepts: the kernel completes the TCP
/// handshake from its backlog, but no byte of AMQP ever comes back.
final class SilentListener: @unchecked Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 8) == 0 else { throw ProcessFailure(description: "cannot listen on loopback") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}

/// A loopback TCP proxy in Python. Prints its port; after reading "freeze"
/// on stdin it stops forwarding in both directions but keeps the sockets.
let freezingProxy = """
    import socket, sys, threading, time
    frozen = threading.Event()
    target = (sys.argv[1], int(sys.argv[2]))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    print(listener.getsockname()[1], flush=True)
    def forward(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while frozen.is_set():
                    time.sleep(0.05)
                dst.sendall(data)
        except OSError:
            pass
    def serve():
        while True:
            client, _ = listener.accept()
            upstream = socket.create_connection(target)
            threading.Thread(target=forward, args=(client, upstream), daemon=True).start()
            threading.Thread(target=forward, args=(upstream, client), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    for line in sys.stdin:
        if line.strip() == "freeze":
            frozen.set()
    """
