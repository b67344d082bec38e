import Dispatch
import Foundation
import GRDB
import Instrumentation
import Synchronization
import Storage
import TestSupport
import Testing

/// Group commit against a real SQLite file: writes queued together share a
/// commit, each keeps its own result, and one that fails is undone alone.
@Suite("Group commit")
struct GroupCommitTests {
    struct Refused: Error, Equatable { let job: Int }

    static func openPool() throws -> DatabasePool {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("group-commit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("t") { db in
            try db.execute(sql: "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE); INSERT INTO t (v) VALUES ('taken')")
        }
        return try SQLiteStore.openPool(at: dir.appendingPathComponent("t.sqlite"), migrator: migrator)
    }

    @Test func aWriteAloneIsCommittedAtOnce() async throws {
        let pool = try Self.openPool()
        let writer = GroupCommit(pool)
        let id = try await writer.write { db in
            try db.execute(sql: "INSERT INTO t (v) VALUES ('alone')")
            return db.lastInsertedRowID
        }
        #expect(try await pool.read { db in try String.fetchOne(db, sql: "SELECT v FROM t WHERE id = ?", arguments: [id]) } == "alone")
        #expect(writer.totals == .init(commits: 1, writes: 1))
    }

    /// A task-local value a test sets: the trace is one, in the shop.
    enum Caller: ServiceContextKey { typealias Value = Int }

    /// A batch runs on the writer's queue, outside its callers' tasks: each
    /// queued write must still see its own caller's context (the shop keeps
    /// the trace there, and a message written to the outbox reads it).
    @Test func eachQueuedWriteSeesItsCallersContext() async throws {
        let pool = try Self.openPool()
        let writer = GroupCommit(pool)
        let gate = DispatchSemaphore(value: 0)
        pool.asyncWriteWithoutTransaction { _ in gate.wait() }

        let callers = 20
        let seen = Task {
            await withTaskGroup(of: (Int, Int?).self) { group in
                for caller in 0..<callers {
                    group.addTask {
                        var context = ServiceContext.topLevel
                        context[Caller.self] = caller
                        let read = await ServiceContext.$current.withValue(context) {
                            try? await writer.write { _ in ServiceContext.current?[Caller.self] ?? -1 }
                        }
                        return (caller, read)
                    }
                }
                return await group.reduce(into: [Int: Int?]()) { $0[$1.0] = $1.1 }
            }
        }
        _ = try? await Poll.until("all \(callers) writes are queued", within: .seconds(10), every: .milliseconds(5)) {
            writer.queued >= callers ? true : nil
        }
        gate.signal()
        let read = await seen.value
        #expect(read.count == callers)
        for caller in 0..<callers { #expect(read[caller] == caller, "write \(caller) saw \(String(describing: read[caller]))") }
        #expect(writer.totals.commits < callers, "the writes were grouped: \(writer.totals)")
    }

    @Test func queuedWritesShareOneCommitAndAFailureIsUndoneAlone() async throws {
        let pool = try Self.openPool()
        let writer = GroupCommit(pool)

        // Hold the writer, so that everything below queues up behind it.
        let gate = DispatchSemaphore(value: 0)
        pool.asyncWriteWithoutTransaction { _ in gate.wait() }

        let jobs = 50
        let results = Task {
            await withTaskGroup(of: (Int, Result<String, any Error>).self) { group in
                for job in 0..<jobs {
                    group.addTask {
                        do {
                            return (job, .success(try await writer.write { db in
                                try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: ["job-\(job)"])
                                switch job % 10 {
                                case 3: try db.execute(sql: "INSERT INTO t (v) VALUES ('taken')")  // a constraint fails
                                case 7: throw Refused(job: job)                                       // the code refuses
                                default: break
                                }
                                return "job-\(job)"
                            }))
                        } catch {
                            return (job, .failure(error))
                        }
                    }
                }
                return await group.reduce(into: [Int: Result<String, any Error>]()) { $0[$1.0] = $1.1 }
            }
        }
        // `try?`: the expectation below reports a shortfall, and the gate
        // must open either way.
        _ = try? await Poll.until("all \(jobs) writes are queued", within: .seconds(10), every: .milliseconds(5)) {
            writer.queued >= jobs ? true : nil
        }
        #expect(writer.queued == jobs)
        gate.signal()

        let outcome = await results.value
        for job in 0..<jobs {
            switch (job % 10, outcome[job]!) {
            case (3, .failure(let error)):
                #expect((error as? DatabaseError)?.extendedResultCode == .SQLITE_CONSTRAINT_UNIQUE)
            case (7, .failure(let error)):
                #expect(error as? Refused == Refused(job: job))
            case (3, _), (7, _):
                Issue.record("job \(job) should have failed")
            case (_, .success(let value)):
                #expect(value == "job-\(job)")
            case (_, .failure(let error)):
                Issue.record("job \(job) failed: \(error)")
            }
        }
        // One commit for all fifty; the ten that failed left nothing, not
        // even the row each wrote before failing.
        #expect(writer.totals == .init(commits: 1, writes: jobs))
        let kept = try await pool.read { db in try Set(String.fetchAll(db, sql: "SELECT v FROM t")) }
        let expected = Set((0..<jobs).filter { $0 % 10 != 3 && $0 % 10 != 7 }.map { "job-\($0)" }).union(["taken"])
        #expect(kept == expected)
    }

