import Foundation
import Logging
import Observability
import Redis
import ServiceLifecycle
import Synchronization

/// Runs a queue's jobs, up to `concurrency` at once, as BullMQ's workers do,
/// so it can work side by side with them on one queue.
///
/// The life of a job here:
/// 1. Taking it (`JobScripts.takeNext`) moves it from `wait` to `active`
///    and sets its lock, `<id>:lock`, to this worker's token for
///    `lockDuration`. While the job runs, the lock is renewed every half
///    lock duration: the lock is the worker's "I am alive and on it".
/// 2. Finishing it checks the token, so a worker that lost its job to the
///    stalled-job check cannot finish it twice, and takes the next job in
///    the same script, saving a round trip per job.
/// 3. A worker that dies stops renewing. The stalled-job check, which one
///    worker of the queue runs every `stalledInterval`, finds the job in
///    `active` without a lock and puts it back in `wait`.
///
/// An idle worker blocks on BZPOPMIN of the queue's `marker` on a
/// connection of its own; adds and retries put a member there, so it wakes
/// at once, and the marker's score says when the next delayed job is due.
///
/// Each lane (one of the `concurrency` jobs at once) finishes its jobs on a
/// connection of its own, too. A connection runs one command at a time, so
/// lanes sharing one would wait for each other's round trips, and eight
/// lanes would run little faster than one (docs/benchmarks.md, the job
/// queue). A worker holds `concurrency` + 2 connections (the lanes', the
/// blocking one, and one for taking jobs, renewing locks and the stalled-job
/// check); each connects on first use.
public final class JobWorker: Service, Sendable {
    public typealias Process = @Sendable (Job) async throws -> String?

    let keys: QueueKeys
    let address: RedisAddress
    let configuration: RedisConfiguration
    let concurrency: Int
    let lockMilliseconds: Int
    let stalledInterval: Duration
    let maxStalledCount: Int
    let shutdownGracePeriod: Duration
    let logger: Logger
    let process: Process

    /// Half of the token: this worker's own id. Each job taken gets
    /// "<id>:<n>", so a lock names the worker and the attempt.
    let workerId = UUID().uuidString
    private let taken = Atomic<Int>(0)
    private let lanesStarted = Atomic<Int>(0)
    private let state = Mutex(State())
    /// How long an idle worker blocks at most: short enough that a shutdown
    /// is quick and a worker notices a server that went away.
    static let longestBlock: Duration = .seconds(1)

    struct State {
        var stopping = false
        /// Jobs running now, by id: their token, for renewal and hand-back.
        var held: [String: String] = [:]
        var lanes: [Int: Task<Void, Never>] = [:]
        /// The lanes' connections not in use now, by index.
        var freeLaneClients: [Int] = []
        var slotWaiter: CheckedContinuation<Void, Never>?
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    /// `process` gets each job and returns its return value as JSON text
    /// (nil: `null`); what it throws fails the attempt, with the error's
    /// description as the failed reason.
    public init(
        queue: String, address: RedisAddress, configuration: RedisConfiguration = .init(), prefix: String = "bull",
        concurrency: Int = 1, lockDuration: Duration = .seconds(30), stalledInterval: Duration = .seconds(30),
        maxStalledCount: Int = 1, shutdownGracePeriod: Duration = .seconds(30), logger: Logger,
        process: @escaping Process
    ) {
        keys = QueueKeys(prefix: prefix, queue: queue)
        self.address = address
        self.configuration = configuration
        self.concurrency = max(concurrency, 1)
        lockMilliseconds = max(milliseconds(lockDuration), 10)
        self.stalledInterval = stalledInterval
        self.maxStalledCount = maxStalledCount
        self.shutdownGracePeriod = shutdownGracePeriod
        var logger = logger
        logger[metadataKey: "queue"] = "\(queue)"
        self.logger = logger
        self.process = process
    }

