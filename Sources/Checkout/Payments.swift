import Common
import Foundation
import GRDB
import Storage
import Logging

/// Charges and refunds against the simulated card processor.
public struct Payments: Sendable {
    let retry: RetryPolicy

    public init(retry: RetryPolicy) { self.retry = retry }

    /// Charges in-line, inside the customer's request: a transient failure
    /// is retried after a short backoff while the customer waits. This is
    /// the monolith's way, and its weakness: a slow provider makes every
    /// checkout slow. Stage 4 moves retries to queues.
    public func charge(_ card: CardNumber, orderId: String, logger: Logger) async -> (outcome: PaymentOutcome, attempts: Int) {
        var attempt = 1
        while true {
            switch SimulatedCardProcessor.charge(card, attempt: attempt) {
            case .approved:
                return (.captured, attempt)
            case .declined(let reason):
                logger.info("charge declined", metadata: ["order_id": .string(orderId), "reason": .string(reason.rawValue)])
                return (.declined, attempt)
            case .transientFailure:
                guard let delay = retry.delayMilliseconds(beforeAttempt: attempt + 1) else {
                    logger.warning("charge failed on every attempt", metadata: ["order_id": .string(orderId), "attempts": .stringConvertible(attempt)])
                    return (.declined, attempt)
                }
                logger.info("transient payment error, retrying", metadata: [
                    "order_id": .string(orderId), "attempt": .stringConvertible(attempt), "delay_ms": .stringConvertible(delay)])
                try? await Task.sleep(for: .milliseconds(delay))
                attempt += 1
            }
        }
    }

    /// Records a money movement. `UNIQUE(orderId, kind)` makes a second
    /// charge or refund of the same order impossible.
    public func record(_ kind: PaymentRecord.Kind, outcome: PaymentStatus, amount: Cents, attempts: Int, orderId: String, in db: Database) throws {
        try PaymentRecord(
            id: ID.make(ID.payment), orderId: orderId, kind: kind, outcome: outcome,
            amountCents: amount, attempts: attempts, createdAt: Timestamp.now()
        ).insertOnce(db)
    }
}
