import Foundation
import GRDB
import Observability
import Storage

/// An append-only store of events in SQLite: the write side of stage 8.
///
/// Every event has a **global position** (the order in which the store
/// accepted it, across all streams) and a **version** within its stream
/// (an aggregate's id): 1, 2, 3, … with no gaps and no repeats. Nothing is
/// ever updated or deleted; what an aggregate is now is a fold of its
/// stream (`Aggregate`).
///
/// Appends are checked against the version the writer last saw
/// (`ExpectedVersion`): when another writer got there first, the append
/// fails with `ConcurrencyConflict` and changes nothing, and the writer
/// decides again on fresh state (`AggregateStore` does that for you). Two
/// writers never both succeed on the same version, so no decision is taken
/// on a state that was already out of date.
///
/// Positions are SQLite rowids: the next one is the largest plus one, and
/// since rows are never deleted, they only grow. SQLite has one writer at a
/// time, so a reader that sees position N committed has seen every position
/// below it: a relay or a projection reading "everything after my
/// checkpoint" never skips an event that commits late (a database with
/// concurrent writers needs more care here).
///
/// Appends go through a `GroupCommit`: concurrent appends share one commit,
/// each in a savepoint of its own, so a conflict rolls back its own append
/// and no other.
public final class EventStore: Sendable {
    /// The store's tables. A service that stores events adds these to its
    /// own migrations.
    public static let migrations = [
        Migration("event store v1", sql: """
            CREATE TABLE events (
                position INTEGER PRIMARY KEY,
                stream TEXT NOT NULL,
                version INTEGER NOT NULL,
                type TEXT NOT NULL,
                schemaVersion INTEGER NOT NULL,
                data TEXT NOT NULL,
                correlationId TEXT,
                causationId TEXT,
                requestId TEXT,
                time INTEGER NOT NULL,
                UNIQUE (stream, version)
            );
            CREATE INDEX events_by_time ON events(time);
            CREATE TABLE snapshots (
                stream TEXT PRIMARY KEY,
                version INTEGER NOT NULL,
                foldVersion INTEGER NOT NULL,
                state BLOB NOT NULL,
                time INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE checkpoints (
                name TEXT PRIMARY KEY,
                position INTEGER NOT NULL
            ) WITHOUT ROWID;
            """),
        // The trace the event was written in (W3C `traceparent`), which the
        // relay sends on with it, so that its consumers join the same trace.
        Migration("event store v2: traceparent", sql: """
            ALTER TABLE events ADD COLUMN traceparent TEXT
            """),
    ]

    public let db: any DatabaseWriter
    private let writer: GroupCommit
    private let upcaster: Upcaster

    /// Turns a stored event of an older schema version into the current
    /// one: given the type, the stored version and data, answers the
    /// version and data the code reads. Stored rows are never rewritten;
    /// the default changes nothing.
    public typealias Upcaster = @Sendable (_ type: String, _ schemaVersion: Int, _ data: Data) throws -> (schemaVersion: Int, data: Data)

    /// `grouped: false` commits every append on its own (to measure what
    /// the group commit buys).
    public init(_ db: any DatabaseWriter, grouped: Bool = true, upcaster: @escaping Upcaster = { _, version, data in (version, data) }) {
        self.db = db
        self.writer = GroupCommit(db, grouped: grouped)
        self.upcaster = upcaster
        StoreMetrics.announce()
    }

    /// How well appends were grouped into commits.
    public var commitTotals: GroupCommit.Totals { writer.totals }

    // MARK: Writing

    /// Appends `events` to `stream`, all or none, if the stream is still at
    /// `expectedVersion`; answers where they went.
    @discardableResult
    public func append(to stream: String, expectedVersion: ExpectedVersion, events: [NewEvent]) async throws -> Appended {
        try await write { db in try Self.append(to: stream, expectedVersion: expectedVersion, events: events, in: db) }
    }

