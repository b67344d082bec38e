import Foundation

/// How long to wait before the next attempt of a failed job.
///
/// The two strategies BullMQ has built in, with its meaning, so that a job
/// added here and retried by a Python or Node worker waits just as long.
public enum Backoff: Sendable, Equatable {
    /// The same wait before every retry.
    case fixed(milliseconds: Int)
    /// `milliseconds × 2^(attemptsMade − 1)`: 1×, 2×, 4×… the base wait.
    case exponential(milliseconds: Int)

    /// The wait after the job has failed `attemptsMade` times (1 after the
    /// first failure), in milliseconds.
    public func delay(afterAttempts attemptsMade: Int) -> Int {
        switch self {
        case .fixed(let milliseconds):
            return milliseconds
        case .exponential(let milliseconds):
            // BullMQ rounds `2^(n−1) × delay`; the product of two integers
            // needs no rounding here, only a guard against overflow.
            let exponent = max(attemptsMade - 1, 0)
            guard exponent < 40 else { return Int.max / 2 }
            return milliseconds * (1 << exponent)
        }
    }
}

/// How many finished jobs to keep, in BullMQ's shapes: `removeOnComplete`
/// and `removeOnFail` take `true` (keep none), a count, or `{age, count}`.
public enum KeepJobs: Sendable, Equatable {
    /// Keep the newest `n` (0: remove the job as soon as it finishes).
    case count(Int)
    /// Keep the jobs that finished within the last `seconds`.
    case age(seconds: Int)
    /// Both limits at once.
    case ageAndCount(seconds: Int, count: Int)
}

/// What a job asks of the queue. Encoded as the `opts` JSON BullMQ keeps in
/// the job's hash, with BullMQ's names, so that any BullMQ client reads it.
public struct JobOptions: Sendable, Equatable {
    /// A custom id. Adding a second job with the same id is a no-op that
    /// answers the existing id: the way to make an add idempotent.
    public var jobId: String?
    /// Not before this long after the add.
    public var delay: Duration?
    /// 0: none (first in, first out). 1 is the highest, as in BullMQ.
    public var priority: Int
    /// How many times to run it before it counts as failed (at least 1).
    public var attempts: Int
    public var backoff: Backoff?
    /// nil: keep all.
    public var removeOnComplete: KeepJobs?
    public var removeOnFail: KeepJobs?
    /// The trace the job continues, as BullMQ's telemetry keeps it: JSON
    /// text of the W3C headers (`{"traceparent":"00-…"}`) in `opts.tm`.
    /// BullMQ clients without telemetry keep it and ignore it.
    public var telemetryMetadata: String?

    public init(
        jobId: String? = nil, delay: Duration? = nil, priority: Int = 0, attempts: Int = 1,
        backoff: Backoff? = nil, removeOnComplete: KeepJobs? = nil, removeOnFail: KeepJobs? = nil
    ) {
        self.jobId = jobId
        self.delay = delay
        self.priority = priority
        self.attempts = attempts
        self.backoff = backoff
        self.removeOnComplete = removeOnComplete
        self.removeOnFail = removeOnFail
    }

    /// The delay in whole milliseconds, BullMQ's unit.
    public var delayMilliseconds: Int {
        max(delay.map(milliseconds) ?? 0, 0)
    }
}

// MARK: - BullMQ's opts JSON

extension JobOptions: Codable {
    private enum Keys: String, CodingKey {
        case jobId, delay, priority, attempts, backoff, removeOnComplete, removeOnFail
        case telemetryMetadata = "tm"
    }

    private enum BackoffKeys: String, CodingKey { case type, delay }
    private enum KeepKeys: String, CodingKey { case age, count }

