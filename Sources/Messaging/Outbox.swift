import AMQP
import Foundation
import GRDB
import Logging
import Observability
import ServiceLifecycle
import Storage

/// The transactional outbox and the inbox, as two tables in a service's own
/// database.
///
/// - `outbox`: messages written in the same transaction as the change they
///   announce. Either both are committed or neither: a crash after the
///   commit leaves the message in the table, and the relay sends it when the
///   process is back. Publishing straight to RabbitMQ inside the request
///   would lose the message if the process died between commit and publish,
///   and announce a change that never happened if it died the other way round.
/// - `processed_messages`: the ids of the messages this service has
///   handled, written in the same transaction as their effect. A message
///   delivered twice (a redelivery after a crash, a duplicate publish after a
///   lost confirm) finds its id there and changes nothing the second time.
///   `InboxPruner` forgets ids once no copy can still arrive.
public enum MessagingSchema {
    public static let migrations = [
        Migration("messaging v1", sql: """
                -- Sent in `seq` order, then deleted. The order matters: a consumer
                -- sees an order's messages in the order the service wrote them.
                CREATE TABLE outbox (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    messageId TEXT NOT NULL UNIQUE,
                    type TEXT NOT NULL,
                    body BLOB NOT NULL,
                    correlationId TEXT,
                    createdAt INTEGER NOT NULL
                );
                CREATE TABLE processed_messages (
                    messageId TEXT PRIMARY KEY,
                    type TEXT NOT NULL,
                    processedAt INTEGER NOT NULL
                ) WITHOUT ROWID;
                """),
        // InboxPruner deletes the oldest ids first; without this index every
        // prune would read the whole table.
        Migration("messaging v2: processed ids by time", sql: """
            CREATE INDEX processed_messages_by_time ON processed_messages(processedAt)
            """),
        // The trace a message continues (W3C `traceparent`), kept with it
        // until it is sent, as the AMQP header of the same name.
        Migration("messaging v3: outbox traceparent", sql: """
            ALTER TABLE outbox ADD COLUMN traceparent TEXT
            """),
    ]
}

public enum Outbox {
    /// Adds messages to the outbox, in the caller's transaction.
    public static func add(_ messages: [OutgoingMessage], in db: Database) throws {
        for message in messages {
            try db.run(cached: """
                INSERT INTO outbox (messageId, type, body, correlationId, traceparent, createdAt) VALUES (?, ?, ?, ?, ?, ?)
                """, [message.id, message.type, Data(message.body), message.correlationId, message.traceparent, Date().databaseMilliseconds])
        }
    }

    public static func add(_ message: OutgoingMessage, in db: Database) throws {
        try add([message], in: db)
    }
}

public enum Inbox {
    /// Records that `message` is being processed, in the caller's
    /// transaction. False when it was processed before: the caller must then
    /// do nothing (and the transaction changes nothing).
    public static func claim(_ message: IncomingMessage, in db: Database) throws -> Bool {
        try claim(id: message.id, type: message.type, in: db)
    }

    static func claim(id: String, type: String, in db: Database) throws -> Bool {
        try db.run(cached: "INSERT OR IGNORE INTO processed_messages (messageId, type, processedAt) VALUES (?, ?, ?)",
                   [id, type, Date().databaseMilliseconds]) == 1
    }

    /// Whether `message` was processed before, to skip work that would
    /// otherwise be done outside the transaction (calling a provider).
    public static func seen(_ message: IncomingMessage, in db: Database) throws -> Bool {
        try Int.fetchOne(db, cached: "SELECT 1 FROM processed_messages WHERE messageId = ?", [message.id]) != nil
    }

    /// Runs `effect` once per message: in one write transaction with the
    /// record of the message's id, and the outgoing messages it returns
    /// go to the outbox in that same transaction. Answers false (and runs
    /// nothing) for a message already processed.
    ///
    /// The transaction shares its commit with whatever else this process
    /// is writing to `db` at that moment (`GroupCommit.shared`): a consumer
    /// handling a burst of deliveries side by side pays for one commit, not
    /// one per message, and each delivery is still acknowledged only after
    /// the commit that holds its effect.
    @discardableResult
    public static func once(
        _ message: IncomingMessage, db: any DatabaseWriter, relay: OutboxRelay?,
        _ effect: @escaping @Sendable (Database) throws -> [OutgoingMessage]
    ) async throws -> Bool {
        try await once(id: message.id, type: message.type, db: db, relay: relay, effect)
    }

    /// The same by id and type (what `once` needs of a message).
    @discardableResult
    static func once(
        id: String, type: String, db: any DatabaseWriter, relay: OutboxRelay?,
        _ effect: @escaping @Sendable (Database) throws -> [OutgoingMessage]
    ) async throws -> Bool {
        let sent: [OutgoingMessage]? = try await GroupCommit.shared(db).write { db in
            guard try claim(id: id, type: type, in: db) else { return nil }
            let outgoing = try effect(db)
            try Outbox.add(outgoing, in: db)
            return outgoing
        }
        if let sent, !sent.isEmpty { relay?.wake() }
        return sent != nil
    }
}

