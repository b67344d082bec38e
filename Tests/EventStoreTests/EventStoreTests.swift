import Foundation
import GRDB
import Storage
import Testing

@testable import EventStore

/// A small aggregate to test the mechanism with: an account that can be
/// opened, paid into, drawn from (never below zero) and closed.
enum Account: Aggregate {
    struct State: Codable, Sendable, Equatable {
        var open = false
        var closed = false
        var balanceCents = 0
    }

    enum Event: Sendable, Equatable {
        case opened
        case deposited(Int)
        case withdrawn(Int)
        case closed
    }

    enum Command: Sendable {
        case open, deposit(Int), withdraw(Int), close
    }

    enum Rule: Error, Equatable {
        case notOpen, alreadyOpen, insufficientFunds, notEmpty
    }

    static let initial = State()
    static let foldVersion = 1

    static func evolve(_ state: State, _ event: Event) -> State {
        var state = state
        switch event {
        case .opened: state.open = true
        case .deposited(let cents): state.balanceCents += cents
        case .withdrawn(let cents): state.balanceCents -= cents
        case .closed: state.closed = true
        }
        return state
    }

    static func decide(_ state: State, _ command: Command) throws -> [Event] {
        switch command {
        case .open:
            guard !state.open else { throw Rule.alreadyOpen }
            return [.opened]
        case .deposit(let cents):
            guard state.open, !state.closed else { throw Rule.notOpen }
            return [.deposited(cents)]
        case .withdraw(let cents):
            guard state.open, !state.closed else { throw Rule.notOpen }
            guard state.balanceCents >= cents else { throw Rule.insufficientFunds }
            return [.withdrawn(cents)]
        case .close:
            guard state.open, !state.closed else { throw Rule.notOpen }
            guard state.balanceCents == 0 else { throw Rule.notEmpty }
            return [.closed]
        }
    }

    /// Version 2 of Deposited and Withdrawn name their field
    /// `amountCents`; version 1 said `amount` (see `upcaster`).
    struct Amount: Codable { var amountCents: Int }

    static func encode(_ event: Event) throws -> NewEvent {
        switch event {
        case .opened: NewEvent(type: "Opened", schemaVersion: 1, data: Data("{}".utf8))
        case .deposited(let cents): NewEvent(type: "Deposited", schemaVersion: 2, data: try JSONEncoder().encode(Amount(amountCents: cents)))
        case .withdrawn(let cents): NewEvent(type: "Withdrawn", schemaVersion: 2, data: try JSONEncoder().encode(Amount(amountCents: cents)))
        case .closed: NewEvent(type: "Closed", schemaVersion: 1, data: Data("{}".utf8))
        }
    }

    static func decode(_ event: RecordedEvent) throws -> Event {
        switch (event.type, event.schemaVersion) {
        case ("Opened", 1): return .opened
        case ("Deposited", 2): return .deposited(try JSONDecoder().decode(Amount.self, from: event.data).amountCents)
        case ("Withdrawn", 2): return .withdrawn(try JSONDecoder().decode(Amount.self, from: event.data).amountCents)
        case ("Closed", 1): return .closed
        default: throw Unknown(type: event.type, version: event.schemaVersion)
        }
    }

    struct Unknown: Error { var type: String; var version: Int }

    /// v1 → v2: `{"amount": n}` becomes `{"amountCents": n}`.
    static let upcaster: EventStore.Upcaster = { type, version, data in
        guard ["Deposited", "Withdrawn"].contains(type), version == 1 else { return (version, data) }
        struct V1: Codable { var amount: Int }
        let old = try JSONDecoder().decode(V1.self, from: data)
        return (2, try JSONEncoder().encode(Amount(amountCents: old.amount)))
    }
}

/// The same account with a fold that changed: its snapshots must not be
/// read by `Account`'s, nor the reverse.
enum AccountV2Fold: Aggregate {
    typealias State = Account.State
    typealias Event = Account.Event
    typealias Command = Account.Command
    static let initial = Account.initial
    static let foldVersion = 2
    static func evolve(_ state: State, _ event: Event) -> State { Account.evolve(state, event) }
    static func decide(_ state: State, _ command: Command) throws -> [Event] { try Account.decide(state, command) }
    static func encode(_ event: Event) throws -> NewEvent { try Account.encode(event) }
    static func decode(_ event: RecordedEvent) throws -> Event { try Account.decode(event) }
}