    /// `attempts` and `delay` are always written: BullMQ's workers compare
    /// `attempts` without a default, and its own adds always carry both.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(jobId, forKey: .jobId)
        try container.encodeIfPresent(telemetryMetadata, forKey: .telemetryMetadata)
        try container.encode(delayMilliseconds, forKey: .delay)
        if priority != 0 { try container.encode(priority, forKey: .priority) }
        try container.encode(attempts, forKey: .attempts)
        if let backoff {
            var nested = container.nestedContainer(keyedBy: BackoffKeys.self, forKey: .backoff)
            switch backoff {
            case .fixed(let ms):
                try nested.encode("fixed", forKey: .type)
                try nested.encode(ms, forKey: .delay)
            case .exponential(let ms):
                try nested.encode("exponential", forKey: .type)
                try nested.encode(ms, forKey: .delay)
            }
        }
        try Self.encode(removeOnComplete, forKey: .removeOnComplete, in: &container)
        try Self.encode(removeOnFail, forKey: .removeOnFail, in: &container)
    }

    private static func encode(_ keep: KeepJobs?, forKey key: Keys, in container: inout KeyedEncodingContainer<Keys>) throws {
        switch keep {
        case nil:
            return
        case .count(let n):
            try container.encode(n, forKey: key)
        case .age(let seconds):
            var nested = container.nestedContainer(keyedBy: KeepKeys.self, forKey: key)
            try nested.encode(seconds, forKey: .age)
        case .ageAndCount(let seconds, let count):
            var nested = container.nestedContainer(keyedBy: KeepKeys.self, forKey: key)
            try nested.encode(seconds, forKey: .age)
            try nested.encode(count, forKey: .count)
        }
    }

    /// Reads what any BullMQ client wrote: missing keys take BullMQ's
    /// defaults, `attempts: 0` means one attempt, `backoff` may be a bare
    /// number (a fixed wait), and `removeOn…` may be a boolean.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        jobId = try container.decodeIfPresent(String.self, forKey: .jobId)
        let delay = try container.decodeIfPresent(Double.self, forKey: .delay) ?? 0
        self.delay = delay > 0 ? .milliseconds(Int(delay)) : nil
        priority = Int(try container.decodeIfPresent(Double.self, forKey: .priority) ?? 0)
        attempts = max(Int(try container.decodeIfPresent(Double.self, forKey: .attempts) ?? 1), 1)
        if let ms = try? container.decodeIfPresent(Double.self, forKey: .backoff) {
            backoff = .fixed(milliseconds: Int(ms))
        } else if container.contains(.backoff), try !container.decodeNil(forKey: .backoff) {
            let nested = try container.nestedContainer(keyedBy: BackoffKeys.self, forKey: .backoff)
            let ms = Int(try nested.decodeIfPresent(Double.self, forKey: .delay) ?? 0)
            let type = try nested.decodeIfPresent(String.self, forKey: .type)
            backoff = type == "exponential" ? .exponential(milliseconds: ms) : .fixed(milliseconds: ms)
        } else {
            backoff = nil
        }
        removeOnComplete = try Self.decodeKeep(.removeOnComplete, in: container)
        removeOnFail = try Self.decodeKeep(.removeOnFail, in: container)
        telemetryMetadata = try? container.decodeIfPresent(String.self, forKey: .telemetryMetadata)
    }

    /// The trace in `telemetryMetadata`, as a `traceparent`.
    public var traceparent: String? {
        get {
            guard let text = telemetryMetadata,
                  let carrier = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else { return nil }
            return carrier["traceparent"]
        }
        set {
            telemetryMetadata = newValue.map { String(decoding: (try? Self.encoder.encode(["traceparent": $0])) ?? Data(), as: UTF8.self) }
        }
    }

    private static func decodeKeep(_ key: Keys, in container: KeyedDecodingContainer<Keys>) throws -> KeepJobs? {
        guard container.contains(key), try !container.decodeNil(forKey: key) else { return nil }
        if let flag = try? container.decode(Bool.self, forKey: key) { return flag ? .count(0) : nil }
        if let count = try? container.decode(Double.self, forKey: key) { return .count(Int(count)) }
        let nested = try container.nestedContainer(keyedBy: KeepKeys.self, forKey: key)
        let age = try nested.decodeIfPresent(Double.self, forKey: .age).map { Int($0) }
        let count = try nested.decodeIfPresent(Double.self, forKey: .count).map { Int($0) }
        switch (age, count) {
        case let (age?, count?): return .ageAndCount(seconds: age, count: count)
        case let (age?, nil): return .age(seconds: age)
        case let (nil, count?): return .count(count)
        case (nil, nil): return nil
        }
    }

    /// The opts JSON as stored in the job's hash.
    public var bullMQJSON: String {
        // Encoding these fields cannot fail.
        String(decoding: (try? Self.encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// Reads a job hash's opts JSON; malformed text gives the defaults.
    public init(bullMQJSON text: String) {
        self = (try? JSONDecoder().decode(JobOptions.self, from: Data(text.utf8))) ?? JobOptions()
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}

extension KeepJobs {
    /// What the finishing script needs: how many to keep (-1: no limit) and
    /// the age limit in seconds (-1: none).
    var limits: (count: Int, age: Int) {
        switch self {
        case .count(let n): return (n, -1)
        case .age(let seconds): return (-1, seconds)
        case .ageAndCount(let seconds, let count): return (count, seconds)
        }
    }
}

/// A job to add: its name, its data as JSON text, and its options.
public struct NewJob: Sendable {
    public var name: String
    /// The job's data, JSON text (BullMQ's `data` field).
    public var data: String
    public var options: JobOptions

    public init(name: String, data: String, options: JobOptions = .init()) {
        self.name = name
        self.data = data
        self.options = options
    }

    public init(name: String, data: [UInt8], options: JobOptions = .init()) {
        self.init(name: name, data: String(decoding: data, as: UTF8.self), options: options)
    }

    public init<T: Encodable>(name: String, payload: T, options: JobOptions = .init()) throws {
        self.init(name: name, data: String(decoding: try JobOptions.encoder.encode(payload), as: UTF8.self), options: options)
    }
}
