import AMQP
import Auth
import Common
import Foundation
import GRDB
import Hummingbird
import Logging
import ServiceLifecycle
import ShopServer
import Storage

/// Where messages that could not be processed go, and come back from.
///
/// It consumes `<ns>.dead-letters` into a table, so that an operator can
/// list them (`GET /admin/dead-letters`) and, once the cause is fixed, send
/// one back to the queue it came from (`POST /admin/dead-letters/{id}/replay`).
/// A queue is a poor place to keep them: reading a queue consumes it, and a
/// message cannot be picked out of the middle of one.
public struct DeadLetterOffice: Sendable {
    public struct Letter: Codable, Sendable, Equatable {
        public var id: String
        /// The work queue it came from (short name: `payment`).
        public var queue: String
        public var messageId: String?
        public var messageType: String?
        public var reason: String
        public var attempts: Int
        public var deadLetteredAt: Date
        /// The body as received: JSON when it parses, else the text.
        public var payload: JSONValue
    }

    public struct Replay: Codable, Sendable {
        public var id: String
        public var queue: String
        public var replayedAt: Date
    }

    let db: any DatabaseWriter
    let client: RabbitClient
    let topology: MessageTopology
    let logger: Logger

    public static func openDatabase(at url: URL) throws -> DatabasePool {
        try SQLiteStore.openPool(at: url, migrations: migrations)
    }

    public static let migrations = [
        Migration("dead letters v1", sql: """
                -- The message as it arrived (body and properties), so a replay sends
                -- exactly that back; and why it was set aside.
                CREATE TABLE dead_letters (
                    id TEXT PRIMARY KEY,
                    queue TEXT NOT NULL,
                    messageId TEXT,
                    messageType TEXT,
                    reason TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    deadLetteredAt INTEGER NOT NULL,
                    body BLOB NOT NULL,
                    headers TEXT NOT NULL,        -- JSON of the headers a replay keeps
                    replayedAt INTEGER            -- set when sent back; then no longer listed
                );
                CREATE INDEX dead_letters_listed ON dead_letters(deadLetteredAt) WHERE replayedAt IS NULL;
                """),
    ]

    public init(db: any DatabaseWriter, client: RabbitClient, topology: MessageTopology, logger: Logger) {
        self.db = db
        self.client = client
        self.topology = topology
        self.logger = logger
    }

