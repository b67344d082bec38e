import Events
import Foundation
import Crypto
import GRDB
import Kafka
import Logging
import Messaging
import ServiceLifecycle
import Storage
import Synchronization

/// A read model built only from the stream, that can be rebuilt from zero
/// while it keeps answering.
///
/// Its state lives in tables of its own, every row tagged with a
/// *generation*. The model keeps, in the same database and in the same
/// transaction as each update, the position it has reached in every
/// partition (`read_model_positions`) and the ids of the events it has
/// applied (`read_model_events`). So:
/// - a record read twice (a rebalance, a crash before the commit) finds its
///   offset behind the stored position and changes nothing; an event
///   published twice under two offsets finds its id; the state is counted
///   exactly once;
/// - on every assignment the consumer starts where the *database* says
///   (`StartPosition.stored`), not where the group last committed. The
///   group's commits still follow, so that lag can be read from the broker.
///
/// A replay (`replay()`) opens a new generation (a number never used
/// before) with no positions: the
/// consumers (every instance: they share the database and notice within a
/// quarter of a second) move the partitions they own back to offset 0,
/// staying in the group, and read every topic again into N+1. Generation N stays as it was and answers every
/// query meanwhile, so a report never shows half-built figures. Once N+1
/// has reached, in every partition, the position N had, it holds everything
/// N held: in one transaction N+1 becomes the live generation and N's rows
/// are deleted.
public final class ReadModel: Service, Sendable {
    /// Applies one event to the model's tables for `generation`, in the
    /// caller's transaction. Throw `MessageFailure.poison` for an event that
    /// can never apply (it goes to the dead-letter topic).
    public typealias Apply = @Sendable (ReceivedEvent, _ generation: Int, Database) throws -> Void

    /// Compares a rebuilt generation with the live one, both at the same
    /// position, just before the switch: nil when they agree, else what
    /// differs. A rebuild that disagrees is dropped, and the live one keeps
    /// serving (`lastRebuild` says why).
    public typealias Verify = @Sendable (Database, _ live: Int, _ rebuilt: Int) throws -> String?

    /// Called with each event once its change is committed (so that a
    /// reader waiting for it, `Prefer: wait`, reads it).
    public typealias Committed = @Sendable (ReceivedEvent) -> Void

    /// Whether this instance's consumer has joined its group (see `StreamConsumer.hasJoined`).
    public var hasJoined: Bool { stream.withLock { $0?.hasJoined ?? false } }
    private let stream = Mutex<StreamConsumer?>(nil)

    public let name: String
    let db: any DatabaseWriter
    let catalog: EventCatalog
    let tables: [String]
    let apply: Apply
    let verify: Verify?
    let committed: Committed?
    /// The version the model's code reads each event as, by name (others:
    /// the newest); see `EventRecords.envelope`.
    let readAs: [String: Int]
    let logger: Logger
    private let consumerConfiguration: KafkaConsumerConfiguration
    private let deadLetters: DeadLetterTopic

    /// The bookkeeping tables; add them to the model's database migrations.
    public static let migrations = [
        Migration("read model v1", sql: """
            -- live: the generation queries read; building: the one a replay is
            -- filling, if any.
            CREATE TABLE read_model_generations (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                live INTEGER NOT NULL,
                building INTEGER
            );
            INSERT INTO read_model_generations (id, live, building) VALUES (1, 1, NULL);
            -- The next offset to read, per generation and partition, written with
            -- the update it follows.
            CREATE TABLE read_model_positions (
                generation INTEGER NOT NULL,
                topic TEXT NOT NULL,
                partition INTEGER NOT NULL,
                nextOffset INTEGER NOT NULL,
                PRIMARY KEY (generation, topic, partition)
            ) WITHOUT ROWID;
            -- Events applied, per generation: a copy published twice counts once.
            CREATE TABLE read_model_events (
                generation INTEGER NOT NULL,
                eventId TEXT NOT NULL,
                PRIMARY KEY (generation, eventId)
            ) WITHOUT ROWID;
            """),
        Migration("read model v2: what became of each rebuild", sql: """
            -- outcome: NULL while it runs; 'switched', or 'mismatch' (dropped, with
            -- what differed in detail) once it has caught up.
            -- forced: switch even if it differs (an operator replacing a model
            -- they know is wrong); detail then says what differed.
            CREATE TABLE read_model_rebuilds (
                generation INTEGER PRIMARY KEY,
                startedAt INTEGER NOT NULL,
                forced INTEGER NOT NULL DEFAULT 0,
                finishedAt INTEGER,
                outcome TEXT,
                detail TEXT
            );
            """),
    ]