func temporaryStore(grouped: Bool = true) throws -> EventStore {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("event-store-\(UUID().uuidString).sqlite")
    let pool = try SQLiteStore.openPool(at: url, migrations: EventStore.migrations)
    return EventStore(pool, grouped: grouped, upcaster: Account.upcaster)
}

func event(_ type: String = "Noted", _ text: String = "{}") -> NewEvent {
    NewEvent(type: type, schemaVersion: 1, data: Data(text.utf8))
}

@Suite("The aggregate's rules, without a database")
struct DecideTests {
    @Test("decide answers events for what the rules allow and throws for what they forbid")
    func rules() throws {
        let state = Account.fold([.opened, .deposited(500), .withdrawn(200)])
        #expect(state == Account.State(open: true, closed: false, balanceCents: 300))
        #expect(try Account.decide(state, .withdraw(300)) == [.withdrawn(300)])
        #expect(throws: Account.Rule.insufficientFunds) { try Account.decide(state, .withdraw(301)) }
        #expect(throws: Account.Rule.notEmpty) { try Account.decide(state, .close) }
        #expect(throws: Account.Rule.notOpen) { try Account.decide(Account.initial, .deposit(1)) }
        #expect(throws: Account.Rule.alreadyOpen) { try Account.decide(state, .open) }
    }
}

@Suite("The event store")
struct EventStoreTests {
    @Test("a stream's versions run 1, 2, 3 with no gaps; positions grow across streams")
    func versionsAndPositions() async throws {
        let store = try temporaryStore()
        let a1 = try await store.append(to: "a", expectedVersion: .noStream, events: [event(), event()])
        let b1 = try await store.append(to: "b", expectedVersion: .noStream, events: [event()])
        let a2 = try await store.append(to: "a", expectedVersion: .exactly(2), events: [event()])
        #expect(a1.version == 2 && b1.version == 1 && a2.version == 3)
        #expect(a1.firstPosition == 1 && a1.lastPosition == 2 && b1.lastPosition == 3 && a2.lastPosition == 4)
        let a = try await store.read(stream: "a")
        #expect(a.map(\.version) == [1, 2, 3])
        #expect(a.map(\.position) == [1, 2, 4])
        #expect(try await store.lastPosition() == 4)
    }

