import Foundation
import Messaging
import Redis

/// What an outbox message that adds a job carries in its body.
public struct JobMessage: Sendable, Codable, Equatable {
    public var queue: String
    public var name: String
    /// The job's data, JSON text.
    public var data: String
    public var options: JobOptions
    /// When a delayed job is due, in Unix milliseconds. Absolute, because
    /// the relay may send the message long after it was written: a relative
    /// delay would start counting again then.
    public var dueAt: Int?

    /// The message type that tells job messages apart in an outbox.
    public static let type = "job"
}

extension OutgoingMessage {
    /// A message that, relayed to a `JobsDestination`, adds a job to
    /// `queue`. Its job id is the message's id unless `options.jobId` says
    /// otherwise, so a second delivery of the message adds nothing.
    public static func job<T: Encodable>(
        queue: String, name: String, payload: T, options: JobOptions = .init(), correlationId: String? = nil
    ) throws -> OutgoingMessage {
        var message = OutgoingMessage(type: JobMessage.type, body: [], correlationId: correlationId)
        var options = options
        if options.jobId == nil { options.jobId = message.id }
        // The relay adds the job later, outside any trace: the trace goes
        // into the job's options now.
        if options.telemetryMetadata == nil, let traceparent = message.traceparent { options.traceparent = traceparent }
        let dueAt = options.delay.map { Date().milliseconds + milliseconds($0) }
        options.delay = nil
        let data = String(decoding: try JobOptions.encoder.encode(payload), as: UTF8.self)
        let body = JobMessage(queue: queue, name: name, data: data, options: options, dueAt: dueAt)
        message.body = Array(try JobOptions.encoder.encode(body))
        return message
    }
}

/// An outbox destination that adds jobs: each message made by
/// `OutgoingMessage.job(…)` becomes a job in its queue, in order, with its
/// id, so a redelivered batch adds nothing twice.
public struct JobsDestination: OutboxDestination {
    let client: RedisClient
    let prefix: String

    public init(client: RedisClient, prefix: String = "bull") {
        self.client = client
        self.prefix = prefix
    }

    public func deliver(_ messages: [OutgoingMessage]) async throws {
        let decoder = JSONDecoder()
        // One pipeline per queue would reorder messages across queues; one
        // add after another keeps the outbox's order, and each add is one
        // round trip.
        for message in messages {
            let job = try decoder.decode(JobMessage.self, from: Data(message.body))
            var options = job.options
            if let dueAt = job.dueAt {
                let remaining = dueAt - Date().milliseconds
                options.delay = remaining > 0 ? .milliseconds(remaining) : nil
            }
            let queue = JobQueue(name: job.queue, client: client, prefix: prefix)
            _ = try await queue.add(NewJob(name: job.name, data: job.data, options: options))
        }
    }
}

/// Sends job messages to one destination and every other message to
/// another (RabbitMQ, say), keeping the outbox's order within each.
public struct SplitDestination: OutboxDestination {
    let jobs: any OutboxDestination
    let others: any OutboxDestination

    public init(jobs: any OutboxDestination, others: any OutboxDestination) {
        self.jobs = jobs
        self.others = others
    }

    public func deliver(_ messages: [OutgoingMessage]) async throws {
        let jobMessages = messages.filter { $0.type == JobMessage.type }
        let otherMessages = messages.filter { $0.type != JobMessage.type }
        if !otherMessages.isEmpty { try await others.deliver(otherMessages) }
        if !jobMessages.isEmpty { try await jobs.deliver(jobMessages) }
    }
}