    /// The typed form: the data decoded as `P`, the result encoded as JSON.
    public convenience init<P: Decodable & SendableMetatype, R: Encodable & SendableMetatype>(
        queue: String, address: RedisAddress, configuration: RedisConfiguration = .init(), prefix: String = "bull",
        concurrency: Int = 1, lockDuration: Duration = .seconds(30), stalledInterval: Duration = .seconds(30),
        maxStalledCount: Int = 1, shutdownGracePeriod: Duration = .seconds(30), logger: Logger,
        payload: P.Type, process: @escaping @Sendable (P, Job) async throws -> R
    ) {
        self.init(
            queue: queue, address: address, configuration: configuration, prefix: prefix, concurrency: concurrency,
            lockDuration: lockDuration, stalledInterval: stalledInterval, maxStalledCount: maxStalledCount,
            shutdownGracePeriod: shutdownGracePeriod, logger: logger
        ) { job in
            let result = try await process(try job.payload(as: P.self), job)
            return String(decoding: try JobOptions.encoder.encode(result), as: UTF8.self)
        }
    }

    // MARK: Running

    /// Takes and runs jobs until a graceful shutdown (or cancellation).
    /// Then it takes no more, lets the running ones finish, and after
    /// `shutdownGracePeriod` hands those still running back to `wait` for
    /// another worker.
    public func run() async throws {
        let client = RedisClient(address: address, configuration: configuration, logger: logger)
        let blocking = RedisClient(address: address, configuration: configuration, logger: logger)
        let laneClients = (0..<concurrency).map { _ in
            RedisClient(address: address, configuration: configuration, logger: logger)
        }
        state.withLock { $0.freeLaneClients = Array((0..<concurrency).reversed()) }
        let renewer = Task { await self.renewLocks(client) }
        let checker = Task { await self.checkStalledJobs(client) }
        logger.info("worker started", metadata: ["worker": "\(workerId)", "concurrency": "\(concurrency)"])

        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await self.dispatch(client, blocking, laneClients)
            } onGracefulShutdown: {
                self.beginStopping()
            }
        } onCancel: {
            self.beginStopping()
        }

