import Foundation
import GRDB

/// An event-sourced aggregate, as pure functions:
///
///     evolve(state, event) → state        what an event does to the state
///     decide(state, command) → [event]    what a command makes happen
///
/// The state is never stored as the truth; it is the fold of the stream's
/// events: `events.reduce(initial, evolve)`. `decide` reads the state and
/// answers events (or throws: the command breaks a rule); it changes
/// nothing and touches no database, so the rules are tested as plain
/// functions. `AggregateStore` does the rest: load, decide, append.
public protocol Aggregate: Sendable {
    associatedtype State: Codable & Sendable
    associatedtype Event: Sendable
    associatedtype Command: Sendable

    /// The state of a stream with no events.
    static var initial: State { get }

    /// The fold's version, stamped on every snapshot. Change it whenever
    /// `evolve` changes what it computes: snapshots taken by the old fold
    /// are then ignored, never trusted (and replaced when the stream next
    /// passes a multiple of `snapshotEvery`).
    static var foldVersion: Int { get }

    static func evolve(_ state: State, _ event: Event) -> State
    static func decide(_ state: State, _ command: Command) throws -> [Event]

    /// Between the aggregate's events and the store's rows: the type name,
    /// schema version, JSON data and time of each (a nil time is the
    /// append's). `AggregateStore` fills in the metadata.
    static func encode(_ event: Event) throws -> NewEvent
    static func decode(_ event: RecordedEvent) throws -> Event
}

extension Aggregate {
    /// The fold of `events` onto `state` (by default, the initial one).
    public static func fold(_ events: some Sequence<Event>, onto state: State = initial) -> State {
        events.reduce(state, evolve)
    }
}

/// An aggregate's state and the version it was folded to.
public struct Loaded<State: Sendable>: Sendable {
    public var state: State
    /// The number of events folded (0: the stream does not exist).
    public var version: Int
    /// How many events were read to get here (the rest came from a
    /// snapshot).
    public var eventsRead: Int
}

/// What a command did: the events it appended (none when it changed
/// nothing), the state after them, and where they went.
public struct Handled<A: Aggregate>: Sendable {
    public var events: [A.Event]
    /// The state the command was decided on, and the state after its events.
    public var previous: A.State
    public var state: A.State
    public var version: Int
    public var lastPosition: Int64?
    /// How many times the command was decided: 1, plus one for each
    /// conflict with another writer.
    public var attempts: Int
}

/// Runs commands on the aggregates of one type: load (from the newest
/// snapshot of the current fold, then the events after it), decide,
/// append at the version loaded; on a conflict, load again and decide
/// again on the fresh state, a bounded number of times.
public struct AggregateStore<A: Aggregate>: Sendable {
    public let store: EventStore
    /// A snapshot is written whenever a stream passes a multiple of this
    /// many events (0: never).
    public let snapshotEvery: Int
    /// How many times a command is decided before a conflict is given up
    /// and thrown.
    public let maxAttempts: Int

    public init(_ store: EventStore, snapshotEvery: Int = 100, maxAttempts: Int = 5) {
        precondition(maxAttempts >= 1, "a command is decided at least once")
        self.store = store
        self.snapshotEvery = snapshotEvery
        self.maxAttempts = maxAttempts
    }

    /// The aggregate as it is now.
    public func load(_ stream: String) async throws -> Loaded<A.State> {
        try await store.db.read { db in try self.load(stream, in: db) }
    }

    public func load(_ stream: String, in db: Database) throws -> Loaded<A.State> {
        var state = A.initial
        var version = 0
        if snapshotEvery > 0, let snapshot = try EventStore.snapshot(of: stream, foldVersion: A.foldVersion, in: db) {
            // A snapshot the current fold cannot read is as good as none.
            if let decoded = try? JSONDecoder().decode(A.State.self, from: snapshot.state) {
                state = decoded
                version = snapshot.version
            }
        }
        let events = try store.read(stream: stream, from: version + 1, in: db)
        state = A.fold(try events.map(A.decode), onto: state)
        return Loaded(state: state, version: events.last?.version ?? version, eventsRead: events.count)
    }

    /// The aggregate as it was after its `version`th event, or at `time`
    /// (after the last event of the stream's prefix stamped at or before
    /// it): a fold of the stream up to there (snapshots are not used: they
    /// only know the newest state).
    public func load(_ stream: String, through version: Int? = nil, until time: Date? = nil) async throws -> Loaded<A.State> {
        var events = try await store.read(stream: stream, through: version)
        if let time, let later = events.firstIndex(where: { $0.time > time }) { events.removeSubrange(later...) }
        return Loaded(state: A.fold(try events.map(A.decode)), version: events.last?.version ?? 0, eventsRead: events.count)
    }

    /// Decides `command` on the stream's current state and appends what it
    /// answers, retrying on fresh state when another writer appended first.
    /// `alsoWrite` runs in the append's transaction, for whatever must be
    /// kept with the events or not at all (an idempotency key, say).
    public func handle(
        _ stream: String, metadata: EventMetadata = EventMetadata(), _ command: A.Command,
        alsoWrite: (@Sendable (Database, Handled<A>) throws -> Void)? = nil
    ) async throws -> Handled<A> {
        var attempt = 1
        while true {
            let loaded = try await load(stream)
            let events = try A.decide(loaded.state, command)
            let state = A.fold(events, onto: loaded.state)
            let rows = try events.map { event in
                var row = try A.encode(event)
                row.metadata = metadata
                return row
            }
            let snapshotDue = snapshotEvery > 0 && (loaded.version + events.count) / snapshotEvery > loaded.version / snapshotEvery
            let snapshot = snapshotDue ? Snapshot(version: loaded.version + events.count, state: try JSONEncoder().encode(state)) : nil
            let expected: ExpectedVersion = loaded.version == 0 ? .noStream : .exactly(loaded.version)
            let attempts = attempt
            do {
                let handled = try await store.write { db in
                    var handled = Handled<A>(events: events, previous: loaded.state, state: state, version: loaded.version, lastPosition: nil, attempts: attempts)
                    if !rows.isEmpty {
                        let appended = try EventStore.append(to: stream, expectedVersion: expected, events: rows, in: db)
                        handled.version = appended.version
                        handled.lastPosition = appended.lastPosition
                        if let snapshot { try EventStore.saveSnapshot(of: stream, snapshot, foldVersion: A.foldVersion, in: db) }
                    } else if try EventStore.version(of: stream, in: db) != loaded.version {
                        // Nothing to append, but decided on a stale state:
                        // what it answers may be stale too. Decide again.
                        throw ConcurrencyConflict(stream: stream, expected: expected, actual: try EventStore.version(of: stream, in: db))
                    }
                    try alsoWrite?(db, handled)
                    return handled
                }
                if !events.isEmpty { StoreMetrics.appended(events.count) }
                return handled
            } catch let conflict as ConcurrencyConflict {
                StoreMetrics.conflict()
                guard attempt < maxAttempts else { throw conflict }
                attempt += 1
            }
        }
    }
}
