import Foundation
import GRDB
@testable import Messaging
import Observability
import Instrumentation
import Storage
import TestSupport
import Testing

/// The outbox and the inbox against a real SQLite file (no broker needed:
/// what they promise is about transactions).
@Suite("Outbox and inbox")
struct InboxOutboxTests {
    func database() throws -> DatabasePool {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("inbox-\(UUID().uuidString).sqlite")
        var migrator = DatabaseMigrator()
        migrator.registerMigration("effects") { db in try db.execute(sql: "CREATE TABLE effects (n INTEGER NOT NULL)") }
        migrator.register(MessagingSchema.migrations)
        return try SQLiteStore.openPool(at: url, migrator: migrator)
    }

    func count(_ db: DatabasePool, _ table: String) async throws -> Int {
        try await db.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0 }
    }

    @Test("a message id is processed once: the second delivery runs nothing and sends nothing")
    func once() async throws {
        let db = try database()
        let reply = OutgoingMessage(type: "thing.done", body: Array("{}".utf8))
        for _ in 0..<3 {
            try await Inbox.once(id: "msg_1", type: "thing.do", db: db, relay: nil) { db in
                try db.execute(sql: "INSERT INTO effects (n) VALUES (1)")
                return [reply]
            }
        }
        #expect(try await count(db, "effects") == 1)
        #expect(try await count(db, "outbox") == 1)
        #expect(try await count(db, "processed_messages") == 1)
    }

    @Test("an effect that fails records nothing, so the next delivery tries again")
    func failureRollsBackTheClaim() async throws {
        let db = try database()
        struct Transient: Error {}
        await #expect(throws: Transient.self) {
            try await Inbox.once(id: "msg_2", type: "thing.do", db: db, relay: nil) { db in
                try db.execute(sql: "INSERT INTO effects (n) VALUES (1)")
                throw Transient()
            }
        }
        #expect(try await count(db, "effects") == 0)
        #expect(try await count(db, "processed_messages") == 0)
        let ran = try await Inbox.once(id: "msg_2", type: "thing.do", db: db, relay: nil) { db in
            try db.execute(sql: "INSERT INTO effects (n) VALUES (2)")
            return []
        }
        #expect(ran)
        #expect(try await count(db, "effects") == 1)
    }

    @Test("pruning forgets only the ids processed before the cutoff, however many there are")
    func prune() async throws {
        let db = try database()
        let now = Date()
        let old = now.addingTimeInterval(-8 * 24 * 3_600).databaseMilliseconds
        // More than one prune batch of old ids, and a few recent ones.
        try await db.write { db in
            for i in 0..<2_500 {
                try db.execute(sql: "INSERT INTO processed_messages (messageId, type, processedAt) VALUES (?, 'x', ?)", arguments: ["old-\(i)", old + Int64(i)])
            }
        }
        for i in 0..<3 {
            try await Inbox.once(id: "recent-\(i)", type: "x", db: db, relay: nil) { _ in [] }
        }
        let forgotten = try await Inbox.prune(processedBefore: now.addingTimeInterval(-7 * 24 * 3_600), db: db)
        #expect(forgotten == 2_500)
        let kept = try await db.read { db in try String.fetchAll(db, sql: "SELECT messageId FROM processed_messages ORDER BY messageId") }
        #expect(kept == ["recent-0", "recent-1", "recent-2"])
        // A recent id is still refused a second time.
        #expect(try await Inbox.once(id: "recent-0", type: "x", db: db, relay: nil) { _ in [] } == false)
    }

    @Test("the pruner service prunes at start and stops when cancelled")
    func prunerService() async throws {
        let db = try database()
        let old = Date().addingTimeInterval(-2 * 3_600).databaseMilliseconds
        try await db.write { db in
            try db.execute(sql: "INSERT INTO processed_messages (messageId, type, processedAt) VALUES ('old', 'x', ?), ('new', 'x', ?)",
                           arguments: [old, Date().databaseMilliseconds])
        }
        let pruner = InboxPruner(db: db, retention: .seconds(3_600), interval: .seconds(3_600), logger: .init(label: "test"))
        let running = Task { try await pruner.run() }
        // `try?`: the expectation below says what is left if it never is.
        _ = try? await Poll.until("the old message id is pruned", within: .seconds(10), every: .milliseconds(10)) {
            try await count(db, "processed_messages") <= 1 ? true : nil
        }
        #expect(try await db.read { db in try String.fetchAll(db, sql: "SELECT messageId FROM processed_messages") } == ["new"])
        running.cancel()
        try await running.value
    }

    @Test("outbox rows keep the order they were written in, with the message's id and type")
    func outboxOrder() async throws {
        let db = try database()
        let messages = (1...5).map { OutgoingMessage(id: "msg_\($0)", type: "t.\($0)", body: Array("\($0)".utf8), correlationId: "ord_1") }
        try await db.write { db in
            try Outbox.add(Array(messages.prefix(2)), in: db)
            try Outbox.add(Array(messages.dropFirst(2)), in: db)
        }
        let rows = try await db.read { db in try Row.fetchAll(db, sql: "SELECT messageId, type FROM outbox ORDER BY seq").map { "\($0["messageId"] as String)/\($0["type"] as String)" } }
        #expect(rows == messages.map { "\($0.id)/\($0.type)" })
        let amqp = messages[0].amqp(exchange: "ns.shop")
        #expect(amqp.routingKey == "t.1" && amqp.exchange == "ns.shop" && amqp.mandatory)
        #expect(amqp.properties.messageID == "msg_1" && amqp.properties.type == "t.1" && amqp.properties.deliveryMode == .persistent)
        #expect(amqp.properties.headers?[MessageHeader.correlationId] == .string("ord_1"))
    }

    /// What a relay would publish, kept (a double: what is tested is the
    /// outbox, not a broker).
    final class Collected: OutboxDestination, @unchecked Sendable {
        private let lock = NSLock()
        private var sent: [OutgoingMessage] = []
        var messages: [OutgoingMessage] { lock.withLock { sent } }
        func deliver(_ messages: [OutgoingMessage]) async throws { lock.withLock { sent += messages } }
    }

    @Test("a message made in a trace keeps it through the outbox, and goes out with it as the traceparent header")
    func outboxKeepsTheTrace() async throws {
        let db = try database()
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        var context = ServiceContext.topLevel
        context.trace = TraceContext(traceparent: traceparent)
        // The message is made inside the transaction, and takes the trace
        // of the task that writes it.
        try await ServiceContext.$current.withValue(context) {
            _ = try await Inbox.once(id: "msg_t", type: "thing.do", db: db, relay: nil) { _ in
                [OutgoingMessage(type: "thing.done", body: Array("{}".utf8))]
            }
        }
        // Outside any trace: none.
        _ = try await Inbox.once(id: "msg_u", type: "thing.do", db: db, relay: nil) { _ in
            [OutgoingMessage(type: "thing.done", body: Array("{}".utf8))]
        }
        let destination = Collected()
        try await OutboxRelay.drain(db: db, destination: destination)
        let sent = destination.messages
        #expect(sent.map(\.traceparent) == [traceparent, nil])
        #expect(sent.first?.amqp(exchange: "ns.shop").properties.headers?[MessageHeader.traceparent] == .string(traceparent))
        #expect(sent.last?.amqp(exchange: "ns.shop").properties.headers?[MessageHeader.traceparent] == nil)
        #expect(try await count(db, "outbox") == 0)
    }

    @Test("names carry the namespace; RETRY_DELAYS_MS sets the ladder, and a malformed value is ignored")
    func topology() {
        let topology = MessageTopology(namespace: "ns", queues: [.init("payment", bindings: ["order.created"])], retryDelays: [.milliseconds(200), .seconds(1)])
        #expect(topology.exchange == "ns.shop" && topology.queue("payment") == "ns.payment")
        #expect(topology.retryQueue("payment", step: 2) == "ns.payment.retry.2" && topology.deadLetterQueue == "ns.dead-letters")
        #expect(topology.maxAttempts == 3)
        let fallback: [Duration] = [.seconds(9)]
        #expect(MessageTopology.retryDelays(parsing: "100, 2000", default: fallback) == [.milliseconds(100), .milliseconds(2000)])
        #expect(MessageTopology.retryDelays(parsing: nil, default: fallback) == fallback)
        #expect(MessageTopology.retryDelays(parsing: "100,soon", default: fallback) == fallback)
        #expect(MessageTopology.retryDelays(parsing: "-5", default: fallback) == fallback)
    }
}