    /// `tables`: the model's own tables, each with a `generation` column; a
    /// switch deletes the old generation's rows from them.
    public init(
        name: String, db: any DatabaseWriter, consumer configuration: KafkaConsumerConfiguration, deadLetters: DeadLetterTopic,
        catalog: EventCatalog, tables: [String], logger: Logger, readAs: [String: Int] = [:], verify: Verify? = nil,
        committed: Committed? = nil, apply: @escaping Apply
    ) {
        self.committed = committed
        self.readAs = readAs
        self.name = name
        self.db = db
        self.catalog = catalog
        self.tables = tables
        self.apply = apply
        self.verify = verify
        self.logger = logger
        self.consumerConfiguration = configuration
        self.deadLetters = deadLetters
    }

    /// The generation queries should read.
    public static func liveGeneration(_ db: Database) throws -> Int {
        try Int.fetchOne(db, sql: "SELECT live FROM read_model_generations WHERE id = 1") ?? 1
    }

    /// The generation the consumers fill: the one being built, else the live one.
    static func targetGeneration(_ db: Database) throws -> Int {
        try Row.fetchOne(db, sql: "SELECT live, building FROM read_model_generations WHERE id = 1")
            .map { ($0["building"] as Int?) ?? $0["live"] } ?? 1
    }

    public struct Status: Sendable, Equatable {
        public var live: Int
        public var building: Int?
    }