    /// Shared between the test and the closures it hands to the writer.
    final class Shared: Sendable {
        let order = Mutex<[String]>([])
        let second = Mutex<Task<Void, any Error>?>(nil)
        func record(_ step: String) { order.withLock { $0.append(step) } }
    }

    @Test func anotherWriteOfTheDatabaseIsNotStarvedByTheNextBatch() async throws {
        // Batch 1 is committing while batch 2 is already queued; a plain
        // write queued on the database before batch 2 existed must run
        // before it, or steady load would keep every other writer waiting.
        let pool = try Self.openPool()
        let writer = GroupCommit(pool)
        let shared = Shared()
        let gate = DispatchSemaphore(value: 0)
        pool.asyncWriteWithoutTransaction { _ in gate.wait() }

        let first = Task {
            try await writer.write { _ in
                shared.record("batch 1")
                // Queue batch 2 while batch 1 is still in the writer.
                let next = Task { try await writer.write { _ in shared.record("batch 2") } }
                shared.second.withLock { $0 = next }
                // This closure runs on GRDB's writer queue, inside the
                // batch, and must not return before batch 2 is queued; it
                // cannot await, so it polls with usleep. That blocks GRDB's
                // own dispatch thread, not one of Swift's cooperative pool.
                let deadline = ContinuousClock.now + .seconds(10)
                while writer.queued == 0, ContinuousClock.now < deadline { usleep(1_000) }
            }
        }
        _ = try? await Poll.until("batch 2 is queued", within: .seconds(10), every: .milliseconds(2)) {
            writer.queued > 0 ? true : nil
        }
        // Queued now, synchronously: behind the gate and batch 1's drain.
        let (plainDone, done) = AsyncStream<Void>.makeStream()
        pool.asyncWriteWithoutTransaction { _ in
            shared.record("plain write")
            done.finish()
        }
        gate.signal()
        try await first.value
        for await _ in plainDone {}
        try await shared.second.withLock { $0 }!.value
        #expect(shared.order.withLock { $0 } == ["batch 1", "plain write", "batch 2"])
    }

