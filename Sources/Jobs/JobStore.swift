import Foundation
import Logging
import Redis
import ServiceLifecycle
import ShopServer

/// A deployment's jobs in one Redis: the address, the key prefix that keeps
/// this deployment's queues apart from any other's on the same server, one
/// shared client for the quick calls (adding, counting, reading), and
/// workers, each with connections of its own for its blocking waits.
public struct JobStore: Sendable {
    public let address: RedisAddress
    public let prefix: String
    public let client: RedisClient
    /// How long a worker's lock on a job lasts unrenewed; the stalled-job
    /// check runs as often, so a job whose worker died is taken back within
    /// about twice this.
    public let lockDuration: Duration
    let logger: Logger

    public init(url: String, prefix: String, lockDuration: Duration = .seconds(30), logger: Logger) throws {
        address = try RedisAddress(url: url)
        self.prefix = prefix
        self.lockDuration = lockDuration
        self.logger = logger
        client = RedisClient(address: address, logger: logger)
    }

    /// BullMQ's prefix is `bull`; a deployment adds its namespace to it
    /// (`bull:stage-5-3f2a…`), so that two learners' stages, or the tests
    /// running several at once, share a Redis without sharing queues. A
    /// BullMQ client reaches them with the same `prefix` option.
    public static func prefix(namespace: String) -> String { "bull:\(namespace)" }

    public func queue(_ name: String) -> JobQueue {
        JobQueue(name: name, client: client, prefix: prefix)
    }

    /// A worker whose handler answers the return value as JSON text.
    public func worker(
        _ queue: String, concurrency: Int, process: @escaping @Sendable (Job) async throws -> String?
    ) -> JobWorker {
        JobWorker(queue: queue, address: address, prefix: prefix, concurrency: concurrency,
                  lockDuration: lockDuration, stalledInterval: lockDuration, logger: logger, process: process)
    }

    /// A worker with a typed payload and return value.
    public func worker<Payload: Decodable & SendableMetatype, Result: Encodable & SendableMetatype>(
        _ queue: String, concurrency: Int, payload: Payload.Type,
        process: @escaping @Sendable (Payload, Job) async throws -> Result
    ) -> JobWorker {
        JobWorker(queue: queue, address: address, prefix: prefix, concurrency: concurrency,
                  lockDuration: lockDuration, stalledInterval: lockDuration, logger: logger, payload: payload, process: process)
    }

    /// Whether Redis answers a PING within a second, for `/health`.
    public func isReachable() async -> Bool {
        let ping = Task { try? await client.send(["PING"]) }
        let timeout = Task {
            try? await Task.sleep(for: .seconds(1))
            ping.cancel()
        }
        defer { timeout.cancel() }
        return await ping.value != nil
    }

    /// "Run the stage, and what it needs comes up": if Redis is on this
    /// machine and does not answer, start the project's own
    /// (`scripts/infra up redis`, durable: an append-only file, no
    /// eviction). Then warn if the Redis we reach could lose jobs.
    public static func ensureRunning(_ url: String, logger: Logger) async throws {
        let address = try RedisAddress(url: url)
        if (try? await RedisConnection.connect(to: address)) == nil {
            guard InfraScript.isLocal(url) else {
                throw InfraScript.StartError(description: "Redis at \(url) does not answer: start it, or point REDIS_URL at a running one")
            }
            logger.notice("Redis does not answer; starting the project's own", metadata: ["redis": .string(url)])
            guard try await InfraScript.up("redis", environment: ["REDIS_PORT": String(address.port)]) else {
                throw InfraScript.StartError(description: "could not start Redis at \(url); run scripts/setup, then scripts/infra up redis")
            }
        }
        guard let connection = try? await RedisConnection.connect(to: address) else { return }
        defer { connection.close() }
        for warning in await durabilityWarnings(connection) {
            logger.warning("\(warning)", metadata: ["redis": .string(url)])
        }
    }

    /// What makes a Redis a poor job store: keys evicted under memory
    /// pressure (a job that vanishes), or no append-only file (a restart
    /// forgets everything since the last snapshot).
    static func durabilityWarnings(_ connection: RedisConnection) async -> [String] {
        func config(_ name: String) async -> String? {
            guard case .array(let pair)? = try? await connection.send(["CONFIG", "GET", name]), pair.count == 2,
                  case .bulkString(let bytes) = pair[1] else { return nil }
            return String(decoding: bytes, as: UTF8.self)
        }
        var warnings: [String] = []
        if let policy = await config("maxmemory-policy"), policy != "noeviction",
           let limit = await config("maxmemory"), limit != "0" {
            warnings.append("Redis may evict keys (maxmemory \(limit), maxmemory-policy \(policy)): jobs could disappear; set maxmemory-policy noeviction")
        }
        if await config("appendonly") == "no" {
            warnings.append("Redis runs without an append-only file: a restart loses the jobs written since its last snapshot; set appendonly yes")
        }
        return warnings
    }
}

/// A one-time setup of the job store that a service needs before its work
/// (a job scheduler, a queue's rate limit): done at start, tried again
/// every few seconds while Redis is away, then idle until the service
/// stops. (A service of a ServiceGroup that returned would stop the group.)
public struct JobSetup: Service {
    let what: String
    let logger: Logger
    let setup: @Sendable () async throws -> Void

    public init(_ what: String, logger: Logger, _ setup: @escaping @Sendable () async throws -> Void) {
        self.what = what
        self.logger = logger
        self.setup = setup
    }

    public func run() async throws {
        try? await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await setup()
                    break
                } catch {
                    failures += 1
                    if failures == 1 || failures % 20 == 0 {
                        logger.warning("cannot set up \(what) in Redis yet; trying again", metadata: ["error": "\(error)"])
                    }
                    try await Task.sleep(for: .seconds(min(failures, 5)))
                }
            }
            // Nothing more to do; wait for the service to stop.
            while !Task.isCancelled { try await Task.sleep(for: .seconds(3_600)) }
        }
    }
}

/// An error a job's handler throws to fail the attempt with a plain
/// reason (the job's `failedReason`).
public struct JobFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
