import Foundation
import ShopServer
import Synchronization

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
public final class Supervisor: Sendable {
    public struct Child: Sendable {
        public let name: String
        /// Where it listens, from its "listening on" line.
        public let url: String
        public let pid: Int32
    }

    /// One child as the supervisor keeps it. `@unchecked Sendable`:
    /// Foundation's `Process` is safe to ask and signal from any thread, but
    /// is not marked Sendable on every platform.
    private struct Running: @unchecked Sendable {
        let name: String
        let process: Process
        let lifeline: Pipe
        let exit: ExitSignal
    }

    private struct State {
        var children: [Running] = []
        var stopping = false
    }

    private let state = Mutex(State())
    private let nameWidth: Int
    /// Whether our own parent holds a lifeline on our stdin (the tests do).
    private let watchParent: Bool
    /// How long `stopAll` gives the children, together, to stop on SIGTERM
    /// before it sends SIGKILL.
    let stopGracePeriod: Duration = .seconds(5)
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
        let exit = ExitSignal()
        process.terminationHandler = { [weak self] process in
            exit.signal()
            listening.continuation.finish()
            let reason = process.terminationReason == .uncaughtSignal ? "was killed by signal \(process.terminationStatus)" : "exited with status \(process.terminationStatus)"
            if self?.isStopping == false {
                Console.line("supervisor".padding(toLength: self?.nameWidth ?? 10, withPad: " ", startingAt: 0) + " | \(name) \(reason); the others keep running (restart it with: \(again))")
            }
        }
        try process.run()
        state.withLock { $0.children.append(Running(name: name, process: process, lifeline: lifeline, exit: exit)) }

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

    var isStopping: Bool { state.withLock { $0.stopping } }

    /// Starts the children with `startAll`, then runs until stopped. If one
    /// of them cannot start, the ones already running are stopped too, and
    /// the error says which.
    public func run(_ startAll: (Supervisor) async throws -> Void) async throws {
        do {
            try await startAll(self)
        } catch {
            await stopAll()
            throw error
        }
        await runUntilStopped()
    }

    /// Waits for SIGINT or SIGTERM (or, when our own parent holds a
    /// lifeline, for its end), then stops every child (see `stopAll`).
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
        await stopAll()
        _ = sources
    }

    /// Stops every child: SIGTERM to all of them (newest first, so the
    /// entry point hears it before the services it calls), then one wait
    /// for all of them together, then SIGKILL for any still running when
    /// `stopGracePeriod` is up.
    ///
    /// Together, because the children shut down in parallel anyway: waiting
    /// for each in turn made a stage with six services take up to six grace
    /// periods to stop. And without blocking: the wait is on the children's
    /// termination handlers, so no thread of Swift's cooperative pool (two
    /// on a two-core machine) is held while they finish.
    public func stopAll() async {
        let children = state.withLock { state in
            state.stopping = true
            return state.children.reversed().filter { $0.process.isRunning }
        }
        guard !children.isEmpty else { return }
        for child in children { child.process.terminate() }  // SIGTERM: graceful shutdown
        let deadline = ContinuousClock.now + stopGracePeriod
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for child in children { await child.exit.wait() }
            }
            group.addTask {
                // Cancelled as soon as every child has exited; otherwise it
                // wakes at the deadline and ends the stragglers.
                try? await Task.sleep(until: deadline)
                guard !Task.isCancelled else { return }
                for child in children where child.process.isRunning {
                    Console.line("supervisor".padding(toLength: self.nameWidth, withPad: " ", startingAt: 0)
                        + " | \(child.name) did not stop within \(self.stopGracePeriod); killing it")
                    kill(child.process.processIdentifier, SIGKILL)
                }
            }
            // Whichever finishes first: all exited (then the timer is
            // cancelled), or the deadline (then the waiter finishes once
            // the killed ones are gone).
            await group.next()
            group.cancelAll()
        }
    }
}

/// A child's exit, for async code to wait on: signalled once by the
/// process's termination handler.
private final class ExitSignal: Sendable {
    private struct State {
        var exited = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func signal() {
        let waiters = state.withLock { state in
            state.exited = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let exited = state.withLock { state in
                if !state.exited { state.waiters.append(continuation) }
                return state.exited
            }
            if exited { continuation.resume() }
        }
    }
}

public struct SupervisorError: Error, CustomStringConvertible {
    public let description: String
}

/// Turns chunks of output into whole lines.
final class LineSplitter: Sendable {
    private let pending = Mutex(Data())

    func feed(_ data: Data) -> [String] {
        pending.withLock { pending in
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
