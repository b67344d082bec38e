// eventstore-bench: what stage 8's event store (Sources/EventStore) gets out
// of SQLite, next to plain SQLite through GRDB on the same machine in the
// same run.
//
//   swift run -c release eventstore-bench [--events N] [--streams N]
//       [--writers N] [--per-writer N] [--stream-events N] [--loads N]
//       [--read-events N] [--batch N] [--plain-batch N]
//
// Every figure starts from a fresh SQLite file in a temporary folder, opened
// as every service opens one (SQLiteStore.openPool: WAL, synchronous NORMAL),
// and every event's data is ~200 bytes of JSON. Three groups of figures:
//   plain    the reference: a table (id, data) with one INSERT per
//            transaction through GRDB's pool.write (async, then sync), and
//            --plain-batch rows in one transaction: rows/s
//   append   EventStore.append, one event per call, the expected version
//            checked every time: one stream and one writer (through the
//            group commit, then without it, then the same SQL in a blocking
//            pool.write); --streams streams
//            round-robin, one writer; --writers concurrent tasks, each on a
//            stream of its own, --per-writer events each, through the group
//            commit (with its average batch) and then with `grouped: false`:
//            events/s
//   load     a --stream-events stream loaded by AggregateStore --loads times,
//            snapshots off and on: the median load and how many events each
//            read
//   read     --read-events events (put in with many appends per transaction,
//            the fill is timed too) read back with read(after:limit:) in
//            batches of --batch, as a relay or a rebuild reads them; then
//            again decoding each event's JSON (what a rebuild's fold does);
//            and the same rows read with GRDB alone: events/s
//
// The figures are printed, not checked: the machine is shared and noisy, so
// say what else was running when you quote them.

import EventStore
import Foundation
import GRDB
import Storage

struct Options {
    var events = 50_000
    var streams = 10_000
    var writers = 64
    var perWriter = 200
    var streamEvents = 1_000
    var loads = 200
    var readEvents = 1_000_000
    var batch = 1_000
    var plainBatch = 200_000

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        func number(_ fallback: Int) -> Int { max(1, Int(iterator.next() ?? "") ?? fallback) }
        while let argument = iterator.next() {
            switch argument {
            case "--events": events = number(events)
            case "--streams": streams = number(streams)
            case "--writers": writers = number(writers)
            case "--per-writer": perWriter = number(perWriter)
            case "--stream-events": streamEvents = number(streamEvents)
            case "--loads": loads = number(loads)
            case "--read-events": readEvents = number(readEvents)
            case "--batch": batch = number(batch)
            case "--plain-batch": plainBatch = number(plainBatch)
            default:
                print("""
                    usage: eventstore-bench [--events N] [--streams N] [--writers N] [--per-writer N]
                                            [--stream-events N] [--loads N] [--read-events N] [--batch N] [--plain-batch N]
                    """)
                exit(argument == "-h" || argument == "--help" ? 0 : 1)
            }
        }
    }
}
let options = Options(CommandLine.arguments)

// MARK: The events

/// The data of every event here: a small domain event of a few fields, made
/// about 200 bytes long by its note, as a real one with ids and a timestamp
/// would be.
struct Added: Codable, Sendable {
    var amount: Int
    var orderId: String
    var sku: String
    var note: String

    static let note = "an item was added to the order; the note pads the JSON to about two hundred bytes, "
        + "the size of a small domain event with a few ids"

    /// The same JSON as JSONEncoder writes, made by hand: a million of them
    /// are needed for the read figures, and encoding is not what is measured.
    static func json(_ index: Int) -> String {
        #"{"amount":\#(1 + index % 9),"orderId":"ord_\#(100_000_000 + index)","sku":"SKU-\#(10_000 + index % 500)","note":"\#(note)"}"#
    }

    static func event(_ index: Int) -> NewEvent {
        NewEvent(type: "Added", schemaVersion: 1, data: Data(json(index).utf8))
    }
}

