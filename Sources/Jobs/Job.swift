import Foundation
import Redis

/// Where a job is. BullMQ's states, plus `paused`: a waiting job of a
/// paused queue (BullMQ itself says "waiting" for it).
public enum JobState: String, Sendable, Codable {
    case waiting, active, delayed, prioritized, completed, failed, paused, unknown
}

/// How many jobs are in each state.
public struct JobCounts: Sendable, Codable, Equatable {
    public var waiting, active, delayed, prioritized, completed, failed, paused: Int

    public init(waiting: Int = 0, active: Int = 0, delayed: Int = 0, prioritized: Int = 0,
                completed: Int = 0, failed: Int = 0, paused: Int = 0) {
        self.waiting = waiting
        self.active = active
        self.delayed = delayed
        self.prioritized = prioritized
        self.completed = completed
        self.failed = failed
        self.paused = paused
    }
}

public enum JobError: Error, Equatable, CustomStringConvertible {
    /// No job with this id.
    case notFound(id: String)
    /// `retry` of a job that has not failed.
    case notFailed(id: String, state: JobState)
    /// The worker's lock on the job was gone or someone else's when it tried
    /// to finish it: another worker took it over after a stall.
    case lockLost(id: String)
    /// A script answered something we did not expect (a code, a shape).
    case unexpected(String)

    public var description: String {
        switch self {
        case .notFound(let id): return "no job \(id)"
        case .notFailed(let id, let state): return "job \(id) is \(state.rawValue), not failed"
        case .lockLost(let id): return "the lock on job \(id) was lost"
        case .unexpected(let text): return text
        }
    }
}

/// A job as stored: the fields of its hash (`<prefix>:<queue>:<id>`).
public struct Job: Sendable {
    public var id: String
    public var queue: String
    public var name: String
    /// The job's data, JSON text as added.
    public var data: String
    public var options: JobOptions
    public var timestamp: Date
    /// The delay it was added with, or the last backoff wait.
    public var delay: Duration
    public var priority: Int
    public var processedOn: Date?
    public var finishedOn: Date?
    /// Attempts that ended (failed or completed): BullMQ's `atm`.
    public var attemptsMade: Int
    /// Attempts that began (moves to active): BullMQ's `ats`.
    public var attemptsStarted: Int
    /// Times it was found stalled: BullMQ's `stc`.
    public var stalledCount: Int
    /// The return value, JSON text.
    public var returnValue: String?
    public var failedReason: String?
    public var stacktrace: [String]
    /// When it is due, while it is delayed (from its score in `delayed`).
    public var delayUntil: Date?
    /// The scheduler that produced it (BullMQ's `rjk`).
    public var schedulerId: String?
    /// Set by a stalled-job check that found it stalled too often: the next
    /// worker to take it fails it with this reason (BullMQ's `defa`).
    var deferredFailure: String?

    /// Decodes the data as `T`.
    public func payload<T: Decodable>(as type: T.Type = T.self) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(data.utf8))
    }

    /// Builds a job from HGETALL's flat [field, value, …] reply.
    init(id: String, queue: String, fields reply: [RESPValue]) throws {
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < reply.count {
            fields[try reply[index].string] = String(decoding: try reply[index + 1].bytes, as: UTF8.self)
            index += 2
        }
        self.init(id: id, queue: queue, fields: fields)
    }

    init(id: String, queue: String, fields: [String: String]) {
        func int(_ key: String) -> Int? { fields[key].flatMap { Int($0) ?? Double($0).map { Int($0) } } }
        func date(_ key: String) -> Date? { int(key).flatMap { $0 > 0 ? Date(milliseconds: $0) : nil } }
        self.id = id
        self.queue = queue
        name = fields["name"] ?? ""
        data = fields["data"] ?? "{}"
        options = JobOptions(bullMQJSON: fields["opts"] ?? "{}")
        timestamp = date("timestamp") ?? Date(timeIntervalSince1970: 0)
        delay = .milliseconds(int("delay") ?? 0)
        priority = int("priority") ?? 0
        processedOn = date("processedOn")
        finishedOn = date("finishedOn")
        attemptsMade = int("atm") ?? int("attemptsMade") ?? 0
        attemptsStarted = int("ats") ?? 0
        stalledCount = int("stc") ?? 0
        returnValue = fields["returnvalue"]
        failedReason = fields["failedReason"]
        stacktrace = fields["stacktrace"]
            .flatMap { try? JSONDecoder().decode([String].self, from: Data($0.utf8)) } ?? []
        schedulerId = fields["rjk"]
        deferredFailure = fields["defa"]
    }
}

/// A duration in whole milliseconds, BullMQ's unit for every time.
func milliseconds(_ duration: Duration) -> Int {
    let (seconds, attoseconds) = duration.components
    return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
}

extension Date {
    init(milliseconds: Int) { self.init(timeIntervalSince1970: Double(milliseconds) / 1000) }
    var milliseconds: Int { Int((timeIntervalSince1970 * 1000).rounded()) }
}

/// A job scheduler: a factory that adds a job every `every`.
public struct JobScheduler: Sendable, Equatable {
    public var id: String
    /// The name of the jobs it makes.
    public var name: String
    public var every: Duration?
    /// When the next job is due.
    public var next: Date?
    /// How many jobs it has made.
    public var iterationCount: Int
    /// The data of the jobs it makes, JSON text.
    public var data: String
}

/// The delayed set's score, BullMQ's encoding: the due time in
/// milliseconds times 4096, plus a sequence number that keeps jobs due in
/// the same millisecond in the order they were added. Redis scores are
/// doubles, exact up to 2^53: a millisecond clock times 2^12 fits until
/// the year 2248.
public enum DelayedScore {
    public static let perMillisecond = 0x1000

    public static func score(dueAt milliseconds: Int, sequence: Int = 0) -> Int {
        milliseconds * perMillisecond + min(max(sequence, 0), perMillisecond - 1)
    }

    public static func dueTime(ofScore score: Int) -> Int {
        score / perMillisecond
    }
}

/// The prioritized set's score: the priority in the high bits, a counter
/// (the `pc` key) in the low 32, so equal priorities keep their order.
public enum PriorityScore {
    public static func score(priority: Int, counter: Int) -> Int {
        priority * 0x1_0000_0000 + counter % 0x1_0000_0000
    }
}