    public func status() async throws -> Status {
        try await db.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT live, building FROM read_model_generations WHERE id = 1")
            return Status(live: row?["live"] ?? 1, building: row?["building"])
        }
    }

    /// Starts a rebuild from offset 0 (does nothing if one is under way).
    /// Answers at once; `status()` says when it has switched. `force`:
    /// switch even if `verify` finds a difference (the live model is known
    /// to be wrong, and the rebuild is how it is repaired).
    @discardableResult
    public func replay(force: Bool = false) async throws -> Status {
        let tables = self.tables
        let verify = self.verify
        let (status, started): (Status, Bool) = try await db.write { db in
            let row = try Row.fetchOne(db, sql: "SELECT live, building FROM read_model_generations WHERE id = 1")
            let live: Int = row?["live"] ?? 1
            // One under way already: asking again changes nothing.
            if let building: Int = row?["building"] { return (Status(live: live, building: building), false) }
            // A number never used before, even by a rebuild that was dropped:
            // the consumers notice a *change* of target generation, and one
            // that came back to an old number within their 250 ms would go
            // unnoticed (they would stay at the end of the log, and the
            // rebuild would never catch up).
            let used = try Int.fetchOne(db, sql: "SELECT max(generation) FROM read_model_rebuilds") ?? 0
            let next = max(live, used) + 1
            try db.execute(sql: "UPDATE read_model_generations SET building = ? WHERE id = 1", arguments: [next])
            try db.execute(sql: "INSERT INTO read_model_rebuilds (generation, startedAt, forced) VALUES (?, ?, ?)",
                           arguments: [next, Date().databaseMilliseconds, force])
            // Nothing read yet: nothing to rebuild, the new generation is live at once.
            if let now = try Self.switchIfCaughtUp(db, tables: tables, verify: verify) { return (Status(live: now, building: nil), true) }
            return (Status(live: live, building: next), true)
        }
        guard started else { return status }
        if let building = status.building {
            logger.notice("read model \(name): replay from the beginning into generation \(building)")
        } else {
            logger.notice("read model \(name): nothing read yet, so nothing to rebuild; generation \(status.live) is live")
        }
        // The watcher of every instance, this one's too, notices within a
        // quarter of a second and moves its partitions back (a seek).
        return status
    }

    public func run() async throws {
        var configuration = consumerConfiguration
        let db = self.db
        let name = self.name
        let logger = self.logger
        // The generation the consumer fills now; the watcher below moves it
        // when a replay starts or ends (here or in another instance).
        let running = Mutex(0)
        /// The positions of the generation being filled, read from the
        /// database on the consumer's own thread (a rebalance callback, or a
        /// reposition). Partitions it has not read yet start at 0.
        let positions: StreamConsumer.Positions = { partitions in
            let generation = running.withLock { $0 }
            let stored: [KafkaTopicPartition: Int64] = (try? db.read { db in
                var found: [KafkaTopicPartition: Int64] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT topic, partition, nextOffset FROM read_model_positions WHERE generation = ?", arguments: [generation]) {
                    found[KafkaTopicPartition(topic: row["topic"], partition: row["partition"])] = row["nextOffset"]
                }
                return found
            }) ?? [:]
            return Dictionary(uniqueKeysWithValues: partitions.map { ($0, stored[$0] ?? 0) })
        }
        configuration.startPosition = .stored(positions)
        let stream = StreamConsumer(
            name: configuration.groupID,
            configuration: { [configuration] in
                let target = try await db.read { db in try Self.targetGeneration(db) }
                running.withLock { $0 = target }
                return configuration
            },
            deadLetters: deadLetters, handOver: nil, positions: positions, logger: logger,
            handler: { [self] record in try await self.handle(record, generation: running.withLock { $0 }) })
        self.stream.withLock { $0 = stream }
        let watcher = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                guard let target = try? await db.read({ db in try Self.targetGeneration(db) }) else { continue }
                let changed = running.withLock { running in
                    defer { running = target }
                    return running != target
                }
                if changed {
                    logger.notice("read model \(name): filling generation \(target); reading its partitions from its own positions")
                    stream.reposition()
                }
            }
        }
        defer { watcher.cancel() }
        try await stream.run()
    }

    /// One record, in one transaction: skipped if this generation has it
    /// already, else applied with its new position; then, during a replay,
    /// the switch if the rebuild has caught up.
    func handle(_ record: KafkaConsumerMessage, generation: Int) async throws {
        let envelope = try EventRecords.envelope(of: record)
        let event = try catalog.read(envelope, as: catalog.name(ofType: envelope.type).flatMap { readAs[$0] })
        let name = self.name
        let tables = self.tables
        let apply = self.apply
        let verify = self.verify
        let (switched, applied): (Int?, Bool) = try await db.write { db in
            // The generation moved on (a replay started, or switched, in
            // another process): this consumer is about to be repositioned.
            guard try Self.targetGeneration(db) == generation else { return (nil, false) }
            let next = try Int64.fetchOne(db, cached: "SELECT nextOffset FROM read_model_positions WHERE generation = ? AND topic = ? AND partition = ?",
                                          [generation, record.topic, Int(record.partition)]) ?? 0
            guard record.offset >= next else { return (nil, false) }
            var applied = false
            if try db.run(cached: "INSERT OR IGNORE INTO read_model_events (generation, eventId) VALUES (?, ?)", [generation, event.id]) == 1 {
                try apply(event, generation, db)
                applied = true
            }
            try db.run(cached: """
                INSERT INTO read_model_positions (generation, topic, partition, nextOffset) VALUES (?, ?, ?, ?)
                ON CONFLICT (generation, topic, partition) DO UPDATE SET nextOffset = excluded.nextOffset
                """, [generation, record.topic, Int(record.partition), record.offset + 1])
            return (try Self.switchIfCaughtUp(db, tables: tables, verify: verify), applied)
        }
        if applied { committed?(event) }
        if let switched { logger.notice("read model \(name): the rebuild caught up; generation \(switched) is live") }
    }

    /// During a replay: has the new generation reached, in every partition,
    /// the position the live one had? Then it becomes live, and the old one's
    /// rows go. Returns the new live generation when it switched.
    static func switchIfCaughtUp(_ db: Database, tables: [String], verify: Verify? = nil) throws -> Int? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT live, building FROM read_model_generations WHERE id = 1")),
              let building: Int = row["building"] else { return nil }
        let live: Int = row["live"]
        let behind = try Int.fetchOne(db, cached: """
            SELECT count(*) FROM read_model_positions l
            WHERE l.generation = ? AND NOT EXISTS (
                SELECT 1 FROM read_model_positions b
                WHERE b.generation = ? AND b.topic = l.topic AND b.partition = l.partition AND b.nextOffset >= l.nextOffset)
            """, [live, building]) ?? 0
        guard behind == 0 else { return nil }
        let now = Date().databaseMilliseconds
        let forced = try Bool.fetchOne(db, sql: "SELECT forced FROM read_model_rebuilds WHERE generation = ?", arguments: [building]) ?? false
        let mismatch = try verify?(db, live, building)
        if let mismatch, !forced {
            // Never switched to silently: the rebuild is dropped, the live
            // generation keeps serving, and the rebuild's row says why.
            try db.execute(sql: "UPDATE read_model_generations SET building = NULL WHERE id = 1")
            for table in tables + ["read_model_positions", "read_model_events"] {
                try db.execute(sql: "DELETE FROM \(table) WHERE generation = ?", arguments: [building])
            }
            try db.execute(sql: "UPDATE read_model_rebuilds SET finishedAt = ?, outcome = 'mismatch', detail = ? WHERE generation = ?",
                           arguments: [now, mismatch, building])
            return nil
        }
        try db.execute(sql: "UPDATE read_model_rebuilds SET finishedAt = ?, outcome = 'switched', detail = ? WHERE generation = ?",
                       arguments: [now, mismatch.map { "switched although it differed, as asked (force): \($0)" }, building])
        try db.execute(sql: "UPDATE read_model_generations SET live = ?, building = NULL WHERE id = 1", arguments: [building])
        for table in tables + ["read_model_positions", "read_model_events"] {
            try db.execute(sql: "DELETE FROM \(table) WHERE generation < ?", arguments: [building])
        }
        return building
    }
}

