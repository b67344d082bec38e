import Foundation

/// One OS thread that runs a C client's blocking calls, in order, for async
/// callers. The Redis and Kafka clients each give every connection (client)
/// one of these.
///
/// Why not call the C library from an async function? Swift's cooperative
/// pool has one thread per core (two on the workshop's machines). A blocking
/// read parks that thread: two consumers waiting on a broker would stall
/// every task in the process. So each connection gets a thread of its own
/// that may block as long as it likes, and async callers wait on a
/// continuation, which holds no thread at all. (A serial `DispatchQueue` would
/// do the same job on Dispatch's shared workers; a thread we own makes the
/// "this thread may block" rule visible and allows a per-thread signal mask.)
///
/// `State` is what the thread owns: created, used and freed on the thread
/// only, which is why it may hold a non-Sendable C handle.
///
/// Between jobs the thread may run `idle` (Kafka serves its callbacks there);
/// `idle` must return soon, and `wake` must make it return at once, so that a
/// newly queued job does not wait for it.
///
/// `@unchecked Sendable`: the job list and the flag are guarded by
/// `condition`, which the compiler cannot see.
public final class BlockingThread<State>: @unchecked Sendable {
    public typealias Job = @Sendable (inout State) -> Void

    private let condition = NSCondition()
    private var jobs: [Job] = []        // guarded by `condition`
    private var isShuttingDown = false  // guarded by `condition`
    private let idle: (@Sendable (inout State) -> Void)?
    private let wake: @Sendable () -> Void

    /// `prepare` runs first on the new thread (a signal mask, say), then
    /// `makeState` makes the state there.
    public init(
        name: String, makeState: @escaping @Sendable () -> State,
        idle: (@Sendable (inout State) -> Void)? = nil, wake: @escaping @Sendable () -> Void = {},
        prepare: @escaping @Sendable () -> Void = {}
    ) {
        self.idle = idle
        self.wake = wake
        // The thread keeps `self` alive until `shutdown()` lets its loop end.
        let thread = Thread { [self] in
            prepare()
            loop(state: makeState())
        }
        thread.name = name
        thread.start()
    }

    /// Queues `job`. Returns false once the thread is shutting down.
    @discardableResult
    public func submit(_ job: @escaping Job) -> Bool {
        condition.lock()
        guard !isShuttingDown else {
            condition.unlock()
            return false
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
        wake()
        return true
    }

    /// True while jobs wait: a long job may check this to step aside.
    public var hasPendingJobs: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !jobs.isEmpty
    }

    /// Lets the jobs already queued finish, then ends the thread; the state
    /// is freed on the thread as it exits.
    public func shutdown() {
        condition.lock()
        isShuttingDown = true
        condition.signal()
        condition.unlock()
        wake()
    }

    /// Runs `body` on the thread and suspends the caller until it is done.
    /// Cancelling the waiting task does not interrupt `body`: a blocking C
    /// call cannot be stopped halfway; each body bounds its own wait instead.
    public func run<T: Sendable, Failure: Error>(
        closedError: Failure,
        _ body: @escaping @Sendable (inout State) throws(Failure) -> T
    ) async throws(Failure) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, Failure>, Never>) in
            let accepted = submit { state in
                continuation.resume(returning: Result { () throws(Failure) -> T in try body(&state) })
            }
            if !accepted {
                continuation.resume(returning: .failure(closedError))
            }
        }
        return try result.get()
    }

    private func loop(state: State) {
        var state = state
        while true {
            condition.lock()
            if jobs.isEmpty && !isShuttingDown, let idle {
                condition.unlock()
                idle(&state)
                continue
            }
            while jobs.isEmpty && !isShuttingDown {
                condition.wait()
            }
            if jobs.isEmpty {
                // Shutting down, nothing left to do.
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
    }
}