/// The smallest aggregate that folds real events: a counter whose events
/// carry an amount. Its fold decodes each event's JSON, as every aggregate's
/// does, so a load costs what a real one costs per event.
enum Counter: Aggregate {
    struct State: Codable, Sendable {
        var total = 0
        var count = 0
    }
    typealias Event = Added
    enum Command: Sendable { case add(Int) }

    static let initial = State()
    static let foldVersion = 1

    static func evolve(_ state: State, _ event: Added) -> State {
        State(total: state.total + event.amount, count: state.count + 1)
    }

    static func decide(_ state: State, _ command: Command) throws -> [Added] {
        switch command {
        case .add(let index):
            [Added(amount: 1 + index % 9, orderId: "ord_\(100_000_000 + index)", sku: "SKU-\(10_000 + index % 500)", note: Added.note)]
        }
    }

    static func encode(_ event: Added) throws -> NewEvent {
        NewEvent(type: "Added", schemaVersion: 1, data: try JSONEncoder().encode(event))
    }

    static func decode(_ event: RecordedEvent) throws -> Added {
        try JSONDecoder().decode(Added.self, from: event.data)
    }
}

// MARK: Measuring

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// 1234567 → "1,234,567", as the tables in docs/benchmarks.md write them.
func thousands(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (offset, digit) in digits.enumerated() {
        if offset > 0 && (digits.count - offset) % 3 == 0 { out += "," }
        out.append(digit)
    }
    return value < 0 ? "-" + out : out
}

/// A figure's wall time, and the CPU time the whole process (every thread:
/// the caller's tasks, GRDB's writer and readers) spent meanwhile. On a
/// shared machine the wall time is what a neighbour slows down; CPU per
/// event says what the work itself costs, and whether the wall time was
/// spent working or waiting for a thread to be woken.
struct Measured {
    var wall: Duration
    var cpu: Duration
}

func processCPU() -> Duration {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
}

func rate(_ count: Int, _ measured: Measured, _ unit: String) -> String {
    "\(thousands(Int((Double(count) / seconds(measured.wall)).rounded()))) \(unit)/s"
}

/// The rate and the CPU time per item: "4,799 events/s, 180 µs CPU each".
func rateAndCPU(_ count: Int, _ measured: Measured, _ unit: String) -> String {
    rate(count, measured, unit) + String(format: ", %.1f µs CPU each", seconds(measured.cpu) * 1e6 / Double(count))
}

/// One line of the table: what, the figure, what it is read against.
func row(_ what: String, _ figure: String, _ reference: String) {
    print("| \(what) | \(figure) | \(reference) |")
}

