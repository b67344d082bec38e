import Foundation
import Spawning
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The one way the tests run other programs: the stages, Python peers,
// scripts/infra, redis-server, openapi-spec-validator.
//
// The rule it keeps: nothing here blocks a thread of Swift's cooperative
// pool. That pool has one thread per core (two on the workshop's machines);
// a `waitUntilExit()`, `waitpid` or blocking pipe read on one of them stalls
// every other task of the test process for as long as it lasts, and timing
// assertions elsewhere ("refused at once", "timed out after 300 ms") then
// fail for no fault of the code they test. So a child's exit is waited for
// by a thread of its own, and async callers wait on a continuation.

/// What a program that ran to the end said.
public struct ProcessResult: Sendable {
    /// The exit code, or 128 + the signal number if a signal ended it.
    public let status: Int32
    public let stdout: String
    public let stderr: String
    /// True if `runProcess` had to stop it at its timeout.
    public let timedOut: Bool
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Runs a program to the end and returns its exit status and output.
///
/// - `environment` is added to this process's own; a nil value removes
///   that variable.
/// - `input` is the child's stdin (else /dev/null, so it can never wait on
///   the terminal).
/// - After `timeout` the child gets SIGTERM, and SIGKILL 5 s later.
///
/// Output goes to temporary files rather than pipes: a pipe that nobody
/// reads fills at 64 KiB and then blocks a chatty child forever, and a
/// daemon the child starts (redis-server --daemonize) would keep a pipe
/// open long after the child itself has exited.
public func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String?] = [:],
    input: String? = nil, timeout: Duration = .seconds(60)
) async throws -> ProcessResult {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("test-process-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let out = folder.appendingPathComponent("stdout"), err = folder.appendingPathComponent("stderr")

    let child = try ChildProcess.start(
        executable, arguments, environment: environment,
        stdin: input.map { .bytes(Array($0.utf8)) } ?? .null, stdout: .file(out), stderr: .file(err))
    let watchdog = Task {
        try await Task.sleep(for: timeout)
        await child.terminate(grace: .seconds(5))
        return true
    }
    let status = await child.exitStatus()
    watchdog.cancel()
    let timedOut = (try? await watchdog.value) ?? false
    return ProcessResult(
        status: status,
        stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
        stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "",
        timedOut: timedOut)
}

/// The project's tools, found by walking up from this file to the repository.
public enum Repository {
    /// The repository's root: `SHOP_ROOT`, else the first folder above this
    /// file that holds `scripts/infra`.
    public static let root: String? = {
        if let root = ProcessInfo.processInfo.environment["SHOP_ROOT"], !root.isEmpty { return root }
        return find("scripts/infra").map {
            URL(fileURLWithPath: $0).deletingLastPathComponent().deletingLastPathComponent().path
        }
    }()

    public static func find(_ relative: String) -> String? {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(relative).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }

    public static var infraScript: String {
        ProcessInfo.processInfo.environment["INFRA_SCRIPT"] ?? find("scripts/infra") ?? "scripts/infra"
    }
}
