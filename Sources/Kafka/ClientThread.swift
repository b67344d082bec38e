import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One OS thread that runs a client's blocking librdkafka calls, in order.
///
/// Why not call librdkafka from an async function? Its poll, flush, commit
/// and close calls block for as long as their timeout says. Swift's
/// cooperative pool has one thread per core (two here): two consumers waiting
/// in `rd_kafka_consume_batch_queue` would stall every task in the process.
/// So each client has a thread of its own that may block as long as it
/// likes, and async callers wait on a continuation, which holds no thread.
///
/// Between jobs the thread runs `idle`, if there is one: the producer and the
/// admin client use it to call `rd_kafka_poll`, which is what serves delivery
/// reports and error callbacks. `idle` must return within about 100 ms, and
/// `wake` must make it return at once (`rd_kafka_yield`), so that a job
/// submitted while it waits does not wait for the timeout.
///
/// `@unchecked Sendable`: the job list and the flag are guarded by
/// `condition`, which the compiler cannot see.
final class ClientThread: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    private let condition = NSCondition()
    private var jobs: [Job] = []        // guarded by `condition`
    private var isShuttingDown = false  // guarded by `condition`
    private let idle: (@Sendable () -> Void)?
    private let wake: @Sendable () -> Void

    init(name: String, idle: (@Sendable () -> Void)? = nil, wake: @escaping @Sendable () -> Void = {}) {
        self.idle = idle
        self.wake = wake
        // The thread keeps `self` (and through `idle`, the client handle)
        // alive until `shutdown()` lets its loop end.
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Queues `job`. Returns false once the thread is shutting down.
    @discardableResult
    func submit(_ job: @escaping Job) -> Bool {
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

    /// True while jobs wait: a long poll job checks this to step aside.
    var hasPendingJobs: Bool {
        condition.lock()
        defer { condition.unlock() }
        return !jobs.isEmpty
    }

    /// Lets queued jobs finish, then ends the thread.
    func shutdown() {
        condition.lock()
        isShuttingDown = true
        condition.signal()
        condition.unlock()
        wake()
    }

    /// Runs `body` on the thread; the calling task is suspended, not blocked.
    /// Cancelling the caller does not interrupt `body` (a blocking C call
    /// cannot be stopped halfway); each body bounds its own wait instead.
    func run<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable () throws(KafkaError) -> T
    ) async throws(KafkaError) -> T {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, KafkaError>, Never>) in
            let accepted = submit {
                continuation.resume(returning: Result { () throws(KafkaError) -> T in try body() })
            }
            if !accepted {
                continuation.resume(returning: .failure(.closed(what)))
            }
        }
        return try result.get()
    }

    private func run() {
        while true {
            condition.lock()
            if jobs.isEmpty && !isShuttingDown {
                if let idle {
                    condition.unlock()
                    idle()
                    continue
                }
                while jobs.isEmpty && !isShuttingDown {
                    condition.wait()
                }
            }
            if jobs.isEmpty {
                // Shutting down, nothing left to do.
                condition.unlock()
                break
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch {
                job()
            }
        }
    }
}
