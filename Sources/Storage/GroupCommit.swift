import GRDB
import Instrumentation
import Synchronization

/// Group commit: the transactions of many concurrent requests share one
/// SQLite commit.
///
/// SQLite has one writer. With `db.write`, every request's transaction is a
/// commit of its own, and a commit is the expensive part of a short
/// transaction: every page it changed is written to the WAL (with a
/// checksum), and every thousand such pages the WAL is copied back into the
/// database file and synced. Fifty customers ordering at once touch the same
/// few pages (the right edge of each table, the stock rows), so most of that
/// writing is the same page again and again.
///
/// `GroupCommit.write` queues the transaction instead. The writer takes
/// everything queued, runs each piece in a savepoint of one transaction
/// (one piece that throws is rolled back alone, as its own transaction
/// would have been), commits once, and only then answers each caller: no
/// one is told "done" before the commit is written, so a process killed at
/// any point loses nothing that was answered (`SQLiteStore` says what
/// survives what). Nothing waits on purpose: a
/// request that arrives while the writer is idle is committed at once, and
/// under load the batch is whatever queued during the previous commit.
/// Databases with a write-ahead log do the same (PostgreSQL, MySQL's binary
/// log group commit).
public final class GroupCommit: Sendable {
    /// The database, held by this group commit (`init`), or only borrowed
    /// (`shared`): a caller of `write` holds the database for as long as
    /// its write is queued, so a borrowed one cannot go while there is work.
    private let owned: (any DatabaseWriter)?
    private weak let borrowed: (any DatabaseWriter)?
    private var pool: any DatabaseWriter {
        guard let pool = owned ?? borrowed else { preconditionFailure("a group commit outlived its database with writes queued") }
        return pool
    }
    private let queue = Mutex(Queue())

    private struct Queue {
        var jobs: [Job] = []
        /// Whether a drain is running on the writer: the first caller to
        /// find none starts one, the rest only queue.
        var draining = false
        var totals = Totals()
    }

    /// How well the writes were grouped: `writes / commits` is the average
    /// batch.
    public struct Totals: Sendable, Equatable {
        public var commits = 0
        public var writes = 0
        public init(commits: Int = 0, writes: Int = 0) { self.commits = commits; self.writes = writes }
    }

    public var totals: Totals { queue.withLock { $0.totals } }

    /// Writes waiting for the writer.
    public var queued: Int { queue.withLock { $0.jobs.count } }

    /// One caller's transaction: `run` applies it inside the batch's
    /// transaction, `finish` answers the caller once the batch's fate is
    /// known (`rolledBack` is nil when the batch was committed).
    private struct Job: Sendable {
        let run: @Sendable (Database) -> Void
        let finish: @Sendable (_ rolledBack: (any Error)?) -> Void
    }

    /// `grouped: false` gives every write a commit of its own (plain
    /// `DatabasePool.write`), to measure what grouping buys:
    /// `GROUP_COMMIT=off scripts/bench 1`.
    private let grouped: Bool

    public init(_ pool: any DatabaseWriter, grouped: Bool = true) {
        self.owned = pool
        self.borrowed = nil
        self.grouped = grouped
    }

    private init(borrowing pool: any DatabaseWriter) {
        self.owned = nil
        self.borrowed = pool
        self.grouped = true
    }

    /// The group commit every part of a process shares for this database:
    /// a consumer's inbox transactions (`Inbox.once`), the outbox relay's
    /// deletes and a service's own writes all queue for the same commits.
    /// Two group commits on one database would each commit on their own,
    /// and the writer would do twice the commits for the same work.
    ///
    /// The registry does not keep a database alive: an entry whose database
    /// has gone is replaced (tests open and drop many).
    public static func shared(_ db: any DatabaseWriter) -> GroupCommit {
        let key = ObjectIdentifier(db)
        return registry.withLock { entries in
            if let found = entries[key], found.borrowed === db { return found }
            entries = entries.filter { $0.value.borrowed != nil }
            let made = GroupCommit(borrowing: db)
            entries[key] = made
            return made
        }
    }

    private static let registry = Mutex<[ObjectIdentifier: GroupCommit]>([:])

