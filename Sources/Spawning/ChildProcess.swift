import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Starting other programs without blocking a thread of Swift's cooperative
// pool: that pool has one thread per core (two on the workshop's machines),
// and a `waitUntilExit()`, `waitpid` or blocking pipe read on one of them
// stalls every other task of the process for as long as it lasts. So a
// child's exit is waited for by a thread of its own, and async callers wait
// on a continuation.

public struct SpawnError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// A program this process started, running or finished: the supervisor's
/// children (a stage's services), and everything the tests run.
///
/// Started with `posix_spawn` rather than Foundation's `Process`, for four
/// reasons (the fourth: on Linux, Foundation's `Process` watches its children
/// through libdispatch, and a supervisor whose child was killed crashed once
/// inside libdispatch's event loop, taking a whole stage down): the child gets only the descriptors we name (stdin, stdout,
/// stderr) and none of ours, so a daemon or a stage cannot keep our pipes or
/// listening sockets open; it starts with no signals blocked whatever the
/// spawning thread had blocked, so SIGTERM reaches it; and its exit is seen
/// by `waitpid` on a thread of its own, which works for a child that
/// daemonizes too (Foundation on Linux watches a descriptor the child
/// inherits, which a daemon keeps open after its parent has exited).
public final class ChildProcess: Sendable {
    /// What the child reads on stdin.
    public enum Input: Sendable {
        case null
        /// A pipe whose writing end is `stdinPipe`; closing it gives the
        /// child end-of-file (the stages' "lifeline").
        case pipe
        /// These bytes, then end-of-file.
        case bytes([UInt8])
    }

    /// Where the child's stdout or stderr goes.
    public enum Output: Sendable {
        case null
        /// Appended to this file (created if missing).
        case file(URL)
        /// Ours: the child writes to the test process's own stream.
        case inherit
        /// A pipe whose reading end is `stdoutPipe` (stdout only).
        case pipe
        /// Where stdout goes (stderr only): one stream of both, in order.
        case stdout
    }

    public let pid: pid_t
    /// Our end of the child's stdin, with `Input.pipe`.
    public let stdinPipe: FileHandle?
    /// Our end of the child's stdout, with `Output.pipe`.
    public let stdoutPipe: FileHandle?
    private let exit: ExitWatch

    private init(pid: pid_t, stdinPipe: FileHandle?, stdoutPipe: FileHandle?, exit: ExitWatch) {
        self.pid = pid
        self.stdinPipe = stdinPipe
        self.stdoutPipe = stdoutPipe
        self.exit = exit
    }

    public static func start(
        _ executable: String, _ arguments: [String], environment: [String: String?] = [:],
        stdin: Input = .null, stdout: Output = .null, stderr: Output = .null
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Descriptors to close here once the child has its copies.
        var childEnds: [Int32] = []
        defer { for fd in childEnds { close(fd) } }

        var stdinPipe: FileHandle?
        var stdinFile: URL?
        switch stdin {
        case .null:
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .pipe:
            let (read, write) = try makePipe()
            posix_spawn_file_actions_adddup2(&actions, read, 0)
            childEnds.append(read)
            stdinPipe = FileHandle(fileDescriptor: write, closeOnDealloc: true)
        case .bytes(let bytes):
            // A file, not a pipe: nobody has to stay around to write it.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("test-stdin-\(UUID().uuidString)")
            try Data(bytes).write(to: file)
            stdinFile = file
            posix_spawn_file_actions_addopen(&actions, 0, file.path, O_RDONLY, 0)
        }
        // The child has opened it by the time posix_spawn returns (or the
        // spawn failed), so the name can go at once.
        defer { if let stdinFile { try? FileManager.default.removeItem(at: stdinFile) } }

        var stdoutPipe: FileHandle?
        for (fd, output) in [(Int32(1), stdout), (Int32(2), stderr)] {
            switch output {
            case .null:
                posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            case .file(let url):
                posix_spawn_file_actions_addopen(&actions, fd, url.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .inherit:
                break
            case .stdout:
                precondition(fd == 2, "only stderr can follow stdout")
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
            case .pipe:
                precondition(fd == 1, "only stdout can be a pipe")
                let (read, write) = try makePipe()
                posix_spawn_file_actions_adddup2(&actions, write, 1)
                childEnds.append(write)
                stdoutPipe = FileHandle(fileDescriptor: read, closeOnDealloc: true)
            }
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child inherits the signal mask of the thread that spawns it,
        // and the Swift runtime may have blocked signals on this one: a
        // stage would then ignore SIGTERM. Start it with nothing blocked and
        // default dispositions, like a shell would.
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        #if canImport(Glibc)
        // Close every descriptor above stderr in the child. glibc 2.34+ has
        // posix_spawn_file_actions_addclosefrom_np, but Swift's Glibc module
        // does not import it (a GNU extension), so it is looked up by name.
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        if let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
        }
        #else
        flags |= Int32(POSIX_SPAWN_CLOEXEC_DEFAULT)
        #endif
        posix_spawnattr_setflags(&attributes, Int16(flags))

        // The child inherits this process's environment as it is (the
        // environment block is passed on, never read here). Changes go
        // through env(1), which unsets and sets them and then execs the
        // program: the pid stays the child's own.
        var command = [executable] + arguments
        if !environment.isEmpty {
            let unset = environment.filter { $0.value == nil }.keys.sorted().flatMap { ["-u", $0] }
            let set = environment.compactMap { name, value in value.map { "\(name)=\($0)" } }.sorted()
            command = ["/usr/bin/env"] + unset + set + command
        }
        let argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }

        var pid = pid_t()
        let result = posix_spawn(&pid, command[0], &actions, &attributes, argv, environ)
        guard result == 0 else {
            try? stdinPipe?.close()
            try? stdoutPipe?.close()
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid, stdinPipe: stdinPipe, stdoutPipe: stdoutPipe, exit: ExitWatch(pid: pid, holding: stdinPipe))
    }