    @Test("an append at a version the stream has left fails with a typed conflict and appends nothing")
    func conflict() async throws {
        let store = try temporaryStore()
        try await store.append(to: "a", expectedVersion: .noStream, events: [event()])
        await #expect(throws: ConcurrencyConflict(stream: "a", expected: .noStream, actual: 1)) {
            try await store.append(to: "a", expectedVersion: .noStream, events: [event(), event()])
        }
        await #expect(throws: ConcurrencyConflict(stream: "a", expected: .exactly(3), actual: 1)) {
            try await store.append(to: "a", expectedVersion: .exactly(3), events: [event()])
        }
        #expect(try await store.read(stream: "a").count == 1)
        #expect(try await store.lastPosition() == 1)
    }

    @Test("of 40 writers appending at the same version, exactly one wins, grouped or not", arguments: [true, false])
    func racingWriters(grouped: Bool) async throws {
        let store = try temporaryStore(grouped: grouped)
        try await store.append(to: "a", expectedVersion: .noStream, events: [event()])
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<40 {
                group.addTask {
                    do {
                        try await store.append(to: "a", expectedVersion: .exactly(1), events: [event("Noted", "{\"writer\":\(i)}"), event()])
                        return true
                    } catch is ConcurrencyConflict {
                        return false
                    } catch {
                        Issue.record("unexpected \(error)")
                        return false
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        #expect(try await store.read(stream: "a").map(\.version) == [1, 2, 3])
    }

    @Test("concurrent appends share commits, and each is kept or rolled back alone")
    func groupCommit() async throws {
        let store = try temporaryStore()
        try await store.append(to: "taken", expectedVersion: .noStream, events: [event()])
        let conflicts = await withTaskGroup(of: Int.self) { group in
            for i in 0..<300 {
                group.addTask {
                    // Every tenth writer expects a stream that does not exist.
                    let stream = i % 10 == 0 ? "taken" : "s\(i)"
                    do {
                        try await store.append(to: stream, expectedVersion: .noStream, events: [event()])
                        return 0
                    } catch is ConcurrencyConflict {
                        return 1
                    } catch {
                        Issue.record("unexpected \(error)")
                        return 0
                    }
                }
            }
            return await group.reduce(0, +)
        }
        #expect(conflicts == 30)
        let all = try await store.read(after: 0, limit: 1_000)
        #expect(all.count == 271)
        #expect(Set(all.map(\.stream)).count == 271)
        let totals = store.commitTotals
        #expect(totals.writes == 301)
        // Grouping happened: fewer commits than writes. (On two cores a
        // burst of 300 queues far faster than one writer commits.)
        #expect(totals.commits < totals.writes)
    }

    @Test("reading everything in batches from a position gives every event once, in order")
    func readAllInBatches() async throws {
        let store = try temporaryStore()
        for i in 0..<50 {
            try await store.append(to: "s\(i % 7)", expectedVersion: .any, events: [event("Noted", "{\"i\":\(i)}")])
        }
        var seen: [RecordedEvent] = []
        var position: Int64 = 0
        while true {
            let batch = try await store.read(after: position, limit: 8)
            guard let last = batch.last else { break }
            seen += batch
            position = last.position
        }
        #expect(seen.map(\.position) == Array(1...50))
        #expect(seen.map { String(decoding: $0.data, as: UTF8.self) } == (0..<50).map { "{\"i\":\($0)}" })
        for stream in Set(seen.map(\.stream)) {
            #expect(seen.filter { $0.stream == stream }.map(\.version) == Array(1...seen.filter { $0.stream == stream }.count))
        }
    }

    @Test("metadata and time are kept; a stream read until a moment stops there")
    func metadataAndTime() async throws {
        let store = try temporaryStore()
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let meta = EventMetadata(correlationId: "ord_1", causationId: "req_1")
        try await store.append(to: "a", expectedVersion: .noStream, events: [
            NewEvent(type: "A", schemaVersion: 1, data: Data("{}".utf8), metadata: meta, time: t0),
            NewEvent(type: "B", schemaVersion: 1, data: Data("{}".utf8), metadata: meta, time: t0.addingTimeInterval(10)),
        ])
        let events = try await store.read(stream: "a")
        #expect(events.map(\.metadata) == [meta, meta])
        #expect(events.map(\.time) == [t0, t0.addingTimeInterval(10)])
        #expect(try await store.read(stream: "a", until: t0.addingTimeInterval(9.999)).map(\.type) == ["A"])
        #expect(try await store.read(stream: "a", through: 1).map(\.type) == ["A"])
    }

    @Test("an event stored at an older schema version is upcast when read, and folds as the new one")
    func upcasting() async throws {
        let store = try temporaryStore()
        let accounts = AggregateStore<Account>(store)
        _ = try await accounts.handle("acc", .open)
        // Written as an older version of the code wrote it.
        try await store.append(to: "acc", expectedVersion: .exactly(1), events: [
            NewEvent(type: "Deposited", schemaVersion: 1, data: Data(#"{"amount":700}"#.utf8)),
        ])
        _ = try await accounts.handle("acc", .withdraw(200))
        let read = try await store.read(stream: "acc")
        #expect(read.map(\.schemaVersion) == [1, 2, 2])
        #expect(try JSONDecoder().decode(Account.Amount.self, from: read[1].data).amountCents == 700)
        #expect(try await accounts.load("acc").state.balanceCents == 500)
        // The stored row itself is unchanged.
        let stored = try await store.db.read { db in try Int.fetchOne(db, sql: "SELECT schemaVersion FROM events WHERE version = 2") }
        #expect(stored == 1)
    }
}

@Suite("Aggregates on the store")
struct AggregateStoreTests {
    @Test("concurrent commands on one aggregate: conflicts are decided again on fresh state, the rules hold, nothing is lost")
    func concurrentCommands() async throws {
        let store = try temporaryStore()
        let accounts = AggregateStore<Account>(store, snapshotEvery: 0, maxAttempts: 100)
        _ = try await accounts.handle("acc", .open)
        _ = try await accounts.handle("acc", .deposit(1_000))
        // 30 withdrawals of 50 race for 1,000: exactly 20 can be honoured.
        let results = await withTaskGroup(of: Result<Int, any Error>.self) { group in
            for _ in 0..<30 {
                group.addTask {
                    do { return .success(try await accounts.handle("acc", .withdraw(50)).attempts) } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: [Result<Int, any Error>]()) { $0.append($1) }
        }
        let honoured = results.compactMap { try? $0.get() }
        let refused = results.compactMap { result -> Account.Rule? in
            if case .failure(let error) = result { return error as? Account.Rule }
            return nil
        }
        #expect(honoured.count == 20)
        #expect(refused == Array(repeating: .insufficientFunds, count: 10))
        // Some of them lost a race and were decided again.
        #expect(honoured.contains { $0 > 1 })
        let loaded = try await accounts.load("acc")
        #expect(loaded.state.balanceCents == 0)
        #expect(loaded.version == 22)
        #expect(try await store.read(stream: "acc").map(\.version) == Array(1...22))
    }

    @Test("a conflict that outlasts the attempts is thrown, not swallowed")
    func boundedRetries() async throws {
        let store = try temporaryStore()
        let accounts = AggregateStore<Account>(store, snapshotEvery: 0, maxAttempts: 1)
        _ = try await accounts.handle("acc", .open)
        let errors = await withTaskGroup(of: (any Error)?.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do { _ = try await accounts.handle("acc", .deposit(1)); return nil } catch { return error }
                }
            }
            return await group.reduce(into: [(any Error)?]()) { $0.append($1) }
        }
        let conflicts = errors.compactMap { $0 as? ConcurrencyConflict }.count
        let succeeded = errors.filter { $0 == nil }.count
        #expect(conflicts + succeeded == 20)
        #expect(conflicts > 0)
        #expect(try await accounts.load("acc").state.balanceCents == succeeded)
    }

    @Test("snapshots: a load reads only the events after the newest one; another fold's snapshot is ignored")
    func snapshots() async throws {
        let store = try temporaryStore()
        let accounts = AggregateStore<Account>(store, snapshotEvery: 10)
        _ = try await accounts.handle("acc", .open)
        for _ in 0..<24 { _ = try await accounts.handle("acc", .deposit(10)) }
        let loaded = try await accounts.load("acc")
        #expect(loaded.version == 25)
        #expect(loaded.state.balanceCents == 240)
        #expect(loaded.eventsRead == 5)  // the snapshot is at version 20

        // A snapshot that lies (as one taken by an older fold might) is
        // believed by the fold that wrote it: that is why a changed fold
        // must change its version.
        try await store.write { db in
            try EventStore.saveSnapshot(of: "acc", Snapshot(version: 20, state: try JSONEncoder().encode(Account.State(open: true, balanceCents: 999_999))), foldVersion: 1, in: db)
        }
        #expect(try await accounts.load("acc").state.balanceCents == 999_999 + 50)
        let newFold = AggregateStore<AccountV2Fold>(store, snapshotEvery: 10)
        let refolded = try await newFold.load("acc")
        #expect(refolded.state.balanceCents == 240)
        #expect(refolded.eventsRead == 25)
        // Its next snapshot replaces the old fold's.
        for _ in 0..<5 { _ = try await newFold.handle("acc", .deposit(10)) }
        #expect(try await newFold.load("acc").eventsRead == 0)
        #expect(try await store.db.read { db in try EventStore.snapshot(of: "acc", foldVersion: 1, in: db) } == nil)
    }

    @Test("time travel: the aggregate through a version or until a moment")
    func asOf() async throws {
        let store = try temporaryStore()
        let accounts = AggregateStore<Account>(store, snapshotEvery: 2)
        _ = try await accounts.handle("acc", .open)
        _ = try await accounts.handle("acc", .deposit(100))
        _ = try await accounts.handle("acc", .deposit(20))
        #expect(try await accounts.load("acc", through: 2).state.balanceCents == 100)
        #expect(try await accounts.load("acc", through: 0).version == 0)
        #expect(try await accounts.load("acc", until: Date(timeIntervalSince1970: 0)).version == 0)
        #expect(try await accounts.load("acc", until: Date()).state.balanceCents == 120)
    }

    @Test("what a command writes beside its events is kept with them or not at all")
    func alsoWrite() async throws {
        let store = try temporaryStore()
        try await store.db.write { db in try db.execute(sql: "CREATE TABLE requests (id TEXT PRIMARY KEY)") }
        let accounts = AggregateStore<Account>(store)
        _ = try await accounts.handle("acc", .open) { db, _ in try db.execute(sql: "INSERT INTO requests VALUES ('r1')") }
        // The second use of r1 fails on the primary key: its event goes too.
        await #expect(throws: DatabaseError.self) {
            _ = try await accounts.handle("acc", .deposit(5)) { db, _ in try db.execute(sql: "INSERT INTO requests VALUES ('r1')") }
        }
        #expect(try await accounts.load("acc").version == 1)
    }
}
