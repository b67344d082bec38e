import Foundation
import Redis
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A redis-server for the tests (RedisTests, JobsTests): one started here on a free loopback port,
/// or the one REDIS_URL / REDIS_PORT points at.
///
/// Started with `--daemonize yes --pidfile`, so it runs as its own process
/// and the pid file is how we stop it (or kill it, for the reconnection
/// tests). `--save ''` keeps it from writing dump files anywhere.
public final class RedisTestServer: Sendable {
    public let address: RedisAddress
    /// nil when the server came from the environment: not ours to stop.
    private let files: (pid: String, log: String)?

    /// The server of the suite that is running, set by `.redisServer`.
    @TaskLocal public static var current: RedisTestServer?

    private init(address: RedisAddress, files: (pid: String, log: String)?) {
        self.address = address
        self.files = files
    }

    public var port: Int { address.port }

    /// The environment's server if one is named, else a new one.
    public static func fromEnvironmentOrStart() async throws -> RedisTestServer {
        let environment = ProcessInfo.processInfo.environment
        if let url = environment["REDIS_URL"], !url.isEmpty {
            return RedisTestServer(address: try RedisAddress(url: url), files: nil)
        }
        if let port = environment["REDIS_PORT"].flatMap(Int.init) {
            return RedisTestServer(address: RedisAddress(host: "127.0.0.1", port: port), files: nil)
        }
        return try await start()
    }

    /// Starts a private server. Tests that kill the server always use one.
    public static func start(port: Int? = nil) async throws -> RedisTestServer {
        let port = try port ?? freeLoopbackPort()
        let directory = FileManager.default.temporaryDirectory.path
        let server = RedisTestServer(
            address: RedisAddress(host: "127.0.0.1", port: port),
            files: (pid: "\(directory)/redis-test-\(port).pid", log: "\(directory)/redis-test-\(port).log")
        )
        try await server.launch()
        return server
    }

    /// Runs `body` with a server of its own, stopped afterwards whatever
    /// happens (a `defer` can't await, and an unstructured task might not
    /// run before the test process exits, leaving the daemon behind).
    public static func withPrivateServer(_ body: (RedisTestServer) async throws -> Void) async throws {
        let server = try await start()
        do {
            try await body(server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    /// (Re)starts the process on this server's port and waits until it
    /// answers PING.
    public func launch() async throws {
        guard let files else { return }
        guard let executable = Self.findExecutable("redis-server") else {
            throw TestFailure("redis-server not found on PATH (apt-get install -y redis-server)")
        }
        try? FileManager.default.removeItem(atPath: files.pid)
        // TestSupport's runner waits for the process it started (the one
        // that forks the daemon and exits within milliseconds) with waitpid
        // on a thread of its own, and gives the child none of our
        // descriptors: the daemon cannot hold on to the test runner's
        // output pipe (which CI waits on to see EOF) for as long as it runs.
        let result = try await runProcess(executable, [
            "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "yes", "--pidfile", files.pid, "--logfile", files.log,
        ], timeout: .seconds(10))
        guard result.status == 0 else {
            throw TestFailure("redis-server exited with \(result.status) starting on port \(port): \(result.stderr)\(result.stdout); see \(files.log)")
        }
        let address = self.address
        do {
            try await Poll.until("redis-server on port \(port) answers PING", within: .seconds(10), every: .milliseconds(50)) { () async throws -> Bool? in
                let fast = RedisConfiguration(connectTimeout: .milliseconds(200), commandTimeout: .seconds(1))
                let connection = try await RedisConnection.connect(to: address, configuration: fast)
                defer { connection.close() }
                return try await connection.ping() == "PONG" ? true : nil
            }
        } catch {
            throw TestFailure("\(error); see \(files.log)")
        }
    }

    /// Ends the process with `signal` (SIGKILL: no goodbye to clients) and
    /// waits until it is gone, so the port is free for a restart.
    public func stop(signal: Int32 = SIGTERM) async {
        guard let files,
              let text = try? String(contentsOfFile: files.pid, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return }
        kill(pid, signal)
        // Not a child of ours (it daemonized), so there is no exit to wait
        // for: ask until it is gone. Giving up after 10 s leaves the next
        // launch to fail and say why.
        _ = try? await Poll.until("redis-server \(pid) has exited", within: .seconds(10)) {
            isProcessRunning(pid) ? nil : true
        }
        try? FileManager.default.removeItem(atPath: files.pid)
    }

    public var canBeStopped: Bool { files != nil }

    public static func findExecutable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/bin", "/usr/sbin"] {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}

/// Suite trait: one server for the whole suite, torn down after it.
/// Deliberately a SuiteTrait only (not a TestTrait), so the scope wraps the
/// suite once rather than every test.
public struct RedisServerTrait: SuiteTrait, TestScoping {
    public init() {}

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        let server = try await RedisTestServer.fromEnvironmentOrStart()
        do {
            try await RedisTestServer.$current.withValue(server) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

extension Trait where Self == RedisServerTrait {
    public static var redisServer: Self { RedisServerTrait() }
}

/// The suite's server, or a failed test that says why there is none.
public func currentServer() throws -> RedisTestServer {
    guard let server = RedisTestServer.current else {
        throw TestFailure("no Redis server: add .redisServer to the suite")
    }
    return server
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A key no other test uses, so tests need no FLUSHDB between them.
public func uniqueKey(_ name: String = #function) -> String {
    "test:\(name.prefix(while: { $0 != "(" })):\(UInt32.random(in: 0...UInt32.max))"
}

/// A port nothing listens on right now.
public func freeLoopbackPort() throws -> Int { try FreePort.find() }

/// True while `pid` is alive. A process that has exited but not been reaped
/// (a zombie) counts as gone: a daemon's parent has exited, and in a
/// container whose PID 1 does not reap, it stays a zombie for good.
public func isProcessRunning(_ pid: pid_t) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    #if os(Linux)
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")")
    else { return false }
    // The state letter follows the ")" that ends the command name.
    return !stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    #else
    return true
    #endif
}