    /// Runs `updates` in a transaction shared with whatever else is queued,
    /// and answers after the commit. Same contract as `DatabasePool.write`:
    /// if `updates` throws, none of its changes are kept, and the error is
    /// rethrown.
    public func write<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        // A batch runs on the writer's queue, outside every caller's task,
        // where the callers' task-local values are not set: each job takes
        // its caller's trace along, so that a message written to the outbox
        // (and a line logged) inside it belongs to the request or message
        // that caused it.
        let trace = ServiceContext.current
        let updates: @Sendable (Database) throws -> T = { db in
            try ServiceContext.$current.withValue(trace) { try updates(db) }
        }
        guard grouped else {
            let value = try await pool.write(updates)
            queue.withLock { queue in
                queue.totals.commits += 1
                queue.totals.writes += 1
            }
            return value
        }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            // Written by `run` and read by `finish`, both on the writer's
            // queue, one after the other.
            let outcome = Outcome<T>()
            let job = Job(
                run: { db in
                    do {
                        outcome.result = .success(try Self.inSavepoint(db) { try updates(db) })
                    } catch {
                        outcome.result = .failure(error)
                    }
                },
                finish: { rolledBack in
                    switch (outcome.result, rolledBack) {
                    case (.failure(let error)?, _):
                        // Its own error, whatever became of the batch.
                        continuation.resume(throwing: error)
                    case (.success(let value)?, nil):
                        continuation.resume(returning: value)
                    case (_, let error?):
                        // Kept by nobody: the batch was rolled back, or
                        // never began (then this job never ran).
                        continuation.resume(throwing: error)
                    case (nil, nil):
                        continuation.resume(throwing: DatabaseError(resultCode: .SQLITE_MISUSE, message: "a group-commit job finished without running"))
                    }
                })
            let startDrain = queue.withLock { queue in
                queue.jobs.append(job)
                defer { queue.draining = true }
                return !queue.draining
            }
            if startDrain {
                pool.asyncWriteWithoutTransaction { [self] db in drain(db) }
            }
        }
    }

    /// What `db.inSavepoint` does, with statements prepared once: a job's
    /// savepoint costs two statements, and preparing them anew each time
    /// was a visible share of the writer's time.
    private static func inSavepoint<T>(_ db: Database, _ updates: () throws -> T) throws -> T {
        try db.run(cached: "SAVEPOINT job")
        do {
            let value = try updates()
            try db.run(cached: "RELEASE SAVEPOINT job")
            return value
        } catch {
            // Unless SQLite already rolled back the whole transaction
            // (`commit` finds out), undo this job's writes alone.
            if db.isInsideTransaction {
                do {
                    try db.run(cached: "ROLLBACK TRANSACTION TO SAVEPOINT job")
                    try db.run(cached: "RELEASE SAVEPOINT job")
                } catch {
                    // This job cannot be undone alone: undo the whole batch
                    // rather than commit half a job. `commit` tells every
                    // job of the batch.
                    try? db.rollback()
                }
            }
            throw error
        }
    }

    /// On the writer: commit what is queued, then come back for more.
    private func drain(_ db: Database) {
        let batch = queue.withLock { queue in
            let batch = queue.jobs
            queue.jobs = []
            if batch.isEmpty { queue.draining = false }
            return batch
        }
        if batch.isEmpty { return }
        commit(batch, in: db)
        // The next batch waits at the back of the writer's line, not at its
        // head: under steady load there is always a next batch, and looping
        // here would starve every other write of this database (a sign-up,
        // a new product) for as long as the load lasts.
        pool.asyncWriteWithoutTransaction { [self] db in drain(db) }
    }

    private func commit(_ batch: [Job], in db: Database) {
        var next = batch[...]
        while !next.isEmpty {
            var applied: [Job] = []
            do {
                try db.beginTransaction(.immediate)
            } catch {
                for job in next { job.finish(error) }
                return
            }
            while let job = next.popFirst() {
                job.run(db)
                applied.append(job)
                // Some errors (a full disk, an I/O error) make SQLite roll
                // back the whole transaction, not just the savepoint: what
                // the jobs before this one wrote is gone too, so none of
                // them may be told it was kept. The rest get a transaction
                // of their own.
                if !db.isInsideTransaction { break }
            }
            guard db.isInsideTransaction else {
                let lost = DatabaseError(resultCode: .SQLITE_ABORT, message: "the transaction was rolled back by SQLite")
                for job in applied { job.finish(lost) }
                continue
            }
            do {
                try db.commit()
                queue.withLock { queue in
                    queue.totals.commits += 1
                    queue.totals.writes += applied.count
                }
                for job in applied { job.finish(nil) }
            } catch {
                try? db.rollback()
                for job in applied { job.finish(error) }
            }
        }
    }
}

/// A result handed from the writer's `run` to its `finish`.
private final class Outcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