extension ReadModel {
    /// A digest of one generation's rows of a table, every column but
    /// `generation`, in `orderBy`'s order: two generations built from the
    /// same events to the same position have the same digest.
    public static func digest(_ db: Database, table: String, generation: Int, orderBy: String) throws -> (rows: Int, sha256: String) {
        var hash = SHA256()
        var rows = 0
        let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM \(table) WHERE generation = ? ORDER BY \(orderBy)", arguments: [generation])
        while let row = try cursor.next() {
            rows += 1
            for (column, value) in row where column != "generation" {
                hash.update(data: Data("\(column)=\(value.description)\u{1F}".utf8))
            }
            hash.update(data: Data([0x1E]))
        }
        return (rows, hash.finalize().map { String(format: "%02x", $0) }.joined())
    }

    /// Compares two generations table by table: nil when every table has
    /// the same rows, else which tables differ and how many rows each has.
    public static func compare(_ db: Database, tables: [(name: String, orderBy: String)], live: Int, rebuilt: Int) throws -> String? {
        var differences: [String] = []
        for table in tables {
            let a = try digest(db, table: table.name, generation: live, orderBy: table.orderBy)
            let b = try digest(db, table: table.name, generation: rebuilt, orderBy: table.orderBy)
            if a.sha256 != b.sha256 {
                differences.append("\(table.name): live generation \(live) has \(a.rows) rows (sha256 \(a.sha256.prefix(12))), rebuilt generation \(rebuilt) has \(b.rows) (sha256 \(b.sha256.prefix(12)))")
            }
        }
        return differences.isEmpty ? nil : differences.joined(separator: "; ")
    }
}
