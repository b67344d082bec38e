import Foundation

public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Runs a program to completion on a thread of its own (never blocking the
/// cooperative pool), killing it after `timeout`.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) async throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardOutput = stdout
    process.standardError = stderr
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let watchdog = Task {
        try await Task.sleep(for: timeout)
        process.terminate()
    }
    defer { watchdog.cancel() }
    return await withCheckedContinuation { continuation in
        Thread {
            // Read both pipes to the end before waiting, so a chatty child
            // cannot fill a pipe and block forever.
            nonisolated(unsafe) var errorData = Data()
            let reader = Thread { errorData = stderr.fileHandleForReading.readDataToEndOfFile() }
            reader.start()
            let output = stdout.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            while !reader.isFinished { usleep(1000) }
            continuation.resume(
                returning: ProcessResult(
                    status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self),
                    stderr: String(decoding: errorData, as: UTF8.self)))
        }.start()
    }
}

/// The project's tools, found by walking up from this file to the repository.
public enum Repository {
    public static func find(_ relative: String) -> String? {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(relative).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }

    /// The Python with the real clients in it (pika, redis, confluent-kafka):
    /// `PIKA_PYTHON`, else the repository's `.venv` (made by `scripts/setup`).
    public static var python: String {
        ProcessInfo.processInfo.environment["PIKA_PYTHON"] ?? find(".venv/bin/python") ?? ".venv/bin/python"
    }

    public static var infraScript: String {
        ProcessInfo.processInfo.environment["INFRA_SCRIPT"] ?? find("scripts/infra") ?? "scripts/infra"
    }

    /// Runs a Python script that prints one JSON object on its last line.
    public static func runPython(_ script: String, _ arguments: [String], timeout: Duration = .seconds(60)) async throws -> [String: Any] {
        let result = try await runProcess(python, ["-c", script] + arguments, timeout: timeout)
        guard result.status == 0 else {
            throw ProcessFailure(
                description: "python script failed (\(result.status)) with \(python): \(result.stderr)"
                    + (result.stderr.contains("No module named") ? " — run scripts/setup" : ""))
        }
        let line = result.stdout.split(separator: "\n").last.map(String.init) ?? ""
        guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ProcessFailure(description: "python script printed no JSON object: \(result.stdout)")
        }
        return object
    }
}
