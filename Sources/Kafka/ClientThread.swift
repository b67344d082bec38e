import BlockingThread
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Each client's blocking librdkafka calls (poll, flush, commit, close) run
/// on a thread of its own (`BlockingThread`, which says why). Between jobs
/// the producer and the admin client call `rd_kafka_poll` there (`idle`),
/// which is what serves delivery reports and error callbacks; `wake`
/// (`rd_kafka_yield`) makes it return at once when a job arrives.
typealias ClientThread = BlockingThread<Void>

extension BlockingThread where State == Void {
    convenience init(name: String, idle: (@Sendable () -> Void)? = nil, wake: @escaping @Sendable () -> Void = {}) {
        var onIdle: (@Sendable (inout Void) -> Void)?
        if let idle { onIdle = { (_: inout Void) in idle() } }
        self.init(name: name, makeState: {}, idle: onIdle, wake: wake)
    }

    /// Runs `body` on the thread; `what` names the call if the client is closed.
    func run<T: Sendable>(_ what: String, _ body: @escaping @Sendable () throws(KafkaError) -> T) async throws(KafkaError) -> T {
        try await run(closedError: KafkaError.closed(what)) { (_: inout Void) throws(KafkaError) -> T in try body() }
    }
}