        let graceTimer = Task {
            try? await Task.sleep(for: self.shutdownGracePeriod)
            if !Task.isCancelled { await self.handBackRunningJobs(client) }
        }
        await waitUntilIdle()
        graceTimer.cancel()
        renewer.cancel()
        checker.cancel()
        await client.close()
        await blocking.close()
        for laneClient in laneClients { await laneClient.close() }
        logger.info("worker stopped", metadata: ["worker": "\(workerId)"])
    }

    /// Stops taking jobs; wakes the dispatcher if it waits for a free slot.
    func beginStopping() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.stopping = true
            defer { state.slotWaiter = nil }
            return state.slotWaiter
        }
        waiter?.resume()
    }

    var isStopping: Bool { state.withLock { $0.stopping } }

    /// The loop that takes jobs while slots are free, and blocks on the
    /// marker when there are none to take.
    private func dispatch(_ client: RedisClient, _ blocking: RedisClient, _ laneClients: [RedisClient]) async {
        var failures = 0
        while !isStopping {
            await waitForFreeSlot()
            if isStopping { break }
            do {
                switch try await takeNext(client) {
                case .job(let job, let token):
                    startLane(job, token: token, clients: laneClients)
                case .rateLimited(let wait):
                    // The limiter's window is still full: wait for its TTL
                    // (in slices, to notice a shutdown) instead of asking again.
                    try await Task.sleep(for: min(.milliseconds(wait), Self.longestBlock))
                case .idle(let dueAt):
                    try await waitForMarker(blocking, dueAt: dueAt)
                }
                failures = 0
            } catch {
                failures += 1
                if failures == 1 || failures % 20 == 0 {
                    logger.warning("worker cannot reach Redis", metadata: ["error": "\(error)", "failures": "\(failures)"])
                }
                try? await Task.sleep(for: .milliseconds(min(100 * failures, 2_000)))
            }
        }
    }

    /// Blocks until a job may be ready: a member on the marker, or the next
    /// delayed job's due time, or `longestBlock`, whichever comes first.
    private func waitForMarker(_ blocking: RedisClient, dueAt: Int?) async throws {
        var timeout = Self.longestBlock
        if let dueAt {
            timeout = min(timeout, .milliseconds(max(dueAt - Date().milliseconds, 1)))
        }
        _ = try await blocking.blockingPopMin([keys.marker], timeout: timeout)
    }

    enum Take {
        case job(Job, token: String)
        case rateLimited(milliseconds: Int)
        case idle(dueAt: Int?)
    }

    func nextToken() -> String {
        "\(workerId):\(taken.add(1, ordering: .relaxed).newValue)"
    }

    private func takeNext(_ client: RedisClient) async throws -> Take {
        let token = nextToken()
        let reply = try await client.evaluate(
            JobScripts.takeNext, keys: keys.all, arguments: [keys.base, Date().milliseconds, token, lockMilliseconds])
        return try take(from: reply, token: token)
    }

    /// Reads `takeNextJob`'s answer: {fields, id, rate-limit wait, due time}.
    func take(from reply: RESPValue, token: String) throws -> Take {
        let parts = try reply.elements
        guard parts.count == 4 else { throw JobError.unexpected("takeNext answered \(reply)") }
        if case .array(let fields) = parts[0] {
            return .job(try Job(id: try parts[1].string, queue: keys.queue, fields: fields), token: token)
        }
        let wait = try parts[2].int
        if wait > 0 { return .rateLimited(milliseconds: wait) }
        let dueAt = try parts[3].int
        return .idle(dueAt: dueAt > 0 ? dueAt : nil)
    }

    // MARK: Lanes

    private func waitForFreeSlot() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.stopping || state.lanes.count < concurrency { return true }
                state.slotWaiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }

    private func waitUntilIdle() async {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { state -> Bool in
                if state.lanes.isEmpty { return true }
                state.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    /// A lane runs a job, then the next one its finish script handed over,
    /// until there is none (or the worker is stopping), on a connection no
    /// other lane uses meanwhile.
    private func startLane(_ job: Job, token: String, clients: [RedisClient]) {
        let lane = lanesStarted.add(1, ordering: .relaxed).newValue
        state.withLock { state in
            // A slot is free (the dispatcher waited for one), so is a connection.
            let clientIndex = state.freeLaneClients.popLast() ?? 0
            let client = clients[clientIndex]
            state.held[job.id] = token
            state.lanes[lane] = Task {
                var next: (Job, String)? = (job, token)
                while let (job, token) = next {
                    next = await self.runOne(job, token: token, client: client)
                }
                self.endLane(lane, clientIndex: clientIndex)
            }
        }
    }

    private func endLane(_ lane: Int, clientIndex: Int) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.lanes[lane] = nil
            state.freeLaneClients.append(clientIndex)
            var waiters: [CheckedContinuation<Void, Never>] = []
            if let slot = state.slotWaiter { waiters.append(slot) }
            state.slotWaiter = nil
            if state.lanes.isEmpty {
                waiters += state.idleWaiters
                state.idleWaiters = []
            }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Runs one job and records its outcome; answers the next job if the
    /// finish script took one for this lane.
    private func runOne(_ job: Job, token: String, client: RedisClient) async -> (Job, String)? {
        // A span of the trace the job was added in (BullMQ's `opts.tm`).
        await Observability.withSpan("job \(job.name) on \(keys.queue)", ofKind: .consumer, continuing: job.options.traceparent) {
            await runOneInSpan(job, token: token, client: client)
        }
    }

    private func runOneInSpan(_ job: Job, token: String, client: RedisClient) async -> (Job, String)? {
        var logger = logger
        logger[metadataKey: "job"] = "\(job.id)"
        logger[metadataKey: "job.name"] = "\(job.name)"
        state.withLock { $0.held[job.id] = token }
        defer { _ = state.withLock { $0.held.removeValue(forKey: job.id) } }
        do {
            if let reason = job.deferredFailure {
                // Stalled too often: fail it without running it again.
                return try await fail(job, token: token, reason: reason, trace: reason, final: true, client: client)
            }
            let value: String?
            let started = ContinuousClock.now
            do {
                value = try await process(job)
            } catch {
                logger.info("job attempt failed", metadata: ["error": "\(error)", "attempt": "\(job.attemptsMade + 1)"])
                let final = job.attemptsMade + 1 >= job.options.attempts
                JobMetrics.ran(queue: keys.queue, outcome: final ? "failed" : "retried", since: started)
                return try await fail(job, token: token, reason: "\(error)", trace: "\(type(of: error)): \(error)",
                                      final: final, client: client)
            }
            logger.debug("job completed")
            JobMetrics.ran(queue: keys.queue, outcome: "completed", since: started)
            return try await finish(job, token: token, outcome: "completed", value: value ?? "null", stacktrace: "",
                                    keep: job.options.removeOnComplete, client: client)
        } catch {
            logger.warning("could not record the job's outcome", metadata: ["error": "\(error)"])
            return nil
        }
    }

    private func fail(
        _ job: Job, token: String, reason: String, trace: String, final: Bool, client: RedisClient
    ) async throws -> (Job, String)? {
        let stacktrace = String(decoding: try JSONEncoder().encode(job.stacktrace + [trace]), as: UTF8.self)
        if final {
            return try await finish(job, token: token, outcome: "failed", value: reason, stacktrace: stacktrace,
                                    keep: job.options.removeOnFail, client: client)
        }
        let delay = job.options.backoff?.delay(afterAttempts: job.attemptsMade + 1) ?? 0
        let code = try await client.evaluate(JobScripts.retryLater, keys: keys.all, arguments: [
            keys.base, job.id, Date().milliseconds, token, delay, reason, stacktrace,
        ]).int
        try check(code, job: job)
        return nil
    }

    private func finish(
        _ job: Job, token: String, outcome: String, value: String, stacktrace: String, keep: KeepJobs?,
        client: RedisClient
    ) async throws -> (Job, String)? {
        let limits = keep?.limits ?? (count: -1, age: -1)
        let nextToken = nextToken()
        let fetchNext = isStopping ? "0" : "1"
        let reply = try await client.evaluate(JobScripts.finish, keys: keys.all, arguments: [
            keys.base, job.id, Date().milliseconds, token, outcome, value, stacktrace, limits.count, limits.age,
            job.options.attempts, fetchNext, lockMilliseconds, nextToken,
        ])
        if case .integer(let code) = reply {
            try check(code, job: job)
            return nil
        }
        if case .job(let next, let token) = try take(from: reply, token: nextToken) {
            state.withLock { $0.held[next.id] = token }
            return (next, token)
        }
        return nil
    }

    private func check(_ code: Int, job: Job) throws {
        switch code {
        case 0: return
        case -2, -6: throw JobError.lockLost(id: job.id)
        case -1: throw JobError.notFound(id: job.id)
        default: throw JobError.unexpected("job \(job.id): script answered \(code)")
        }
    }

    // MARK: Locks and stalls

    /// Every half lock duration, renews the locks of the jobs running here.
    private func renewLocks(_ client: RedisClient) async {
        let interval = Duration.milliseconds(max(lockMilliseconds / 2, 5))
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let held = state.withLock { $0.held }
            for (id, token) in held {
                let renewed = try? await client.evaluate(
                    JobScripts.extendLock, keys: [keys.job(id) + ":lock", keys.key("stalled")],
                    arguments: [token, lockMilliseconds, id]).int
                if renewed == 0, state.withLock({ $0.held[id] == token }) {
                    logger.warning("lost the lock of a running job; another worker may run it too", metadata: ["job": "\(id)"])
                }
            }
        }
    }

    /// Every `stalledInterval`, the stalled-job check (one worker of the
    /// queue does it per interval, whichever gets there first).
    private func checkStalledJobs(_ client: RedisClient) async {
        let interval = max(milliseconds(stalledInterval), 10)
        while !Task.isCancelled {
            do {
                let recovered = try await client.evaluate(JobScripts.recoverStalled, keys: keys.all, arguments: [
                    keys.base, Date().milliseconds, maxStalledCount, interval,
                ]).elements.map { try $0.string }
                if !recovered.isEmpty {
                    logger.notice("stalled jobs moved back to wait", metadata: ["jobs": "\(recovered)"])
                }
            } catch {
                logger.debug("stalled-job check failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(interval))
        }
    }

    /// Past the grace period: the jobs still running go back to `wait`
    /// (another worker will run them) and their lanes are abandoned.
    private func handBackRunningJobs(_ client: RedisClient) async {
        let (held, lanes) = state.withLock { state in
            defer { state.held = [:] }
            return (state.held, Array(state.lanes.values))
        }
        for (id, token) in held {
            do {
                _ = try await client.evaluate(JobScripts.handBack, keys: keys.all, arguments: [keys.base, id, token])
                logger.notice("handed a running job back to wait at shutdown", metadata: ["job": "\(id)"])
            } catch {
                logger.warning("could not hand a job back", metadata: ["job": "\(id)", "error": "\(error)"])
            }
        }
        for lane in lanes { lane.cancel() }
        let waiters = state.withLock { state in
            defer { state.idleWaiters = []; state.lanes = [:] }
            return state.idleWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
