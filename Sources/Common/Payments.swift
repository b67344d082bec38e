/// A card number as the customer typed it, checked and reduced to what the
/// shop may keep. The full number lives only as long as the request.
public struct CardNumber: Sendable, Hashable {
    public let digits: String

    /// Accepts 12 to 19 digits, with spaces or dashes between groups, that
    /// pass the Luhn check. The error names the field it came from.
    public init(_ raw: String, field: String = "paymentMethod.card") throws(ShopError) {
        let digits = raw.filter { $0 != " " && $0 != "-" }
        guard (12...19).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw .invalid(field, "must be a card number of 12 to 19 digits")
        }
        guard Self.passesLuhn(digits) else {
            throw .invalid(field, "is not a valid card number (it fails the Luhn check)")
        }
        self.digits = digits
    }

    public var last4: String { String(digits.suffix(4)) }

    /// The Luhn checksum every card number carries in its last digit: from
    /// the right, double every second digit (subtracting 9 when the result
    /// exceeds 9); the sum must be a multiple of 10. It catches every single
    /// mistyped digit and most swaps of neighbours.
    public static func passesLuhn(_ digits: some StringProtocol) -> Bool {
        var sum = 0
        for (index, character) in digits.reversed().enumerated() {
            guard let digit = character.wholeNumberValue else { return false }
            if index % 2 == 1 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return sum % 10 == 0
    }
}

/// What one attempt to charge a card came to.
public enum ChargeAttempt: Equatable, Sendable {
    case approved
    case declined(DeclineReason)
    /// The provider failed for a reason that may pass: try again later.
    case transientFailure
}

public enum DeclineReason: String, Codable, Sendable {
    case cardDeclined = "card_declined"
    case insufficientFunds = "insufficient_funds"
}

/// The simulated payment provider. Its answers follow the test cards that
/// real providers publish, so the same card gives the same outcome at every
/// stage, and a test can pick the path it wants to walk.
public enum SimulatedCardProcessor {
    public static let approvedCard = "4242424242424242"
    public static let declinedCard = "4000000000000002"
    public static let insufficientFundsCard = "4000000000009995"
    /// Fails with a transient processing error on its first two attempts.
    public static let flakyCard = "4000000000000119"
    public static let flakyFailures = 2

    /// `attempt` counts from 1. The processor keeps no state: whoever
    /// retries carries the attempt number (stage 1 in a loop, stage 4 in a
    /// message header), which is exactly what a retry design must do.
    public static func charge(_ card: CardNumber, attempt: Int) -> ChargeAttempt {
        switch card.digits {
        case declinedCard: .declined(.cardDeclined)
        case insufficientFundsCard: .declined(.insufficientFunds)
        case flakyCard where attempt <= flakyFailures: .transientFailure
        default: .approved
        }
    }
}

/// Exponential backoff: attempt 1 runs at once, then each retry waits
/// `base × factor^(retry-1)`. One type for every stage's retries: stage 1
/// sleeps it in-line, stage 4 turns it into TTLs of retry queues, stage 5
/// into BullMQ's `backoff` option.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int
    public var baseDelayMilliseconds: Int
    public var factor: Int

    public init(maxAttempts: Int, baseDelayMilliseconds: Int, factor: Int = 2) {
        self.maxAttempts = maxAttempts
        self.baseDelayMilliseconds = baseDelayMilliseconds
        self.factor = factor
    }

    /// The delay before `attempt` (2...maxAttempts); nil when there is no
    /// attempt left.
    public func delayMilliseconds(beforeAttempt attempt: Int) -> Int? {
        guard attempt >= 2, attempt <= maxAttempts else { return nil }
        var delay = baseDelayMilliseconds
        for _ in 0..<(attempt - 2) { delay *= factor }
        return delay
    }

    /// Stage 1 retries the charge inside the customer's request, so the
    /// ladder must be short: 10 ms, 20 ms, 40 ms, 80 ms.
    public static let inline = RetryPolicy(maxAttempts: 5, baseDelayMilliseconds: 10)
}