    /// The consumer that files every dead letter. One that cannot be filed
    /// (the database is failing) goes back to the queue and waits: the
    /// dead-letter queue has nowhere further to send it, so a rejection
    /// would lose it.
    public var consumer: some Service {
        ConsumerService(client: client, queue: topology.deadLetterQueue, prefetch: 32, logger: logger) { [logger] delivery in
            do {
                try await file(delivery)
                return .ack
            } catch {
                logger.error("could not file a dead letter; it stays in the queue", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
                return .requeue
            }
        }
    }

    /// Stores one dead letter. Our consumers say why in headers; a message
    /// RabbitMQ dead-lettered by itself (rejected) says it in `x-death`.
    func file(_ delivery: Delivery) async throws {
        let headers = delivery.headers
        let death = delivery.xDeath.first
        let id = headers[MessageHeader.deadLetterId]?.stringValue ?? "dlq_" + Fingerprint.sha256Hex("\(delivery.properties.messageID ?? "")|\(death?.time?.timeIntervalSince1970 ?? 0)|\(death?.count ?? 0)").prefix(20)
        let queue = headers[MessageHeader.sourceQueue]?.stringValue
            ?? death.map { String($0.queue.dropFirst(topology.namespace.count + 1)) } ?? "unknown"
        let reason = headers[MessageHeader.reason]?.stringValue ?? death.map { "rejected by the broker (\($0.reason))" } ?? "unknown"
        let attempts = headers[MessageHeader.attempts]?.intValue ?? headers[MessageHeader.attempt]?.intValue ?? 1
        let at = headers[MessageHeader.deadLetteredAt]?.intValue.map { Date(databaseMilliseconds: $0) } ?? Date()
        // What a replay should carry again: everything but the dead-letter
        // bookkeeping and the attempt count (a replay sets its own).
        var kept: [String: String] = [:]
        for (key, value) in headers where !key.hasPrefix("x-dead-letter") && ![MessageHeader.sourceQueue, MessageHeader.attempts, MessageHeader.attempt, "x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason", "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason"].contains(key) {
            if let string = value.stringValue { kept[key] = string }
        }
        try await file(
            id: id, queue: queue, messageId: delivery.properties.messageID, messageType: delivery.properties.type ?? delivery.routingKey,
            reason: reason, attempts: Int(attempts), at: at, body: delivery.body, headers: kept)
    }

    /// Stores one dead letter that came by another route (stage 7: a record
    /// of a Kafka dead-letter topic). `queue` is the work queue a replay
    /// sends it to; `id` must be the same every time the same letter is
    /// filed, so that filing it twice keeps one.
    public func file(
        id: String, queue: String, messageId: String?, messageType: String?, reason: String, attempts: Int, at: Date,
        body: [UInt8], headers: [String: String]
    ) async throws {
        let keptJSON = String(decoding: try JSONEncoder().encode(headers), as: UTF8.self)
        let _: Int = try await db.write { db in
            try db.run(cached: """
                INSERT OR IGNORE INTO dead_letters (id, queue, messageId, messageType, reason, attempts, deadLetteredAt, body, headers)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [id, queue, messageId, messageType, reason, attempts, at.databaseMilliseconds, Data(body), keptJSON])
        }
        logger.warning("dead letter filed", metadata: ["id": .string(id), "queue": .string(queue), "reason": .string(reason)])
    }

    public func list() async throws -> [Letter] {
        try await db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM dead_letters WHERE replayedAt IS NULL ORDER BY deadLetteredAt DESC, rowid DESC")
                .map(Self.letter)
        }
    }

    /// Sends the message back to its work queue as it arrived (same id, type
    /// and body), as one more attempt, and takes it off the list. If that
    /// attempt fails too, the message comes straight back here: the retry
    /// ladder was used up before. Consumers are idempotent, so replaying a
    /// message that in fact went through does nothing.
    public func replay(id: String) async throws -> Replay {
        // Read into Sendable values, so that GRDB's async read is the one used.
        typealias Stored = (queue: String, attempts: Int, headers: String, body: Data, messageType: String?, messageId: String?)
        let stored: Stored? = try await db.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM dead_letters WHERE id = ? AND replayedAt IS NULL", arguments: [id]).map {
                ($0["queue"], $0["attempts"], $0["headers"], $0["body"], $0["messageType"], $0["messageId"])
            }
        }
        guard let stored else { throw ShopError.notFound("dead letter \(id)") }
        let queue = stored.queue
        guard topology.queues.contains(where: { $0.name == queue }) else {
            throw ShopError(.invalidRequest, "dead letter \(id) came from queue '\(queue)', which this deployment does not have")
        }
        var headers: AMQPTable = [MessageHeader.attempt: .int(Int64(stored.attempts) + 1)]
        if let kept = try? JSONDecoder().decode([String: String].self, from: Data(stored.headers.utf8)) {
            for (key, value) in kept { headers[key] = .string(value) }
        }
        let message = OutboundMessage(
            exchange: "", routingKey: topology.queue(queue), body: Array(stored.body),
            properties: BasicProperties(
                contentType: "application/json", headers: headers, deliveryMode: .persistent,
                messageID: stored.messageId, timestamp: Date(), type: stored.messageType),
            mandatory: true)
        do {
            try await client.publish(message)
        } catch {
            throw ShopError(.unavailable, "RabbitMQ did not take the message back (\(error)); the dead letter stays listed, try again")
        }
        let now = Date()
        let _: Int = try await db.write { db in
            try db.run(cached: "UPDATE dead_letters SET replayedAt = ? WHERE id = ?", [now.databaseMilliseconds, id])
        }
        logger.notice("dead letter replayed", metadata: ["id": .string(id), "queue": .string(queue)])
        return Replay(id: id, queue: queue, replayedAt: now)
    }

    static func letter(_ row: Row) -> Letter {
        let body: Data = row["body"]
        let payload = (try? JSONDecoder().decode(JSONValue.self, from: body)) ?? .string(String(decoding: body, as: UTF8.self))
        return Letter(
            id: row["id"], queue: row["queue"], messageId: row["messageId"], messageType: row["messageType"],
            reason: row["reason"], attempts: row["attempts"], deadLetteredAt: Date(databaseMilliseconds: row["deadLetteredAt"]),
            payload: payload)
    }

    /// `GET /admin/dead-letters` and `POST /admin/dead-letters/{id}/replay`.
    public func addRoutes(to router: Router<ShopRequestContext>, auth: Authenticator) {
        router.get("/admin/dead-letters") { request, context in
            _ = try auth.admin(request, context: context)
            return Reply.json(API.ItemList(items: try await list()))
        }
        router.post("/admin/dead-letters/:id/replay") { request, context in
            _ = try auth.admin(request, context: context)
            return Reply.json(try await replay(id: context.parameters.id("id")), status: .accepted)
        }
    }
}
