import Foundation
import Redis
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A listening TCP socket on 127.0.0.1 that the test controls, to make a
/// "server" misbehave in exactly one way. Everything stays on loopback.
final class LoopbackListener: @unchecked Sendable {
    let fd: Int32
    let port: Int
    private var extraSockets: [Int32] = []

    init(backlog: Int32) throws {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
        guard let port = FreePort.bindLoopback(fd, listenBacklog: backlog) else {
            closeSocket(fd)
            throw TestFailure("bind/listen: \(errno)")
        }
        self.fd = fd
        self.port = port
    }

    var address: String { "127.0.0.1:\(port)" }

    /// A listener whose accept queue is full and that never accepts, so the
    /// kernel drops new SYNs: a connect to it hangs like one to a host that
    /// does not answer, but without sending anything off this machine.
    static func blackHole() throws -> LoopbackListener {
        let listener = try LoopbackListener(backlog: 0)
        // With backlog 0 the queue holds one connection; fill it (and one
        // more, to be safe), and a third connect finds it full.
        for _ in 0..<2 {
            listener.extraSockets.append(try connectNonBlocking(to: listener.port))
        }
        usleep(100_000)  // let the filler handshakes finish
        return listener
    }

    /// Accepts one pending connection (it must already be queued).
    func acceptOne() -> Int32 {
        let client = accept(fd, nil, nil)
        if client >= 0 { extraSockets.append(client) }
        return client
    }

    /// Closes one accepted connection, as a dying server would, and forgets
    /// it. Closing it directly and then again in `close()` would close a
    /// descriptor number that another test's connection may have been given
    /// in between (tests run in parallel in one process).
    func hangUp(_ socket: Int32) {
        guard let index = extraSockets.firstIndex(of: socket) else { return }
        extraSockets.remove(at: index)
        closeSocket(socket)
    }

    func close() {
        for socket in extraSockets { closeSocket(socket) }
        extraSockets.removeAll()
        closeSocket(fd)
    }

    private static func connectNonBlocking(to port: Int) throws -> Int32 {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return fd
    }
}

private func closeSocket(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #else
    _ = Darwin.close(fd)
    #endif
}

/// Starts a program and waits for it to exit; returns its exit status.
///
/// Made for programs that daemonize (redis-server --daemonize yes): the
/// child gets /dev/null for stdin/stdout/stderr and no other descriptor of
/// ours. Otherwise the daemon would hold on to whatever was open here (the
/// test runner's output pipe, which CI waits on to see EOF; a listening
/// socket another test is about to close) for as long as it runs.
func spawnAndWait(_ executable: String, _ arguments: [String]) async throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // The child inherits the signal mask of the thread that spawns it, and
    // this runs on a thread where the runtime may have blocked signals: the
    // server would then ignore SIGTERM. Start it with nothing blocked and
    // default dispositions, like a shell would.
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var allSignals = sigset_t()
    sigfillset(&allSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &allSignals)
    var flags = Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
    #if canImport(Glibc)
    // glibc 2.34+ has posix_spawn_file_actions_addclosefrom_np, but Swift's
    // Glibc module does not import it (it is a GNU extension), so look it up.
    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
    if let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") {
        _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
    }
    #else
    flags |= Int16(POSIX_SPAWN_CLOEXEC_DEFAULT)
    #endif
    posix_spawnattr_setflags(&attributes, flags)

    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid = pid_t()
    let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    guard result == 0 else { throw TestFailure("cannot start \(executable): \(String(cString: strerror(result)))") }

    // waitpid blocks, so it gets a thread of its own rather than one of the
    // cooperative pool's. A daemonizing parent exits within milliseconds.
    let child = pid
    let status: Int32 = await withCheckedContinuation { continuation in
        Thread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) == -1 && errno == EINTR {}
            continuation.resume(returning: status)
        }.start()
    }
    // The W* macros are not imported into Swift: exited normally when the
    // low 7 bits are 0, exit code in the next 8.
    return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// True while `pid` is alive. A process that has exited but not been reaped
/// (a zombie) counts as gone: a daemon's parent has exited, and in a
/// container whose PID 1 does not reap, it stays a zombie for good.
func isProcessRunning(_ pid: pid_t) -> Bool {
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

/// Runs a program to the end and returns its exit status and output
/// (stdout then stderr). Waits with a continuation on the termination
/// handler rather than `waitUntilExit()`, which would block a thread of
/// Swift's cooperative pool.
func runProcess(_ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    let status: Int32 = try await withCheckedThrowingContinuation { continuation in
        process.terminationHandler = { process in
            continuation.resume(returning: process.terminationStatus)
        }
        do {
            try process.run()
        } catch {
            process.terminationHandler = nil
            continuation.resume(throwing: error)
        }
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    return (status, String(decoding: data, as: UTF8.self))
}

/// The package's Python with redis-py (`.venv`, made with `python3 -m venv
/// .venv && .venv/bin/pip install redis`), used to check that what Swift
/// wrote is what another client reads.
enum Python {
    static var executable: String? {
        if let path = ProcessInfo.processInfo.environment["REDIS_PYTHON"] { return path }
        // Tests/RedisTests/Support/Sockets.swift -> the package root.
        let root = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let path = root.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    static var isAvailable: Bool { executable != nil }

    /// Runs `code` with `r` bound to a redis-py client of `address`; returns
    /// what it printed.
    static func run(_ code: String, against address: RedisAddress) async throws -> String {
        guard let executable else { throw TestFailure("no .venv/bin/python with redis-py: run scripts/setup") }
        let program = """
            import redis, sys, json
            r = redis.Redis(host=\(quoted: address.host), port=\(address.port))
            \(code)
            """
        let result = try await runProcess(executable, ["-c", program])
        guard result.status == 0 else { throw TestFailure("python failed (\(result.status)): \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension DefaultStringInterpolation {
    /// A Python string literal.
    mutating func appendInterpolation(quoted text: String) {
        appendLiteral("'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'")
    }
}
