import Foundation
import Observability
import ShopServer
import Spawning
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

    /// One child as the supervisor keeps it. Its stdin is the lifeline:
    /// `ChildProcess` holds our end open for as long as the child runs.
    private struct Running: Sendable {
        let name: String
        let process: ChildProcess
        var url: String?
    }

    private struct State {
        var children: [Running] = []
        /// The arguments of every child started, to recognise one that was
        /// restarted by hand (see `stopAll`).
        var commands: [[String]] = []
        var stopping = false
        /// Keeps the Prometheus targets file up to date (see `listForPrometheus`).
        var targets: (name: String, task: Task<Void, Never>)?
    }

    /// "supervisor", padded to the children's names.
    var label: String { "supervisor".padding(toLength: nameWidth, withPad: " ", startingAt: 0) }

    private let state = Mutex(State())
    private let nameWidth: Int
    /// Whether our own parent holds a lifeline on our stdin (the tests do).
    private let watchParent: Bool
    /// How long `stopAll` gives the children, together, to stop on SIGTERM
    /// before it sends SIGKILL.
    let stopGracePeriod: Duration = .seconds(5)
    let executable: URL
    /// Where the stage's processes are listed for Prometheus; nil: nowhere.
    let prometheusTargets: URL?

    public init(settings: Settings, nameWidth: Int = 10) {
        self.nameWidth = nameWidth
        self.prometheusTargets = settings.prometheusTargets
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
        // The deployment's settings and the lifeline's switch are added to
        // what the child inherits from us.
        let process = try ChildProcess.start(
            executable.path, arguments, environment: (environment.merging(["SHOP_EXIT_ON_STDIN_EOF": "1"]) { $1 }),
            stdin: .pipe, stdout: .pipe, stderr: .stdout)

        // Its output, a line at a time, prefixed with its name, read by a
        // thread of its own (a pipe read blocks).
        let prefix = name.padding(toLength: max(nameWidth, name.count), withPad: " ", startingAt: 0) + " | "
        let listening = AsyncStream<String>.makeStream()
        if let output = process.stdoutPipe {
            let reader = Thread {
                let lines = LineSplitter()
                while true {
                    let data = output.availableData  // blocks; empty at end-of-file
                    if data.isEmpty { break }
                    for line in lines.feed(data) {
                        Console.line(prefix + line)
                        if let range = line.range(of: "listening on http://") {
                            listening.continuation.yield("http://" + line[range.upperBound...].trimmingCharacters(in: .whitespaces))
                        }
                    }
                }
                listening.continuation.finish()
            }
            reader.name = "output of \(name)"
            reader.start()
        }
        // The command that starts it again by hand, with the settings it got
        // from the supervisor (its namespace, the brokers' addresses).
        let settings = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value) " }.joined()
        let again = settings + executable.path + " " + arguments.joined(separator: " ")
        Task { [weak self] in
            let status = await process.exitStatus()
            listening.continuation.finish()
            let reason = status > 128 ? "was killed by signal \(status - 128)" : "exited with status \(status)"
            if let self, !self.isStopping {
                Console.line(self.label + " | \(name) \(reason); the others keep running. Restart it by hand with: \(again)")
                Console.line(self.label + " | (a service restarted by hand runs outside the supervisor; stopping the stage stops it too)")
            }
        }
        state.withLock {
            $0.children.append(Running(name: name, process: process))
            $0.commands.append(arguments)
        }

        let timeout = Task {
            try await Task.sleep(for: deadline)
            listening.continuation.finish()
        }
        defer { timeout.cancel() }
        for await url in listening.stream {
            // The pid, for `kill -9` in the workshop's experiments.
            Console.line(label + " | \(name) is up: pid \(process.pid), \(url)")
            state.withLock { state in
                if let index = state.children.firstIndex(where: { $0.process.pid == process.pid }) { state.children[index].url = url }
            }
            return Child(name: name, url: url, pid: process.pid)
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
    ///
    /// A service that was restarted by hand, with the command printed when
    /// it died, is not our child, but it belongs to this deployment: it gets
    /// SIGTERM too, so that stopping the stage stops all of it (and stage 2's
    /// fixed ports are free for the next start).
    public func stopAll() async {
        let (children, commands, targets) = state.withLock { state in
            state.stopping = true
            return (state.children.reversed().filter { $0.process.isRunning }, state.commands, state.targets)
        }
        if let targets, let folder = prometheusTargets {
            // Cancelled, and waited for: a write under way lands before the
            // file is withdrawn, not after.
            targets.task.cancel()
            await targets.task.value
            ScrapeTargets.withdraw(targets.name, from: folder)
        }
        let ours = Set(children.map(\.process.pid))
        for (pid, name) in Self.restartedByHand(commands: commands, executable: executable.path) where !ours.contains(pid) {
            Console.line(label + " | stopping \(name) (pid \(pid)), restarted by hand")
            kill(pid, SIGTERM)
        }
        guard !children.isEmpty else { return }
        for child in children { child.process.send(SIGTERM) }  // graceful shutdown
        let deadline = ContinuousClock.now + stopGracePeriod
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for child in children { await child.process.exitStatus() }
            }
            group.addTask {
                // Cancelled as soon as every child has exited; otherwise it
                // wakes at the deadline and ends the stragglers.
                try? await Task.sleep(until: deadline)
                guard !Task.isCancelled else { return }
                for child in children where child.process.isRunning {
                    Console.line(self.label + " | \(child.name) did not stop within \(self.stopGracePeriod); killing it")
                    child.process.send(SIGKILL)
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

extension Supervisor {
    /// The children running, with where they listen.
    public var children: [Child] {
        state.withLock { $0.children.compactMap { child in child.url.map { Child(name: child.name, url: $0, pid: child.process.pid) } } }
    }

    /// Tells Prometheus where the stage's processes are (a file in the
    /// folder `scripts/infra up prometheus` watches; see `ScrapeTargets`),
    /// rewritten every 2 s from `list` until the stage stops, then removed.
    /// Stage 2 lists the children; from stage 3 the list comes from etcd.
    public func listForPrometheus(as name: String, _ list: @escaping @Sendable () async -> [ScrapeTargets.Target]) {
        guard let folder = prometheusTargets else { return }
        let task = Task {
            var last: [ScrapeTargets.Target]?
            while !Task.isCancelled {
                let targets = await list()
                // Stopped while listing: `stopAll` withdraws the file.
                guard !Task.isCancelled else { break }
                if targets != last { ScrapeTargets.publish(targets, as: name, in: folder); last = targets }
                try? await Task.sleep(for: .seconds(2))
            }
        }
        state.withLock { state in
            state.targets?.task.cancel()
            state.targets = (name, task)
        }
    }

    /// Processes running this executable with the arguments of one of our
    /// children (`serve payment --host … --data-dir …`): the same service of
    /// the same deployment, started again by hand. Found in /proc, by pid;
    /// the answer names the service.
    static func restartedByHand(commands: [[String]], executable: String) -> [(pid: pid_t, name: String)] {
        guard !commands.isEmpty, let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var found: [(pid_t, String)] = []
        for entry in entries {
            guard let pid = pid_t(entry), pid != getpid(),
                  let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"), !data.isEmpty else { continue }
            let argv = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            guard argv.count > 1, argv[0] == executable || argv[0].hasSuffix("/" + (executable as NSString).lastPathComponent) else { continue }
            let rest = Array(argv.dropFirst().filter { !$0.isEmpty })
            if let command = commands.first(where: { $0 == rest }) {
                found.append((pid, command.count > 1 ? command[1] : "a service"))
            }
        }
        return found
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