/// Where an outbox's messages go: a broker that says when it has taken
/// them. The relay below is the same whatever the broker; only this
/// changes: RabbitMQ from stage 4 (`RabbitDestination`), Redis job queues
/// from stage 5, Kafka from stage 7. So a service never writes to a broker
/// itself, outside its transaction: it writes to its outbox, and the relay
/// hands the outbox to its destination.
public protocol OutboxDestination: Sendable {
    /// Publishes the messages in order and returns once the broker has
    /// confirmed every one of them; throws if it cannot say so. After a
    /// throw the relay sends the whole batch again (consumers deduplicate).
    func deliver(_ messages: [OutgoingMessage]) async throws
}

/// RabbitMQ: each message to the exchange, routed by its type, persistent,
/// with publisher confirms (at most 256 unconfirmed at once).
public struct RabbitDestination: OutboxDestination {
    let client: RabbitClient
    let exchange: String
    let contentType: String

    /// `contentType` is what every message of this outbox is (stage 6's
    /// events are `application/cloudevents+json`).
    public init(client: RabbitClient, exchange: String, contentType: String = "application/json") {
        self.client = client
        self.exchange = exchange
        self.contentType = contentType
    }

    public func deliver(_ messages: [OutgoingMessage]) async throws {
        try await client.publish(contentsOf: messages.map { $0.amqp(exchange: exchange, contentType: contentType) }, window: 256)
    }
}

/// Sends what is in the outbox: oldest first, in batches, to its
/// destination, and deletes a batch only once the broker has confirmed all
/// of it. While the broker is away it waits and tries again; the messages
/// wait in the table meanwhile, so nothing is lost and the service keeps
/// taking requests.
///
/// A batch that fails halfway is sent again whole: some of its messages may
/// then reach consumers twice, which the inbox makes harmless. That is the
/// trade the pattern makes: at-least-once delivery plus idempotent
/// consumers, instead of an exactly-once that no broker can promise.
///
/// The loop (wake, poll, back off while the broker is away) is the same for
/// any source that keeps what it has not sent yet: `init(logger:drain:)`
/// runs it over another one (stage 8's event store, which is its own
/// outbox and keeps a checkpoint instead of deleting).
public final class OutboxRelay: Service, Sendable {
    let logger: Logger
    private let drainBody: @Sendable () async throws -> Void
    private let signal: AsyncStream<Void>.Continuation
    private let signals: AsyncStream<Void>

    public init(db: any DatabaseWriter, destination: any OutboxDestination, logger: Logger) {
        self.logger = logger
        self.drainBody = { try await Self.drain(db: db, destination: destination) }
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        MessagingMetrics.watchOutbox(db)
    }

    /// A relay over another source: `drain` sends everything not sent yet,
    /// and throws when the broker did not take it (it is called again).
    public init(logger: Logger, drain: @escaping @Sendable () async throws -> Void) {
        self.logger = logger
        self.drainBody = drain
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Something was just committed to the outbox: send it now rather than
    /// at the next poll.
    public func wake() { signal.yield() }

    public func run() async throws {
        // A wake-up from a commit, or a poll every 500 ms: the poll catches
        // what was written by another process sharing the file, or left by a
        // crash before this process started.
        let ticker = Task { [signal] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(500))
                signal.yield()
            }
        }
        defer { ticker.cancel() }
        await withGracefulShutdownHandler {
            var failures = 0
            for await _ in signals {
                if Task.isShuttingDownGracefully { break }
                do {
                    try await drain()
                    if failures > 0 { logger.notice("outbox relay publishing again", metadata: ["after_failures": "\(failures)"]) }
                    failures = 0
                } catch {
                    failures += 1
                    // Once per streak of failures, then every 20th: a broker
                    // that is down for a minute should not flood the log.
                    if failures == 1 || failures % 20 == 0 {
                        logger.warning("outbox relay cannot publish; messages wait in the outbox", metadata: [
                            "error": "\(error)", "failures": "\(failures)"])
                    }
                    try? await Task.sleep(for: .milliseconds(min(100 * failures, 2_000)))
                    signal.yield()
                }
            }
        } onGracefulShutdown: { [signal] in
            signal.finish()
        }
    }

    func drain() async throws { try await drainBody() }

    /// Publishes everything in the outbox, 256 at a time.
    static func drain(db: any DatabaseWriter, destination: any OutboxDestination) async throws {
        while true {
            // Rows are read into Sendable values inside the closure, so that
            // GRDB's async read runs on its own queue, not on this task's thread.
            let batch: [(seq: Int64, message: OutgoingMessage)] = try await db.read { db in
                try Row.fetchAll(db.cachedStatement(sql: "SELECT seq, messageId, type, body, correlationId, traceparent FROM outbox ORDER BY seq LIMIT 256"))
                    .map { row in
                        (row["seq"], OutgoingMessage(id: row["messageId"], type: row["type"], body: Array(row["body"] as Data), correlationId: row["correlationId"], traceparent: row["traceparent"]))
                    }
            }
            guard let last = batch.last?.seq else { return }
            try await destination.deliver(batch.map(\.message))
            MessagingMetrics.published(batch.map(\.message))
            // The delete joins the commit of whatever else is being written
            // (a consumer's inbox transactions, an order placed), rather
            // than costing a commit of its own.
            let _: Int = try await GroupCommit.shared(db).write { db in try db.run(cached: "DELETE FROM outbox WHERE seq <= ?", [last]) }
        }
    }
}