    @Test func ungroupedEveryWriteCommitsAlone() async throws {
        // The switch that lets a learner measure the difference: the same
        // writes, one commit each.
        let pool = try Self.openPool()
        let writer = GroupCommit(pool, grouped: false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for job in 0..<50 {
                group.addTask { try await writer.write { db in try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: ["u\(job)"]) } }
            }
            try await group.waitForAll()
        }
        #expect(writer.totals == .init(commits: 50, writes: 50))
        await #expect(throws: DatabaseError.self) {
            try await writer.write { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('taken')") }
        }
        #expect(try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t") } == 51)
    }

    @Test func aBatchThatCannotBeginFailsItsWritesAndTheNextOneWorks() async throws {
        // Another process holds SQLite's write lock, and this pool does not
        // wait for it (no busy timeout): the batch cannot begin. Every
        // write in it gets the reason, none hangs, and the writer goes on
        // once the lock is free.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("group-commit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("t.sqlite").path
        let pool = try DatabasePool(path: path)
        try await pool.write { db in try db.execute(sql: "CREATE TABLE t (v TEXT NOT NULL)") }
        let other = try DatabaseQueue(path: path)
        let writer = GroupCommit(pool)

        // The other connection holds the lock on its own GRDB queue, where
        // blocking on a semaphore is harmless. (It used to block in a
        // Task.detached while the test waited on a semaphore: two blocked
        // threads, which on a two-core machine is all of Swift's
        // cooperative pool, stalling every other test in the process.)
        let release = DispatchSemaphore(value: 0)
        let (holding, nowHolding) = AsyncStream<Result<Void, any Error>>.makeStream()
        let (released, nowReleased) = AsyncStream<Result<Void, any Error>>.makeStream()
        other.asyncWriteWithoutTransaction { db in
            do {
                try db.execute(sql: "BEGIN IMMEDIATE")
                nowHolding.yield(.success(()))
                nowHolding.finish()
                release.wait()
                try db.execute(sql: "ROLLBACK")
                nowReleased.yield(.success(()))
            } catch {
                // Once finished, a stream ignores what it is given: the
                // error goes to whichever side is still waiting.
                nowHolding.yield(.failure(error))
                nowReleased.yield(.failure(error))
            }
            nowHolding.finish()
            nowReleased.finish()
        }
        for await outcome in holding { try outcome.get() }
        let refused = await #expect(throws: DatabaseError.self) {
            try await writer.write { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('blocked')") }
        }
        #expect(refused?.resultCode == .SQLITE_BUSY)
        release.signal()
        for await outcome in released { try outcome.get() }
        try await writer.write { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('after')") }
        #expect(try await pool.read { db in try String.fetchAll(db, sql: "SELECT v FROM t") } == ["after"])
    }

    @Test func whenTheWholeTransactionIsLostNoWriteOfItIsToldItWasKept() async throws {
        // SQLite rolls back a whole transaction on some errors (a full disk,
        // an I/O error); a job ending the transaction itself has the same
        // effect. The writes before it in the batch are gone and must say
        // so; the one after gets a transaction of its own.
        let pool = try Self.openPool()
        let writer = GroupCommit(pool)
        let gate = DispatchSemaphore(value: 0)
        pool.asyncWriteWithoutTransaction { _ in gate.wait() }

        func enqueue(_ n: Int, _ body: @escaping @Sendable (Database) throws -> Void) async throws -> Task<Void, any Error> {
            let task = Task { try await writer.write { db in try body(db) } }
            _ = try? await Poll.until("\(n) writes are queued", within: .seconds(10), every: .milliseconds(2)) {
                writer.queued >= n ? true : nil
            }
            return task
        }
        let before = try await enqueue(1) { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('before')") }
        let ender = try await enqueue(2) { db in
            try db.execute(sql: "INSERT INTO t (v) VALUES ('ender')")
            try db.execute(sql: "ROLLBACK")
        }
        let after = try await enqueue(3) { db in try db.execute(sql: "INSERT INTO t (v) VALUES ('after')") }
        gate.signal()

        let lost = await #expect(throws: DatabaseError.self) { try await before.value }
        #expect(lost?.resultCode == .SQLITE_ABORT)
        await #expect(throws: DatabaseError.self) { try await ender.value }
        try await after.value
        #expect(try await pool.read { db in try Set(String.fetchAll(db, sql: "SELECT v FROM t")) } == ["taken", "after"])
    }

    @Test func writesKeepComingWhileTheWriterIsBusy() async throws {
        // Many writers at once, no gate: every write is committed exactly
        // once, whatever batches they fell into.
        let pool = try Self.openPool()
        let writer = GroupCommit(pool)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for job in 0..<500 {
                group.addTask {
                    _ = try await writer.write { db in try db.execute(sql: "INSERT INTO t (v) VALUES (?)", arguments: ["w\(job)"]) }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM t WHERE v LIKE 'w%'") } == 500)
        let totals = writer.totals
        #expect(totals.writes == 500)
        #expect(totals.commits >= 1 && totals.commits <= 500)
    }
}
