import BlockingThread
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a connection's thread owns. It is created, used and freed on that
/// thread only, which is why it can hold the non-Sendable `HiredisContext`.
struct ConnectionState {
    /// The live hiredis handle; nil before connecting and after a failure.
    var context: HiredisContext?
    /// Why the connection stopped working, repeated to every later call.
    var failure: RedisError?
}

/// Each connection's blocking hiredis calls run on a thread of its own
/// (`BlockingThread`, which says why), with the connection's state on it.
typealias ConnectionThread = BlockingThread<ConnectionState>

extension BlockingThread where State == ConnectionState {
    /// The hiredis handle lives, and is freed, on the thread.
    static func forConnection(name: String) -> ConnectionThread {
        ConnectionThread(name: name, makeState: { ConnectionState() }, prepare: blockSIGPIPE)
    }

    /// hiredis 0.14 writes with write(2), not send(2) with MSG_NOSIGNAL. If
    /// Redis goes away mid-write, the kernel raises SIGPIPE, whose default
    /// action kills the whole process. The usual fix, ignoring SIGPIPE
    /// process-wide, changes behavior for code that isn't ours. Blocking it on
    /// this thread only is enough: the signal from write(2) is sent to the
    /// thread that wrote, stays pending (harmlessly) while blocked, and the
    /// write fails with EPIPE, which hiredis reports as an I/O error.
    static func blockSIGPIPE() {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)
    }
}