func timed(_ body: () async throws -> Void) async rethrows -> Measured {
    let start = ContinuousClock.now
    let cpu = processCPU()
    try await body()
    return Measured(wall: ContinuousClock.now - start, cpu: processCPU() - cpu)
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

/// Keeps a computed value alive, so the optimiser cannot drop the work that
/// made it.
@inline(never) func keep(_ value: Int) { if value == Int.min { print(value) } }

func milliseconds(_ duration: Duration) -> String { String(format: "%.2f ms", seconds(duration) * 1000) }

/// Every figure, in order. A nonisolated async function runs on Swift's
/// cooperative thread pool, as a service's request handlers do; top-level
/// code would run on the main thread, and every await would come back to it.
func measure(_ options: Options, in folder: URL) async throws {
    /// A fresh database for one figure: no figure reads another's pages,
    /// WAL or cache.
    func freshPool(_ name: String, _ migrations: [Migration] = EventStore.migrations) throws -> DatabasePool {
        try SQLiteStore.openPool(at: folder.appendingPathComponent("\(name).sqlite"), migrations: migrations)
    }

    let target = "target ≥ 20,000 events/s"
    print("eventstore-bench: \(Date()), load average \(loadAverage()), event data \(Added.json(0).utf8.count) bytes of JSON")
    print("")
    print("| what | figure | read against |")
    print("|---|---|---|")

    // MARK: plain SQLite, the reference

    let plainMigrations = [Migration("bench plain", sql: "CREATE TABLE plain (id INTEGER PRIMARY KEY, data TEXT NOT NULL)")]
    let texts = (0..<max(options.events, options.plainBatch)).map(Added.json)

    var plain = try freshPool("plain-async", plainMigrations)
    let plainAsync = try await timed {
        for index in 0..<options.events {
            let text = texts[index]
            _ = try await plain.write { db in try db.run(cached: "INSERT INTO plain (data) VALUES (?)", [text]) }
        }
    }
    let plainAsyncRate = rate(options.events, plainAsync, "rows")
    row("plain SQLite: one INSERT per transaction, `await pool.write`", rateAndCPU(options.events, plainAsync, "rows"),
        "infra.md: 31,000/s (synchronous NORMAL)")

    plain = try freshPool("plain-sync", plainMigrations)
    let plainSync = try await timed {
        for index in 0..<options.events {
            _ = try plain.write { db in try db.run(cached: "INSERT INTO plain (data) VALUES (?)", [texts[index]]) }
        }
    }
    row("plain SQLite: one INSERT per transaction, blocking `pool.write`", rateAndCPU(options.events, plainSync, "rows"),
        "the same without the hop to the writer's queue and back")

    plain = try freshPool("plain-batch", plainMigrations)
    let plainBatch = try await timed {
        try plain.write { db in
            for text in texts.prefix(options.plainBatch) { try db.run(cached: "INSERT INTO plain (data) VALUES (?)", [text]) }
        }
    }
    row("plain SQLite: \(thousands(options.plainBatch)) INSERTs in one transaction", rateAndCPU(options.plainBatch, plainBatch, "rows"),
        "about 500,000 rows/s on this machine")

    // MARK: appends

    let events = (0..<max(options.events, options.writers * options.perWriter)).map(Added.event)

    // (a) One stream, one writer: every append checks the version it
    // expects, as a command on one aggregate does. Then the same appends with
    // a commit of their own (`grouped: false`, a plain `pool.write` each): a
    // lone writer has no one to share a commit with, so the difference is
    // what the group commit's queue costs it.
    var store = EventStore(try freshPool("one-stream"))
    let oneStream = try await timed {
        for index in 0..<options.events {
            try await store.append(to: "counter-1", expectedVersion: .exactly(index), events: [events[index]])
        }
    }
    row("append: 1 stream, 1 writer, 1 event per append", rateAndCPU(options.events, oneStream, "events"), "\(target); plain: \(plainAsyncRate)")
    store = EventStore(try freshPool("one-stream-ungrouped"), grouped: false)
    let oneStreamUngrouped = try await timed {
        for index in 0..<options.events {
            try await store.append(to: "counter-1", expectedVersion: .exactly(index), events: [events[index]])
        }
    }
    row("the same, `grouped: false`", rateAndCPU(options.events, oneStreamUngrouped, "events"), "the append's SQL without the group commit's queue")
    // And the append's SQL alone, in a blocking `pool.write` from this
    // thread: no task waits for another thread, as in the blocking plain row.
    let blockingPool = try freshPool("one-stream-blocking")
    let oneStreamBlocking = try await timed {
        for index in 0..<options.events {
            _ = try blockingPool.write { db in
                try EventStore.append(to: "counter-1", expectedVersion: .exactly(index), events: [events[index]], in: db)
            }
        }
    }
    row("the same appends, blocking `pool.write` + `EventStore.append(…, in: db)`", rateAndCPU(options.events, oneStreamBlocking, "events"),
        "the append's SQL alone; plain blocking: \(rate(options.events, plainSync, "rows"))")

    // (b) Many streams, one writer, as a shop's many orders are: each
    // append lands somewhere else in the (stream, version) index instead of
    // at one end of it.
    store = EventStore(try freshPool("many-streams"))
    let streamNames = (0..<options.streams).map { "counter-\($0)" }
    let manyStreams = try await timed {
        for index in 0..<options.events {
            try await store.append(to: streamNames[index % options.streams], expectedVersion: .exactly(index / options.streams),
                                   events: [events[index]])
        }
    }
    row("append: \(thousands(options.streams)) streams round-robin, 1 writer", rateAndCPU(options.events, manyStreams, "events"), target)

    // (c) and (d): concurrent writers, each on a stream of its own (no
    // conflicts), first sharing commits, then each with a commit of its own.
    func concurrentAppends(grouped: Bool) async throws -> (Measured, GroupCommit.Totals) {
        let store = EventStore(try freshPool(grouped ? "grouped" : "ungrouped"), grouped: grouped)
        let perWriter = options.perWriter
        let measured = try await timed {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<options.writers {
                    let mine = Array(events[(writer * perWriter)..<((writer + 1) * perWriter)])
                    group.addTask {
                        for (version, event) in mine.enumerated() {
                            try await store.append(to: "writer-\(writer)", expectedVersion: .exactly(version), events: [event])
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        return (measured, store.commitTotals)
    }
    let concurrent = options.writers * options.perWriter
    let (groupedRun, groupedTotals) = try await concurrentAppends(grouped: true)
    let averageBatch = Double(groupedTotals.writes) / Double(max(groupedTotals.commits, 1))
    row("append: \(options.writers) writers × \(options.perWriter), group commit",
        rateAndCPU(concurrent, groupedRun, "events") + String(format: ", %.1f appends per commit", averageBatch), target)
    let (ungroupedRun, _) = try await concurrentAppends(grouped: false)
    row("append: \(options.writers) writers × \(options.perWriter), `grouped: false`",
        rateAndCPU(concurrent, ungroupedRun, "events") + ", 1 per commit", "what the group commit buys")

    // MARK: loading an aggregate

    // The stream is written by AggregateStore itself (snapshotEvery 100), so
    // it holds the snapshots a live one would: the newest at the last
    // multiple of 100. A second stream ends 99 events past its snapshot: the
    // most a load with snapshots ever reads.
    store = EventStore(try freshPool("aggregate"))
    let writer = AggregateStore<Counter>(store, snapshotEvery: 100)
    let worstCase = options.streamEvents + 99
    for index in 0..<max(options.streamEvents, worstCase) {
        if index < options.streamEvents { _ = try await writer.handle("counter-full", .add(index)) }
        if index < worstCase { _ = try await writer.handle("counter-worst", .add(index)) }
    }

    func medianLoad(_ stream: String, in store: EventStore, snapshotEvery: Int) async throws -> (Duration, Int) {
        let aggregates = AggregateStore<Counter>(store, snapshotEvery: snapshotEvery)
        var times: [Duration] = []
        var eventsRead = 0
        for _ in 0..<options.loads {
            let start = ContinuousClock.now
            let loaded = try await aggregates.load(stream)
            times.append(ContinuousClock.now - start)
            eventsRead = loaded.eventsRead
            keep(loaded.state.total)
        }
        return (times.sorted()[times.count / 2], eventsRead)
    }

    let (fullOff, fullOffRead) = try await medianLoad("counter-full", in: store, snapshotEvery: 0)
    row("load a \(thousands(options.streamEvents))-event stream, snapshots off (median of \(options.loads))",
        "\(milliseconds(fullOff)), \(thousands(fullOffRead)) events read",
        "\(thousands(Int(Double(fullOffRead) / seconds(fullOff)))) events/s folded")
    let (fullOn, fullOnRead) = try await medianLoad("counter-full", in: store, snapshotEvery: 100)
    row("the same, snapshots on (every 100; the newest at \(thousands(options.streamEvents / 100 * 100)))",
        "\(milliseconds(fullOn)), \(thousands(fullOnRead)) events read", "snapshots off: \(milliseconds(fullOff))")
    let (worstOn, worstOnRead) = try await medianLoad("counter-worst", in: store, snapshotEvery: 100)
    row("a \(thousands(worstCase))-event stream, snapshots on (99 past the newest)",
        "\(milliseconds(worstOn)), \(thousands(worstOnRead)) events read", "the most a load with snapshots reads")

    // MARK: reading everything

    // The fill: many appends per transaction through store.write, streams of
    // 10 events, 10,000 events a transaction, so a million events take
    // seconds, not minutes. It is a figure too: the store's batch-insert rate.
    let pool = try freshPool("read")
    store = EventStore(pool)
    let perTransaction = 10_000
    let fill = try await timed {
        for first in stride(from: 0, to: options.readEvents, by: perTransaction) {
            let last = min(first + perTransaction, options.readEvents)
            try await store.write { db in
                for streamStart in stride(from: first, to: last, by: 10) {
                    let batch = (streamStart..<min(streamStart + 10, last)).map(Added.event)
                    try EventStore.append(to: "order-\(streamStart / 10)", expectedVersion: .noStream, events: batch, in: db)
                }
            }
        }
    }
    row("fill: \(thousands(options.readEvents)) events, \(thousands(min(perTransaction, options.readEvents))) per transaction "
        + "(`store.write` + `EventStore.append`)",
        "\(rateAndCPU(options.readEvents, fill, "events")), \(String(format: "%.1f s", seconds(fill.wall)))",
        "plain batch: \(rate(options.plainBatch, plainBatch, "rows"))")

    /// Reads every event in batches, each from the last position of the one
    /// before, handing each batch to `use`.
    func readAll(_ store: EventStore, _ use: ([RecordedEvent]) throws -> Void) async throws -> Int {
        var after: Int64 = 0
        var count = 0
        while true {
            let batch = try await store.read(after: after, limit: options.batch)
            guard let last = batch.last else { return count }
            try use(batch)
            count += batch.count
            after = last.position
        }
    }

    var readCount = 0
    let readRun = try await timed { readCount = try await readAll(store) { batch in keep(batch.count) } }
    row("read everything, batches of \(thousands(options.batch)) (`read(after:limit:)`)", rateAndCPU(readCount, readRun, "events"),
        "target ≥ 200,000 events/s")

    let decoder = JSONDecoder()
    var decodedCount = 0
    let decodedRun = try await timed {
        decodedCount = try await readAll(store) { batch in
            var total = 0
            for event in batch { total += try decoder.decode(Added.self, from: event.data).amount }
            keep(total)
        }
    }
    row("the same, each event's JSON decoded (a rebuild's read)", rateAndCPU(decodedCount, decodedRun, "events"), "target ≥ 200,000 events/s")

    // The same rows and batches with GRDB alone, no RecordedEvent built, two
    // columns read by index: what the store's own decoding (every column
    // looked up by name, the text copied to Data, the upcaster, the Date)
    // adds to SQLite's part.
    var rawCount = 0
    let limit = options.batch
    let rawRun = try await timed {
        var after: Int64 = 0
        while true {
            let from = after
            let (count, last, bytes) = try await pool.read { db in
                let rows = try Row.fetchCursor(
                    db.cachedStatement(sql: "SELECT position, data FROM events WHERE position > ? ORDER BY position LIMIT ?"),
                    arguments: [from, limit])
                var count = 0, last: Int64 = 0, bytes = 0
                while let row = try rows.next() {
                    last = row[0]
                    bytes += (row[1] as String).utf8.count
                    count += 1
                }
                return (count, last, bytes)
            }
            if count == 0 { break }
            keep(bytes)
            rawCount += count
            after = last
        }
    }
    row("the same rows with GRDB alone (a cursor; position and data by index)", rateAndCPU(rawCount, rawRun, "rows"), "SQLite's part of the read")

    print("")
    print("load average at the end \(loadAverage())")
}

let folder = FileManager.default.temporaryDirectory.appendingPathComponent("eventstore-bench-\(UUID().uuidString.prefix(8).lowercased())")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: folder) }
try await measure(options, in: folder)
