import Foundation
import Observability
import Redis

/// One queue, BullMQ's layout in Redis: add jobs, read them, steer the
/// queue (pause, rate limit, schedulers). Processing is `JobWorker`'s.
///
/// Any BullMQ client (Node, Python) given the same prefix and name shares
/// the queue: it can add what our workers run, run what we add, and read
/// what either side wrote.
public final class JobQueue: Sendable {
    public let name: String
    let client: RedisClient
    let keys: QueueKeys

    public init(name: String, client: RedisClient, prefix: String = "bull") {
        self.name = name
        self.client = client
        keys = QueueKeys(prefix: prefix, queue: name)
    }

    // MARK: Adding

    /// Adds a job and answers its id. With `options.jobId` set, adding the
    /// same id again changes nothing and answers that id.
    public func add(_ job: NewJob) async throws -> String {
        try await client.evaluate(JobScripts.addJob, keys: keys.all, arguments: addArguments(job)).string
    }

    public func add<T: Encodable>(name: String, payload: T, options: JobOptions = .init()) async throws -> String {
        try await add(NewJob(name: name, payload: payload, options: options))
    }

    /// Adds many jobs in one round trip (a pipeline of the same script);
    /// each add is still atomic on its own.
    public func addBulk(_ jobs: [NewJob]) async throws -> [String] {
        guard !jobs.isEmpty else { return [] }
        // Make sure the script is cached first: inside a pipeline there is
        // no way to fall back from EVALSHA to EVAL for one command.
        try await client.load(JobScripts.addJob)
        let commands = jobs.map { job in
            RedisCommand(["EVALSHA", JobScripts.addJob.sha1, keys.all.count] + keys.all + addArguments(job))
        }
        return try await client.pipeline(commands).map { try $0.checked().string }
    }

    private func addArguments(_ job: NewJob) -> [any RedisArgument] {
        var options = job.options
        // A job added inside a trace (a request, a message being handled)
        // continues it when it runs.
        if options.telemetryMetadata == nil, let traceparent = Observability.currentTraceparent {
            options.traceparent = traceparent
        }
        return [keys.base, options.jobId ?? "", job.name, Date().milliseconds, job.data,
                options.bullMQJSON, options.delayMilliseconds, max(options.priority, 0)]
    }

    // MARK: Reading

    public func counts() async throws -> JobCounts {
        let replies = try await client.pipeline([
            ["LLEN", keys.key("wait")], ["LLEN", keys.key("paused")], ["LLEN", keys.key("active")],
            ["ZCARD", keys.key("delayed")], ["ZCARD", keys.key("prioritized")],
            ["ZCARD", keys.key("completed")], ["ZCARD", keys.key("failed")],
            ["HEXISTS", keys.meta, "paused"],
        ]).map { try $0.checked().int }
        // A paused queue keeps its jobs in `wait`: they are counted as paused.
        let ready = replies[0] + replies[1]
        let paused = replies[7] == 1
        return JobCounts(
            waiting: paused ? 0 : ready, active: replies[2], delayed: replies[3], prioritized: replies[4],
            completed: replies[5], failed: replies[6], paused: paused ? ready : 0)
    }

    /// The job's hash, or nil when there is no such job.
    public func job(id: String) async throws -> Job? {
        let replies = try await client.pipeline([["HGETALL", keys.job(id)], ["ZSCORE", keys.key("delayed"), id]])
        let fields = try replies[0].checked().elements
        if fields.isEmpty { return nil }
        var job = try Job(id: id, queue: name, fields: fields)
        if let score = try replies[1].checked().optionalString.flatMap(Double.init) {
            job.delayUntil = Date(milliseconds: DelayedScore.dueTime(ofScore: Int(score)))
        }
        return job
    }

    public func state(of id: String) async throws -> JobState {
        let name = try await client.evaluate(JobScripts.state, keys: keys.all, arguments: [keys.base, id]).string
        return JobState(rawValue: name) ?? .unknown
    }

