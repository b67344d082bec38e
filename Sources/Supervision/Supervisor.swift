import Foundation
import ShopServer

/// Runs the processes of a stage as children of one command, the way a
/// small process manager (foreman, honcho) does: each child's output is
/// prefixed with its name, a line says when one exits, and Ctrl-C (or
/// SIGTERM) stops them all. A child that dies stays dead, so that you can
/// watch the rest of the system cope; start it again by hand
/// (`stage-N serve <name>`).
///
/// Children are started from this same executable (`stage-N serve …`), and
/// each gets a lifeline on its stdin: if the supervisor itself is killed,
/// the children see end-of-file and stop too (see ShopServer's `Lifeline`).
public final class Supervisor: @unchecked Sendable {
    public struct Child: Sendable {
        public let name: String
        /// Where it listens, from its "listening on" line.
        public let url: String
        public let pid: Int32
    }

    private let lock = NSLock()
    private var processes: [(name: String, process: Process, lifeline: Pipe)] = []
    private var stopping = false
    private let nameWidth: Int
    /// Whether our own parent holds a lifeline on our stdin (the tests do).
    private let watchParent: Bool
    let executable: URL

    public init(settings: Settings, nameWidth: Int = 10) {
        self.nameWidth = nameWidth
        self.watchParent = settings.exitWhenParentExits
        // /proc/self/exe is this very binary, however it was started.
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        self.executable = URL(fileURLWithPath: path)
    }

    /// Starts `self serve …` as a child and waits until it prints that it is
    /// listening (or exits, or `deadline` passes).
    public func start(
        _ name: String, arguments: [String], environment: [String: String] = [:], deadline: Duration = .seconds(60)
    ) async throws -> Child {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        env["SHOP_EXIT_ON_STDIN_EOF"] = "1"
        process.environment = env
        let lifeline = Pipe()
        let output = Pipe()
        process.standardInput = lifeline
        process.standardOutput = output
        process.standardError = output

        let prefix = name.padding(toLength: max(nameWidth, name.count), withPad: " ", startingAt: 0) + " | "
        let listening = AsyncStream<String>.makeStream()
        let lines = LineSplitter()
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil; return }
            for line in lines.feed(data) {
                Console.line(prefix + line)
                if let range = line.range(of: "listening on http://") {
                    listening.continuation.yield("http://" + line[range.upperBound...].trimmingCharacters(in: .whitespaces))
                }
            }
        }
        // The command that starts it again by hand, with the settings it got
        // from the supervisor (its namespace, the brokers' addresses).
        let settings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value) " }.joined()
        let again = settings + executable.path + " " + arguments.joined(separator: " ")
        process.terminationHandler = { [weak self] process in
            listening.continuation.finish()
            let reason = process.terminationReason == .uncaughtSignal ? "was killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
            if self?.isStopping == false {
                Console.line("supervisor".padding(toLength: self?.nameWidth ?? 10, withPad: " ", startingAt: 0) + " | \(name) \(reason); the others keep running (restart it with: \(again))")
            }
        }
        try process.run()
        lock.withLock { processes.append((name, process, lifeline)) }

        let timeout = Task {
            try await Task.sleep(for: deadline)
            listening.continuation.finish()
        }
        defer { timeout.cancel() }
        for await url in listening.stream {
            return Child(name: name, url: url, pid: process.processIdentifier)
        }
        throw SupervisorError(description: "\(name) did not start: it exited or did not listen within \(deadline) (its output is above)")
    }

    var isStopping: Bool { lock.withLock { stopping } }

    /// Starts the children with `startAll`, then runs until stopped. If one
    /// of them cannot start, the ones already running are stopped too, and
    /// the error says which.
    public func run(_ startAll: (Supervisor) async throws -> Void) async throws {
        do {
            try await startAll(self)
        } catch {
            stopAll()
            throw error
        }
        await runUntilStopped()
    }

    /// Waits for SIGINT or SIGTERM (or, when our own parent holds a
    /// lifeline, for its end), then stops every child, newest first: the
    /// entry point goes before the services it calls.
    public func runUntilStopped() async {
        let signals = AsyncStream<String>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig)
            source.setEventHandler { signals.continuation.yield(sig == SIGINT ? "interrupt" : "terminate") }
            source.resume()
            sources.append(source)
        }
        if watchParent {
            Thread {
                var byte: UInt8 = 0
                while read(STDIN_FILENO, &byte, 1) > 0 {}
                signals.continuation.yield("parent gone")
            }.start()
        }
        for await reason in signals.stream {
            Console.line("supervisor".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + " | \(reason): stopping all")
            break
        }
        stopAll()
        _ = sources
    }

    public func stopAll() {
        let children = lock.withLock { stopping = true; return processes.reversed() }
        for child in children where child.process.isRunning {
            child.process.terminate()  // SIGTERM: graceful shutdown
            let deadline = Date().addingTimeInterval(5)
            while child.process.isRunning && Date() < deadline { usleep(20_000) }
            if child.process.isRunning { kill(child.process.processIdentifier, SIGKILL) }
        }
    }
}

public struct SupervisorError: Error, CustomStringConvertible {
    public let description: String
}

/// Turns chunks of output into whole lines.
final class LineSplitter: @unchecked Sendable {
    private var pending = Data()
    private let lock = NSLock()

    func feed(_ data: Data) -> [String] {
        lock.withLock {
            pending.append(data)
            var lines: [String] = []
            while let newline = pending.firstIndex(of: 0x0a) {
                lines.append(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                pending.removeSubrange(pending.startIndex...newline)
            }
            return lines
        }
    }
}