    /// Runs `updates` in a transaction shared by concurrent writers (the
    /// group commit), for a caller that appends and writes something else
    /// with it (a snapshot, a checkpoint, an idempotency key): all of it is
    /// kept or none.
    public func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await writer.write(updates)
    }

    /// The append itself, inside the caller's transaction.
    @discardableResult
    public static func append(to stream: String, expectedVersion: ExpectedVersion, events: [NewEvent], in db: Database) throws -> Appended {
        let current = try version(of: stream, in: db)
        guard expectedVersion.allows(current) else {
            throw ConcurrencyConflict(stream: stream, expected: expectedVersion, actual: current)
        }
        var version = current
        var first: Int64?
        var last: Int64 = 0
        // A stream's times never go back: an event is stamped no earlier than
        // the one before it (a command decided at t that lost a race to an
        // append at t+1 is appended after it), so the events of a stream up
        // to a moment are always a prefix of it.
        var floor = current == 0 ? Int64.min
            : try Int64.fetchOne(db, cached: "SELECT time FROM events WHERE stream = ? AND version = ?", [stream, current]) ?? Int64.min
        for event in events {
            version += 1
            let time = max((event.time ?? Date()).databaseMilliseconds, floor)
            floor = time
            // The UNIQUE (stream, version) index is the last line of
            // defence: a writer that skipped the check above still cannot
            // write a version twice.
            try db.run(cached: """
                INSERT INTO events (stream, version, type, schemaVersion, data, correlationId, causationId, requestId, traceparent, time)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [stream, version, event.type, event.schemaVersion, String(decoding: event.data, as: UTF8.self),
                      event.metadata.correlationId, event.metadata.causationId, event.metadata.requestId,
                      event.metadata.traceparent, time])
            last = db.lastInsertedRowID
            if first == nil { first = last }
        }
        return Appended(stream: stream, version: version, firstPosition: first, lastPosition: first == nil ? nil : last)
    }

    /// A stream's version: the number of events in it (0 for none).
    public static func version(of stream: String, in db: Database) throws -> Int {
        try Int.fetchOne(db, cached: "SELECT MAX(version) FROM events WHERE stream = ?", [stream]) ?? 0
    }

    // MARK: Reading

    /// One stream's events from `version` on, oldest first; `through`
    /// stops at a version, `until` at a moment (inclusive): an aggregate
    /// as it was then (time travel).
    public func read(stream: String, from version: Int = 1, through last: Int? = nil, until time: Date? = nil) async throws -> [RecordedEvent] {
        try await db.read { db in try self.read(stream: stream, from: version, through: last, until: time, in: db) }
    }

    public func read(stream: String, from version: Int = 1, through last: Int? = nil, until time: Date? = nil, in db: Database) throws -> [RecordedEvent] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT * FROM events WHERE stream = ? AND version >= ? AND version <= ? AND time <= ?
            ORDER BY version
            """), arguments: [stream, version, last ?? Int.max, time?.databaseMilliseconds ?? Int64.max])
        return try rows.map(decode)
    }

    /// Every stream's events after `position`, in the order they were
    /// stored, at most `limit`: for the relay and for rebuilds, which read
    /// batch after batch, each from the last position of the one before.
    public func read(after position: Int64, limit: Int) async throws -> [RecordedEvent] {
        try await db.read { db in try self.read(after: position, limit: limit, in: db) }
    }

    public func read(after position: Int64, limit: Int, in db: Database) throws -> [RecordedEvent] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?"), arguments: [position, limit])
        return try rows.map(decode)
    }

    /// Everything stored up to `time` (inclusive), in order, batch by
    /// batch: a read model as it stood then is a fold of these. (A stream's
    /// times never go back, so per stream this is a prefix.)
    public func read(after position: Int64, until time: Date, limit: Int, in db: Database) throws -> [RecordedEvent] {
        let rows = try Row.fetchAll(db.cachedStatement(sql: "SELECT * FROM events WHERE position > ? AND time <= ? ORDER BY position LIMIT ?"),
                                    arguments: [position, time.databaseMilliseconds, limit])
        return try rows.map(decode)
    }

    /// The position of the newest event (0 for an empty store).
    public func lastPosition() async throws -> Int64 {
        try await db.read { db in try Self.lastPosition(in: db) }
    }

    public static func lastPosition(in db: Database) throws -> Int64 {
        try Int64.fetchOne(db, cached: "SELECT MAX(position) FROM events") ?? 0
    }

    private func decode(_ row: Row) throws -> RecordedEvent {
        let type: String = row["type"]
        // Stored as text (JSON a learner can query with sqlite3), read as bytes.
        let text: String = row["data"]
        let (schemaVersion, data) = try upcaster(type, row["schemaVersion"], Data(text.utf8))
        return RecordedEvent(
            position: row["position"], stream: row["stream"], version: row["version"], type: type,
            schemaVersion: schemaVersion, data: data,
            metadata: EventMetadata(
                correlationId: row["correlationId"], causationId: row["causationId"], requestId: row["requestId"],
                traceparent: row["traceparent"]),
            time: Date(databaseMilliseconds: row["time"]))
    }

    // MARK: Snapshots

    /// The newest snapshot of `stream` taken by a fold of `foldVersion`;
    /// one taken by another fold is ignored (the fold changed: what it
    /// stored may no longer be what the new fold would compute).
    public static func snapshot(of stream: String, foldVersion: Int, in db: Database) throws -> Snapshot? {
        guard let row = try Row.fetchOne(db.cachedStatement(sql: "SELECT version, state FROM snapshots WHERE stream = ? AND foldVersion = ?"), arguments: [stream, foldVersion]) else {
            return nil
        }
        return Snapshot(version: row["version"], state: row["state"])
    }

    /// Keeps one snapshot per stream: the newest.
    public static func saveSnapshot(of stream: String, _ snapshot: Snapshot, foldVersion: Int, in db: Database) throws {
        try db.run(cached: """
            INSERT INTO snapshots (stream, version, foldVersion, state, time) VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (stream) DO UPDATE SET version = excluded.version, foldVersion = excluded.foldVersion,
                state = excluded.state, time = excluded.time
            """, [stream, snapshot.version, foldVersion, snapshot.state, Date().databaseMilliseconds])
    }

    // MARK: Checkpoints

    /// How far a named reader of the store (the relay) has got; 0 before
    /// it has read anything. Stored in the same database as the events, so
    /// a reader that writes here in its own transaction moves on exactly
    /// once.
    public static func checkpoint(_ name: String, in db: Database) throws -> Int64 {
        try Int64.fetchOne(db, cached: "SELECT position FROM checkpoints WHERE name = ?", [name]) ?? 0
    }

    /// Moves a checkpoint forward (never back: a second reader that is
    /// behind cannot undo the first one's progress).
    public static func setCheckpoint(_ name: String, to position: Int64, in db: Database) throws {
        try db.run(cached: """
            INSERT INTO checkpoints (name, position) VALUES (?, ?)
            ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position)
            """, [name, position])
    }
}