    /// Jobs in one state, newest first.
    public func jobs(in state: JobState, offset: Int = 0, limit: Int = 20) async throws -> [Job] {
        let last = offset + max(limit, 1) - 1
        let range: RedisCommand
        switch state {
        // Lists take new jobs at the head, so the head is the newest.
        case .waiting, .paused: range = ["LRANGE", keys.key("wait"), offset, last]
        case .active: range = ["LRANGE", keys.key("active"), offset, last]
        // Sets are scored by time (finish, due) or priority: highest first.
        case .delayed, .prioritized, .completed, .failed:
            range = ["ZREVRANGE", keys.key(state.rawValue), offset, last]
        case .unknown: return []
        }
        let ids = try await client.send(range).elements.map { try $0.string }
        var jobs: [Job] = []
        for id in ids {
            if let job = try await job(id: id) { jobs.append(job) }
        }
        return jobs
    }

    // MARK: Steering

    /// Puts a failed job back in line with its attempts kept; answers it.
    public func retry(id: String) async throws -> Job {
        let code = try await client.evaluate(JobScripts.retryFailed, keys: keys.all, arguments: [keys.base, id]).int
        switch code {
        case 1:
            guard let job = try await job(id: id) else { throw JobError.notFound(id: id) }
            return job
        case -1: throw JobError.notFound(id: id)
        case -3: throw JobError.notFailed(id: id, state: try await state(of: id))
        default: throw JobError.unexpected("retry of \(id) answered \(code)")
        }
    }

    /// Workers stop taking jobs (the active ones finish); adds go on.
    public func pause() async throws {
        _ = try await client.evaluate(JobScripts.pause, keys: keys.all, arguments: [keys.base, "paused"])
    }

    public func resume() async throws {
        _ = try await client.evaluate(JobScripts.pause, keys: keys.all, arguments: [keys.base, "resumed"])
    }

    /// At most `max` jobs start per `per`, across all workers of the queue
    /// (BullMQ's global rate limit, `max` and `duration` in the meta hash).
    public func setRateLimit(max: Int, per: Duration) async throws {
        _ = try await client.send(["HSET", keys.meta, "max", max, "duration", milliseconds(per)]).checked()
    }

    /// Lifts the rate limit.
    public func removeRateLimit() async throws {
        _ = try await client.send(["HDEL", keys.meta, "max", "duration"]).checked()
    }

    // MARK: Schedulers

    /// Creates or replaces a scheduler that adds `job` every `every`, the
    /// first one now. The next one is made when a worker starts the
    /// previous one, so a scheduler makes jobs only while workers run.
    public func upsertScheduler(id: String, every: Duration, job: NewJob) async throws {
        let every = milliseconds(every)
        guard every > 0 else { throw JobError.unexpected("a scheduler needs a positive interval") }
        var options = job.options
        options.jobId = nil
        options.delay = nil
        _ = try await client.evaluate(JobScripts.upsertScheduler, keys: keys.all, arguments: [
            keys.base, id, Date().milliseconds, every, job.name, job.data, options.bullMQJSON,
        ]).string
    }

    public func schedulers() async throws -> [JobScheduler] {
        let entries = try await client.send(["ZRANGE", keys.repeatSet, 0, -1, "WITHSCORES"]).elements
        var schedulers: [JobScheduler] = []
        for index in stride(from: 0, to: entries.count - 1, by: 2) {
            let id = try entries[index].string
            let next = Int(try entries[index + 1].double)
            let reply = try await client.send(["HGETALL", keys.scheduler(id)]).elements
            var fields: [String: String] = [:]
            for pair in stride(from: 0, to: reply.count - 1, by: 2) {
                fields[try reply[pair].string] = try reply[pair + 1].string
            }
            schedulers.append(JobScheduler(
                id: id, name: fields["name"] ?? "", every: fields["every"].flatMap(Int.init).map { .milliseconds($0) },
                next: Date(milliseconds: next), iterationCount: fields["ic"].flatMap(Int.init) ?? 0,
                data: fields["data"] ?? "{}"))
        }
        return schedulers
    }

    /// Removes a scheduler and the job it has waiting, if that has not started.
    public func removeScheduler(id: String) async throws {
        _ = try await client.evaluate(JobScripts.removeScheduler, keys: keys.all, arguments: [keys.base, id])
    }
}
