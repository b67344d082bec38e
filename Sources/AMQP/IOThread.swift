import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The one thread that talks to librabbitmq for a connection.
///
/// librabbitmq keeps per-connection state without locks, and its calls
/// block (socket reads and writes, RPCs waiting for their reply). Both facts
/// point the same way: give every connection one dedicated OS thread that
/// makes all of its C calls, one after the other, and never let a C call
/// run on Swift's cooperative thread pool, whose few threads would stall
/// every other task while a call waits on the network.
///
/// The async API hands work over as jobs (closures receiving the
/// thread-confined `ConnectionCore`) and waits for their result with a
/// continuation. Between jobs the thread sleeps in `poll` on two
/// descriptors: the broker's socket (frames to read) and a pipe that
/// `submit` writes to when a job arrives while it sleeps.
final class IOThread: Sendable {
    typealias Job = @Sendable (ConnectionCore) -> Void

    private struct Queue {
        var jobs: [Job] = []
        /// The thread is (about to be) blocked in poll and needs the pipe to
        /// wake up; when false, a new job is picked up without a syscall.
        var sleeping = false
        var stopping = false
    }

    private let queue = Mutex(Queue())
    private let wakeReader: Int32
    private let wakeWriter: Int32
    private let configuration: AMQPConfiguration

    init(configuration: AMQPConfiguration) {
        self.configuration = configuration
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { fatalError("pipe() failed: \(String(cString: strerror(errno)))") }
        for fd in fds {
            // Non-blocking, so draining never blocks; close-on-exec, so child
            // processes (tests start Python) do not inherit them.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        wakeReader = fds[0]
        wakeWriter = fds[1]
    }

    deinit {
        close(wakeReader)
        close(wakeWriter)
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "amqp-io"
        thread.start()
    }

    /// Queues a job. Returns false once the thread is stopping: the job will
    /// never run and the caller must report the connection as closed.
    @discardableResult
    func submit(_ job: @escaping Job) -> Bool {
        let wake: Bool? = queue.withLock { queue in
            guard !queue.stopping else { return nil }
            queue.jobs.append(job)
            defer { queue.sleeping = false }
            return queue.sleeping
        }
        guard let wake else { return false }
        if wake { signal() }
        return true
    }

    /// Lets the queued jobs run, then ends the thread. The core's C state is
    /// freed on the thread itself, never concurrently with a call.
    func stop() {
        queue.withLock { $0.stopping = true }
        signal()
    }

    private func signal() {
        var byte: UInt8 = 1
        _ = write(wakeWriter, &byte, 1)
    }

    private func drainWakeups() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeReader, &buffer, buffer.count) > 0 {}
    }

    private func run() {
        // librabbitmq writes with send(..., MSG_NOSIGNAL) on Linux (checked
        // in the 0.11 binary), so a write to a socket the broker closed
        // returns EPIPE instead of raising SIGPIPE. Blocking the signal on
        // this thread anyway keeps a stray write elsewhere in the C code (or
        // a build without MSG_NOSIGNAL, such as macOS, which relies on
        // SO_NOSIGPIPE) from killing the whole process: SIGPIPE is delivered
        // to the thread that wrote, and a blocked one just stays pending.
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &signals, nil)

        let core = ConnectionCore(configuration: configuration)
        var descriptors = [
            pollfd(fd: wakeReader, events: Int16(POLLIN), revents: 0),
            pollfd(fd: -1, events: Int16(POLLIN), revents: 0),
        ]
        var readable = false
        var timedOut = false
        var moreFrames = false

        while true {
            let (jobs, stopping) = queue.withLock { queue in
                let jobs = queue.jobs
                queue.jobs.removeAll(keepingCapacity: true)
                return (jobs, queue.stopping)
            }
            for job in jobs { job(core) }
            if stopping && jobs.isEmpty { break }

            // Read when the socket said so, when a job's RPC left frames in
            // librabbitmq's queue, or on the heartbeat tick.
            if readable || timedOut || moreFrames || core.hasBufferedInput {
                moreFrames = core.pump()
            }
            // Confirms read just now may have opened room in a publish window.
            core.driveBatches()

            let sleep = queue.withLock { queue -> Bool in
                guard queue.jobs.isEmpty, !queue.stopping, !moreFrames else { return false }
                queue.sleeping = true
                return true
            }
            descriptors[1].fd = core.socketDescriptor
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            // Sleeping: until a frame, a job or the heartbeat tick. Busy: a
            // zero-timeout look at the socket, so a steady stream of jobs
            // cannot starve the reading of confirms.
            let ready = poll(&descriptors, 2, sleep ? core.idleTimeoutMilliseconds : 0)
            if sleep { queue.withLock { $0.sleeping = false } }
            timedOut = sleep && ready == 0
            readable = descriptors[1].revents != 0
            if descriptors[0].revents != 0 { drainWakeups() }
        }
        core.shutDown()
    }
}

extension IOThread {
    /// Runs `body` on the I/O thread and returns its result.
    func perform<T: Sendable>(
        _ body: @escaping @Sendable (ConnectionCore) throws(AMQPError) -> T
    ) async throws(AMQPError) -> T {
        let result: Result<T, AMQPError> = await withCheckedContinuation { continuation in
            let accepted = submit { core in
                continuation.resume(returning: Result { () throws(AMQPError) -> T in try body(core) })
            }
            if !accepted { continuation.resume(returning: .failure(.connectionClosed)) }
        }
        return try result.get()
    }

    /// Runs `body` on the I/O thread; the result comes later, when `body`'s
    /// completion is called (also on the I/O thread): a publish confirm,
    /// the end of a batch, the end of the connection.
    func performWaiting<T: Sendable>(
        _ body: @escaping @Sendable (ConnectionCore, @escaping (Result<T, AMQPError>) -> Void) -> Void
    ) async throws(AMQPError) -> T {
        let result: Result<T, AMQPError> = await withCheckedContinuation { continuation in
            let accepted = submit { core in
                body(core) { continuation.resume(returning: $0) }
            }
            if !accepted { continuation.resume(returning: .failure(.connectionClosed)) }
        }
        return try result.get()
    }
}