/// What an append expects of its stream.
public enum ExpectedVersion: Sendable, Hashable, CustomStringConvertible {
    /// Append whatever the stream holds (no concurrency check).
    case any
    /// The stream must not exist yet: creating an aggregate.
    case noStream
    /// The stream must be at exactly this version: the one the writer
    /// loaded and decided on.
    case exactly(Int)

    func allows(_ current: Int) -> Bool {
        switch self {
        case .any: true
        case .noStream: current == 0
        case .exactly(let version): current == version
        }
    }

    public var description: String {
        switch self {
        case .any: "any version"
        case .noStream: "no stream"
        case .exactly(let version): "version \(version)"
        }
    }
}

/// The stream moved on since the writer read it; nothing was appended.
public struct ConcurrencyConflict: Error, Sendable, Hashable, CustomStringConvertible {
    public let stream: String
    public let expected: ExpectedVersion
    public let actual: Int

    public var description: String {
        "stream \(stream) is at version \(actual), the append expected \(expected)"
    }
}

/// An event to append: its type and schema version, its data (JSON), and
/// who caused it.
public struct NewEvent: Sendable, Hashable {
    public var type: String
    public var schemaVersion: Int
    public var data: Data
    public var metadata: EventMetadata
    /// When it happened; nil means now.
    public var time: Date?

    public init(type: String, schemaVersion: Int, data: Data, metadata: EventMetadata = EventMetadata(), time: Date? = nil) {
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
        self.metadata = metadata
        self.time = time
    }
}

/// Who caused an event: the story it belongs to (the correlation id, the
/// same for every event of one order), and the event it answers (the
/// causation id) or, for one caused by a request, the request's id.
public struct EventMetadata: Sendable, Hashable, Codable {
    public var correlationId: String?
    public var causationId: String?
    public var requestId: String?
    /// The trace it was written in: by default the trace of the code that
    /// makes the metadata. Stored, never shown in the API (it is not part of
    /// what happened, only of how it was processed).
    public var traceparent: String?

    public init(
        correlationId: String? = nil, causationId: String? = nil, requestId: String? = nil,
        traceparent: String? = Observability.currentTraceparent
    ) {
        self.correlationId = correlationId
        self.causationId = causationId
        self.requestId = requestId
        self.traceparent = traceparent
    }

    private enum CodingKeys: String, CodingKey { case correlationId, causationId, requestId }

    /// Two events with the same causes are the same whatever trace wrote them.
    public static func == (a: Self, b: Self) -> Bool {
        a.correlationId == b.correlationId && a.causationId == b.causationId && a.requestId == b.requestId
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(correlationId)
        hasher.combine(causationId)
        hasher.combine(requestId)
    }
}

/// An event as the store keeps it, upcast to the schema version the code
/// reads.
public struct RecordedEvent: Sendable, Hashable {
    public var position: Int64
    public var stream: String
    public var version: Int
    public var type: String
    public var schemaVersion: Int
    public var data: Data
    public var metadata: EventMetadata
    public var time: Date

    public init(position: Int64, stream: String, version: Int, type: String, schemaVersion: Int, data: Data, metadata: EventMetadata, time: Date) {
        self.position = position
        self.stream = stream
        self.version = version
        self.type = type
        self.schemaVersion = schemaVersion
        self.data = data
        self.metadata = metadata
        self.time = time
    }
}

/// Where an append went: the stream's new version, and the global positions
/// of its first and last event (nil when nothing was appended).
public struct Appended: Sendable, Hashable {
    public var stream: String
    public var version: Int
    public var firstPosition: Int64?
    public var lastPosition: Int64?
}

/// An aggregate's state after its first `version` events, encoded.
public struct Snapshot: Sendable, Hashable {
    public var version: Int
    public var state: Data

    public init(version: Int, state: Data) {
        self.version = version
        self.state = state
    }
}
