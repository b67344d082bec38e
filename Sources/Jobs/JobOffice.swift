import Auth
import Common
import Foundation
import Hummingbird
import Messaging
import ShopServer

/// The administrator's view of a deployment's job queues (contract part B,
/// stage 5+): counts per queue, the jobs in one state, one job, and the
/// retry of a failed one. Everything is read from Redis as it is, so a job
/// added or run by a BullMQ client shows here like our own.
public struct JobOffice: Sendable {
    let queues: [String: JobQueue]
    let order: [String]

    public init(queues: [JobQueue]) {
        self.queues = Dictionary(queues.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        order = queues.map(\.name)
    }

    /// A job as `/admin/jobs` shows it.
    public struct Entry: Codable, Sendable, Equatable {
        public var id: String
        public var queue: String
        public var name: String
        public var state: JobState
        /// The job's data as stored: JSON when it parses, else the text.
        public var data: JSONValue
        public var attemptsMade: Int
        public var maxAttempts: Int
        public var failedReason: String?
        public var returnValue: JSONValue?
        public var createdAt: Date
        public var processedAt: Date?
        public var finishedAt: Date?
        /// When a delayed job (or a retry waiting out its backoff) comes due.
        public var delayUntil: Date?

        public init(_ job: Job, state: JobState) {
            id = job.id
            queue = job.queue
            name = job.name
            self.state = state
            data = Self.json(job.data) ?? .string(job.data)
            attemptsMade = job.attemptsMade
            maxAttempts = max(job.options.attempts, 1)
            failedReason = job.failedReason.flatMap { $0.isEmpty ? nil : $0 }
            returnValue = job.returnValue.flatMap { Self.json($0) ?? .string($0) }
            createdAt = job.timestamp
            processedAt = job.processedOn
            finishedAt = job.finishedOn
            delayUntil = state == .delayed ? job.delayUntil : nil
        }

        static func json(_ text: String) -> JSONValue? {
            try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        }

        /// Every field, with `null` for what a job does not have yet: the
        /// contract's job has them all, so a client can tell "not yet" from
        /// "not sent". (The synthesized encoder would leave them out.)
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(queue, forKey: .queue); try c.encode(name, forKey: .name)
            try c.encode(state, forKey: .state); try c.encode(data, forKey: .data)
            try c.encode(attemptsMade, forKey: .attemptsMade); try c.encode(maxAttempts, forKey: .maxAttempts)
            try c.encode(failedReason, forKey: .failedReason); try c.encode(returnValue, forKey: .returnValue)
            try c.encode(createdAt, forKey: .createdAt); try c.encode(processedAt, forKey: .processedAt)
            try c.encode(finishedAt, forKey: .finishedAt); try c.encode(delayUntil, forKey: .delayUntil)
        }
    }

    public struct QueueSummary: Codable, Sendable, Equatable {
        public var name: String
        public var counts: JobCounts
    }

    public struct Queues: Codable, Sendable, Equatable {
        public var queues: [QueueSummary]
    }

    /// The states `?state=` accepts: the names of the counts.
    static let listable: [JobState] = [.waiting, .active, .delayed, .prioritized, .completed, .failed, .paused]

    public func summary() async throws -> Queues {
        var summaries: [QueueSummary] = []
        for name in order {
            summaries.append(QueueSummary(name: name, counts: try await queues[name]!.counts()))
        }
        return Queues(queues: summaries)
    }

    /// `GET /admin/jobs`, `GET /admin/jobs/{queue}`, `GET /admin/jobs/{queue}/{jobId}`,
    /// `POST /admin/jobs/{queue}/{jobId}/retry`.
    public func addRoutes(to router: Router<ShopRequestContext>, auth: Authenticator) {
        JobMetrics.watch(self)
        router.get("/admin/jobs") { request, context in
            _ = try auth.admin(request, context: context)
            return Reply.json(try await unavailableIfDown { try await summary() })
        }
        router.get("/admin/jobs/:queue") { request, context in
            _ = try auth.admin(request, context: context)
            let queue = try queue(context)
            let query = request.uri.queryParameters
            var state = JobState.failed
            if let text = query.get("state") {
                guard let chosen = JobState(rawValue: text), Self.listable.contains(chosen) else {
                    throw ShopError.invalid("state", "must be one of " + Self.listable.map(\.rawValue).joined(separator: ", "))
                }
                state = chosen
            }
            var limit = 20
            if let text = query.get("limit") {
                guard let chosen = Int(text), (1...100).contains(chosen) else { throw ShopError.invalid("limit", "must be an integer from 1 to 100") }
                limit = chosen
            }
            let jobs = try await unavailableIfDown { try await queue.jobs(in: state, limit: limit) }
            return Reply.json(API.ItemList(items: jobs.map { Entry($0, state: state) }))
        }
        router.get("/admin/jobs/:queue/:jobId") { request, context in
            _ = try auth.admin(request, context: context)
            let queue = try queue(context)
            let id = try jobId(context)
            let (job, state) = try await unavailableIfDown { (try await queue.job(id: id), try await queue.state(of: id)) }
            guard let job else { throw ShopError.notFound("job \(id) in \(queue.name)") }
            return Reply.json(Entry(job, state: state))
        }
        router.post("/admin/jobs/:queue/:jobId/retry") { request, context in
            _ = try auth.admin(request, context: context)
            let queue = try queue(context)
            let id = try jobId(context)
            do {
                let job = try await unavailableIfDown { try await queue.retry(id: id) }
                return Reply.json(Entry(job, state: try await queue.state(of: id)), status: .accepted)
            } catch JobError.notFound {
                throw ShopError.notFound("job \(id) in \(queue.name)")
            } catch JobError.notFailed(_, let state) {
                throw ShopError(.jobNotFailed, "job \(id) is \(state.rawValue); only a failed job can be retried")
            }
        }
    }

    private func queue(_ context: ShopRequestContext) throws -> JobQueue {
        let name = Self.decoded(context.parameters.get("queue"))
        guard let name, let queue = queues[name] else { throw ShopError.notFound("job queue \(name ?? "")") }
        return queue
    }

    /// Any id BullMQ allows is looked up; one too long to be a key is not
    /// there.
    private func jobId(_ context: ShopRequestContext) throws -> String {
        guard let id = Self.decoded(context.parameters.get("jobId")), !id.isEmpty, id.utf8.count <= 512 else {
            throw ShopError.notFound("job")
        }
        return id
    }

    /// A path segment as the client meant it: job ids have colons
    /// (`payment:charge:ord_…`), which many clients send as `%3A`. Hummingbird
    /// hands the segment over as it came.
    static func decoded(_ segment: String?) -> String? {
        segment.flatMap { $0.removingPercentEncoding }
    }

    /// Redis away: the contract's 503, with a retry hint, not a 500.
    private func unavailableIfDown<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as JobError {
            throw error
        } catch let error as ShopError {
            throw error
        } catch {
            throw ShopError.unavailable("the job store (Redis)", retryAfter: 1)
        }
    }
}
