import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a connection's thread owns. It is created, used and freed on that
/// thread only, which is why it can hold the non-Sendable `HiredisContext`.
struct ConnectionState {
    /// The live hiredis handle; nil before connecting and after a failure.
    var context: HiredisContext?
    /// Why the connection stopped working, repeated to every later call.
    var failure: RedisError?
}

/// One OS thread that runs one connection's blocking calls, in order.
///
/// Why not just call hiredis from an async function? Swift's cooperative pool
/// has one thread per core (two here). A blocking read parks that thread, and
/// two BZPOPMINs waiting on Redis would stall every task in the process. So
/// each connection gets a thread of its own that may block as long as it
/// likes, and async callers wait on a continuation instead, which costs no
/// thread at all.
///
/// Why not a `DispatchQueue`? A serial queue would do the same job, but its
/// work runs on Dispatch's shared worker threads; a thread we own makes the
/// "this thread may block" rule visible, and lets us set a per-thread signal
/// mask (see `run()`).
///
/// It is `@unchecked Sendable` because its mutable state (the job queue and
/// the shutdown flag) is guarded by `condition`, which the compiler can't see.
final class ConnectionThread: @unchecked Sendable {
    typealias Job = @Sendable (inout ConnectionState) -> Void

    private let condition = NSCondition()
    private var jobs: [Job] = []        // guarded by `condition`
    private var isShuttingDown = false  // guarded by `condition`

    init(name: String) {
        // The thread keeps `self` alive until `shutdown()` lets its loop end.
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Queues `job` to run on the thread. Returns false once shut down.
    @discardableResult
    func submit(_ job: @escaping Job) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !isShuttingDown else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Lets the jobs already queued finish, then ends the thread; the state
    /// (and so the hiredis handle) is freed on the thread as it exits.
    func shutdown() {
        condition.lock()
        isShuttingDown = true
        condition.signal()
        condition.unlock()
    }

    /// Runs `body` on the thread and suspends the caller until it is done.
    /// The caller's task holds no thread while it waits.
    ///
    /// Cancelling the waiting task does not interrupt `body`: a blocking
    /// read can't be stopped halfway without losing the reply, and the
    /// socket timeout bounds the wait anyway.
    func run<T: Sendable>(
        closedError: RedisError,
        _ body: @escaping @Sendable (inout ConnectionState) throws(RedisError) -> T
    ) async throws(RedisError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, RedisError>, Never>) in
            let accepted = submit { state in
                continuation.resume(returning: Result { () throws(RedisError) -> T in try body(&state) })
            }
            if !accepted {
                continuation.resume(returning: .failure(closedError))
            }
        }
        return try result.get()
    }

    private func run() {
        Self.blockSIGPIPE()
        var state = ConnectionState()
        while true {
            condition.lock()
            while jobs.isEmpty && !isShuttingDown {
                condition.wait()
            }
            if jobs.isEmpty {
                // Shutting down and nothing left to do.
                condition.unlock()
                break
            }
            // Take everything queued at once: one lock round per batch, not
            // per job, when many tasks share the connection.
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch {
                job(&state)
            }
        }
        state.context = nil  // redisFree, on the thread that used the handle
    }

    /// hiredis 0.14 writes with write(2), not send(2) with MSG_NOSIGNAL. If
    /// Redis goes away mid-write, the kernel raises SIGPIPE, whose default
    /// action kills the whole process. The usual fix, ignoring SIGPIPE
    /// process-wide, changes behavior for code that isn't ours. Blocking it on
    /// this thread only is enough: the signal from write(2) is sent to the
    /// thread that wrote, stays pending (harmlessly) while blocked, and the
    /// write fails with EPIPE, which hiredis reports as an I/O error.
    private static func blockSIGPIPE() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }
}