    /// A pipe whose two ends are closed in any program started later: only
    /// the child we dup2 an end into may hold it, or its end-of-file would
    /// never come.
    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }

    public var isRunning: Bool { exit.status == nil }

    /// The exit status if it has exited (128 + signal if a signal ended it).
    public var terminationStatus: Int32? { exit.status }

    /// Waits for the child to exit, without holding a thread.
    @discardableResult
    public func exitStatus() async -> Int32 { await exit.wait() }

    /// Sends `signal` if it still runs (never to a pid it has already
    /// given back, which the system may have reused).
    public func send(_ signal: Int32) {
        exit.ifRunning { _ = Foundation.kill(pid, signal) }
    }

    /// SIGTERM, then SIGKILL if it is still there after `grace`; returns
    /// once it has exited.
    @discardableResult
    public func terminate(grace: Duration = .seconds(10)) async -> Int32 {
        send(SIGTERM)
        let killer = Task {
            try await Task.sleep(for: grace)
            send(SIGKILL)
        }
        defer { killer.cancel() }
        return await exitStatus()
    }

    /// SIGKILL, as a crash or the OOM killer would end it; returns once it
    /// has exited.
    @discardableResult
    public func kill() async -> Int32 {
        send(SIGKILL)
        return await exitStatus()
    }
}

/// Reaps one child on a thread of its own (`waitpid` blocks) and tells
/// whoever waits, through continuations, which hold no thread.
private final class ExitWatch: Sendable {
    private struct State {
        var status: Int32?
        var waiters: [CheckedContinuation<Int32, Never>] = []
    }
    private let state = Mutex(State())

    /// `holding` stays open until the child exits, even if nothing else
    /// keeps it: our end of a stage's stdin is its lifeline, and a stage
    /// that the tests share runs until the test process ends.
    init(pid: pid_t, holding: FileHandle?) {
        let thread = Thread { [self] in
            withExtendedLifetime(holding) { reap(pid) }
        }
        thread.name = "waitpid \(pid)"
        thread.start()
    }

    private func reap(_ pid: pid_t) {
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
        // The W* macros are not imported into Swift: exited normally when
        // the low 7 bits are 0, with the exit code in the next 8.
        let status = raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        let waiters = state.withLock { state in
            state.status = status
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: status) }
    }

    var status: Int32? { state.withLock { $0.status } }

    /// Runs `body` while the child has not been reaped, holding the lock so
    /// that the reaping cannot happen in between.
    func ifRunning(_ body: () -> Void) {
        state.withLock { if $0.status == nil { body() } }
    }

    func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let done: Int32? = state.withLock { state in
                if let status = state.status { return status }
                state.waiters.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
    }
}

