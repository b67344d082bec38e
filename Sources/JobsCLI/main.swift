import ArgumentParser
import Foundation
import Jobs
import Logging
import Messaging
import Redis
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `jobs`: look into any BullMQ queue, and work it with the demo jobs.
@main
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Inspect and work BullMQ queues in Redis.",
        subcommands: [Counts.self, List.self, Show.self, Retry.self, Add.self, Work.self, Schedulers.self])
}

struct Connection: ParsableArguments {
    @Option(help: "The Redis server, redis://host:port.")
    var redis = ProcessInfo.processInfo.environment["REDIS_URL"] ?? "redis://127.0.0.1:6379"

    @Option(help: "The key prefix (BullMQ's default is bull).")
    var prefix = "bull"

    var address: RedisAddress {
        get throws { try RedisAddress(url: redis) }
    }

    func queue(_ name: String) throws -> JobQueue {
        JobQueue(name: name, client: RedisClient(address: try address), prefix: prefix)
    }
}

/// Lines out at once, even into a pipe: a test reads them as they come.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func pretty<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

struct Counts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "How many jobs are in each state.")
    @OptionGroup var connection: Connection
    @Argument var queue: String

    func run() async throws {
        say(try pretty(try await connection.queue(queue).counts()))
    }
}

extension JobState: ExpressibleByArgument {}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The jobs in one state, newest first.")
    @OptionGroup var connection: Connection
    @Argument var queue: String
    @Option var state: JobState = .waiting
    @Option var limit = 20

    func run() async throws {
        for job in try await connection.queue(queue).jobs(in: state, limit: limit) {
            let outcome = job.failedReason.map { "failed: \($0)" } ?? job.returnValue ?? ""
            say("\(job.id)\t\(job.name)\tattempts \(job.attemptsMade)\t\(job.data)\t\(outcome)")
        }
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "One job, as pretty JSON.")
    @OptionGroup var connection: Connection
    @Argument var queue: String
    @Argument var id: String

    func run() async throws {
        let jobs = try connection.queue(queue)
        guard let job = try await jobs.job(id: id) else { throw ValidationError("no job \(id) in \(queue)") }
        say(try pretty(JobView(job, state: try await jobs.state(of: id))))
    }
}

/// What `show` prints: the job's fields, its data and result as JSON values.
struct JobView: Encodable {
    let id, queue, name, state: String
    let data: JSONText
    let options: JobOptions
    let timestamp: Date
    let processedOn, finishedOn, delayUntil: Date?
    let attemptsMade, attemptsStarted, stalledCount, priority: Int
    let returnValue: JSONText?
    let failedReason: String?
    let stacktrace: [String]

    init(_ job: Job, state: JobState) {
        (id, queue, name, self.state) = (job.id, job.queue, job.name, state.rawValue)
        (data, options, timestamp) = (JSONText(job.data), job.options, job.timestamp)
        (processedOn, finishedOn, delayUntil) = (job.processedOn, job.finishedOn, job.delayUntil)
        (attemptsMade, attemptsStarted, stalledCount, priority) = (job.attemptsMade, job.attemptsStarted, job.stalledCount, job.priority)
        (returnValue, failedReason, stacktrace) = (job.returnValue.map(JSONText.init), job.failedReason, job.stacktrace)
    }
}

/// JSON text shown as the value it holds (or as a string if it is not JSON).
struct JSONText: Encodable {
    let text: String
    init(_ text: String) { self.text = text }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) {
            try container.encode(value)
        } else {
            try container.encode(text)
        }
    }
}

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Put a failed job back in line.")
    @OptionGroup var connection: Connection
    @Argument var queue: String
    @Argument var id: String

    func run() async throws {
        let job = try await connection.queue(queue).retry(id: id)
        say("\(job.id) is waiting again (attempts made: \(job.attemptsMade))")
    }
}

struct Add: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Add a job; prints its id.")
    @OptionGroup var connection: Connection
    @Argument var queue: String
    @Argument var name: String
    @Argument(help: "The job's data, JSON.") var json: String
    @Option(help: "Milliseconds before it is due.") var delay: Int?
    @Option var attempts = 1
    @Option(help: "fixed:ms or exponential:ms") var backoff: String?
    @Option var priority = 0
    @Option(name: .customLong("job-id")) var jobId: String?

    func run() async throws {
        guard (try? JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)) != nil else {
            throw ValidationError("the data is not JSON: \(json)")
        }
        var options = JobOptions(jobId: jobId, priority: priority, attempts: attempts)
        if let delay { options.delay = .milliseconds(delay) }
        if let backoff {
            let parts = backoff.split(separator: ":")
            guard parts.count == 2, let ms = Int(parts[1]), ["fixed", "exponential"].contains(parts[0]) else {
                throw ValidationError("--backoff is fixed:ms or exponential:ms")
            }
            options.backoff = parts[0] == "fixed" ? .fixed(milliseconds: ms) : .exponential(milliseconds: ms)
        }
        say(try await connection.queue(queue).add(NewJob(name: name, data: json, options: options)))
    }
}

struct Schedulers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The queue's job schedulers.")
    @OptionGroup var connection: Connection
    @Argument var queue: String

    func run() async throws {
        for scheduler in try await connection.queue(queue).schedulers() {
            let every = scheduler.every.map { "every \($0)" } ?? "-"
            let next = scheduler.next.map { ISO8601DateFormatter().string(from: $0) } ?? "-"
            say("\(scheduler.id)\t\(scheduler.name)\t\(every)\tnext \(next)\tmade \(scheduler.iterationCount)\t\(scheduler.data)")
        }
    }
}

struct Work: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the demo jobs (sum, fail) of a queue until SIGTERM or SIGINT.")
    @OptionGroup var connection: Connection
    @Argument var queue: String
    @Option var concurrency = 1
    @Option(name: .customLong("lock-ms")) var lockMilliseconds = 30_000
    @Option(name: .customLong("stalled-ms")) var stalledMilliseconds = 30_000

    func run() async throws {
        say("pid \(getpid())")
        var logger = Logger(label: "jobs")
        logger.logLevel = .notice
        let worker = JobWorker(
            queue: queue, address: try connection.address, prefix: connection.prefix, concurrency: concurrency,
            lockDuration: .milliseconds(lockMilliseconds), stalledInterval: .milliseconds(stalledMilliseconds),
            logger: logger
        ) { job in
            say("start \(job.id) \(job.name) attempt \(job.attemptsMade + 1)")
            if job.name == "sum", let ms = (try? job.payload(as: DemoJobs.Sum.self))?.sleepMs {
                try await Task.sleep(for: .milliseconds(ms))
            }
            do {
                let value = try DemoJobs.run(job)
                say("completed \(job.id) \(value ?? "null")")
                return value
            } catch {
                say("failed \(job.id) \(error)")
                throw error
            }
        }
        let group = ServiceGroup(configuration: .init(
            services: [.init(service: worker)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
