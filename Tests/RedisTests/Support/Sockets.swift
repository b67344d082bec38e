import Foundation
import Redis
import RedisTestSupport
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
    static func blackHole() async throws -> LoopbackListener {
        let listener = try LoopbackListener(backlog: 0)
        // With backlog 0 the queue holds one connection; fill it (and one
        // more, to be safe), and a third connect finds it full.
        for _ in 0..<2 {
            listener.extraSockets.append(try connectNonBlocking(to: listener.port))
        }
        // Wait until the filler's handshake has finished and it sits in the
        // accept queue: a listening socket polls readable exactly then. (A
        // fixed pause would be too short on a busy machine, and would block
        // a cooperative thread if it were usleep.)
        do {
            try await Poll.until("a connection is queued on the black hole", within: .seconds(5), every: .milliseconds(2)) {
                listener.hasQueuedConnection ? true : nil
            }
        } catch {
            listener.close()
            throw error
        }
        return listener
    }

    /// True when a connection waits in the accept queue (poll with no wait).
    private var hasQueuedConnection: Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1 && entry.revents & Int16(POLLIN) != 0
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

/// redis-py (TestSupport's Python peer) bound to a server, used to check
/// that what Swift wrote is what another client reads.
enum RedisPy {
    /// Runs `code` with `r` bound to a redis-py client of `address`; returns
    /// what it printed.
    static func run(_ code: String, against address: RedisAddress) async throws -> String {
        let program = """
            import redis, sys, json
            r = redis.Redis(host=\(quoted: address.host), port=\(address.port))
            \(code)
            """
        return try await PythonPeer.run(program).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension DefaultStringInterpolation {
    /// A Python string literal.
    mutating func appendInterpolation(quoted text: String) {
        appendLiteral("'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'") + "'")
    }
}
