import Foundation
import Spawning

/// The reference clients on the other side of the wire: pika (RabbitMQ),
/// redis-py and confluent-kafka, run as inline Python scripts. A test that
/// checks what our client wrote with another client, or that sends what
/// another client would send, goes through here.
///
/// They live in the repository's `.venv` (made by `scripts/setup`).
public enum PythonPeer {
    /// `PIKA_PYTHON` or `REDIS_PYTHON` (older names, still honoured), else
    /// the repository's `.venv/bin/python`.
    public static var executable: String {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["PIKA_PYTHON"] ?? environment["REDIS_PYTHON"], !path.isEmpty { return path }
        return Repository.find(".venv/bin/python") ?? ".venv/bin/python"
    }

    /// The peers get the environment the tests were started with. KafkaTests
    /// re-execute the test process with LD_LIBRARY_PATH pointing at a newer
    /// librdkafka (see RdKafkaLibrary); a Python peer loads its own and
    /// should not see ours.
    static let environment: [String: String?] = ["LD_LIBRARY_PATH": nil]

    /// Runs `script` (`python -c script arguments…`) with `input` on stdin
    /// and returns what it printed on stdout. A non-zero exit is an error
    /// that carries the script's stderr.
    public static func run(
        _ script: String, arguments: [String] = [], input: String? = nil, timeout: Duration = .seconds(60)
    ) async throws -> String {
        let python = executable
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ProcessFailure(description: "no Python at \(python): run scripts/setup (it makes .venv with pika, redis and confluent-kafka)")
        }
        let result = try await runProcess(python, ["-c", script] + arguments, environment: environment, input: input, timeout: timeout)
        guard result.status == 0 else {
            let hint = result.stderr.contains("No module named") ? " — run scripts/setup" : ""
            let why = result.timedOut ? "was stopped after \(timeout)" : "failed (\(result.status))"
            throw ProcessFailure(description: "python script \(why) with \(python): \(result.stderr)\(hint)\n\(result.stdout)")
        }
        return result.stdout
    }

    /// Runs a script that prints one JSON object on its last line, and
    /// returns that object.
    public static func runJSON(
        _ script: String, arguments: [String] = [], input: String? = nil, timeout: Duration = .seconds(60)
    ) async throws -> [String: Any] {
        let output = try await run(script, arguments: arguments, input: input, timeout: timeout)
        let line = output.split(separator: "\n").last.map(String.init) ?? ""
        guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ProcessFailure(description: "python script printed no JSON object: \(output)")
        }
        return object
    }

    /// Starts a long-running script that talks over stdin and stdout (a TCP
    /// proxy the test steers, say). Its stderr is the test process's own.
    public static func start(_ script: String, arguments: [String] = []) throws -> RunningPeer {
        RunningPeer(
            process: try ChildProcess.start(
                executable, ["-c", script] + arguments, environment: environment,
                stdin: .pipe, stdout: .pipe, stderr: .inherit))
    }
}

/// A Python script that keeps running while the test talks to it.
public final class RunningPeer: Sendable {
    public let process: ChildProcess

    init(process: ChildProcess) { self.process = process }

    /// The next line the script prints (without its newline); empty at end
    /// of file. The read blocks, so it runs on a thread of its own and the
    /// caller waits on a continuation.
    public func readLine() async -> String {
        guard let output = process.stdoutPipe else { return "" }
        return await withCheckedContinuation { continuation in
            Thread {
                var line = Data()
                while true {
                    // One byte at a time: reading ahead would swallow the
                    // start of the next line, which a later call wants.
                    let byte = output.readData(ofLength: 1)
                    if byte.isEmpty || byte == Data("\n".utf8) { break }
                    line.append(byte)
                }
                continuation.resume(returning: String(decoding: line, as: UTF8.self))
            }.start()
        }
    }

    public func send(_ line: String) {
        try? process.stdinPipe?.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Closes its stdin and sends SIGTERM, without waiting (so that it can
    /// be called from a `defer`); the process is reaped in the background.
    public func stop() {
        try? process.stdinPipe?.close()
        process.send(SIGTERM)
    }
}
