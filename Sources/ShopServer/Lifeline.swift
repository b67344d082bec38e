import Foundation
import Logging
import ServiceLifecycle

/// Ends the process when its parent goes away. A parent that starts us
/// (the test suite, a stage's supervisor) keeps our stdin open and sets
/// `SHOP_EXIT_ON_STDIN_EOF=1`; when the parent exits, for whatever reason
/// (even kill -9), the kernel closes the pipe and we read end-of-file. No
/// orphaned servers are left holding ports after a crashed test run.
public struct Lifeline: Service {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func run() async throws {
        let (eof, continuation) = AsyncStream<Void>.makeStream()
        // A plain thread, because read(2) blocks until the parent dies.
        let thread = Thread {
            var byte: UInt8 = 0
            while read(STDIN_FILENO, &byte, 1) > 0 {}
            continuation.yield()
            continuation.finish()
        }
        thread.start()
        for await _ in eof.cancelOnGracefulShutdown() {
            logger.notice("parent process is gone (stdin closed): shutting down")
            return
        }
    }
}
