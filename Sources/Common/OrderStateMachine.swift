/// The life of an order, the same at every stage:
///
///     pending ──confirm──▶ confirmed ──ship──▶ shipped
///        │                     │
///        └──cancel──▶ cancelled ◀──cancel (refund)
///
/// Stages differ in *who* decides and *when*, never in which transitions exist.
public enum OrderStatus: String, Codable, Sendable, Hashable, CaseIterable {
    case pending, confirmed, shipped, cancelled

    /// An order is decided once it has left `pending`.
    public var isDecided: Bool { self != .pending }

    /// Confirmed and shipped orders are sales; the rest are not.
    public var countsAsSale: Bool { self == .confirmed || self == .shipped }

    public func confirming() throws(ShopError) -> OrderStatus {
        guard self == .pending else {
            throw ShopError(.invalidRequest, "an order can be confirmed only while pending (it is \(rawValue))")
        }
        return .confirmed
    }

    public func cancelling() throws(ShopError) -> OrderStatus {
        guard self == .pending || self == .confirmed else {
            throw ShopError(.orderNotCancellable, "the order is \(rawValue) and can no longer be cancelled")
        }
        return .cancelled
    }

    public func shipping() throws(ShopError) -> OrderStatus {
        guard self == .confirmed else {
            throw ShopError(.orderNotShippable, "only a confirmed order can be shipped (this one is \(rawValue))")
        }
        return .shipped
    }
}

public enum CancelReason: String, Codable, Sendable, Hashable {
    case outOfStock = "out_of_stock"
    case paymentDeclined = "payment_declined"
    case customerRequest = "customer_request"
}

/// `pending` means no money has moved: either the charge has not happened
/// yet, or (an order cancelled for stock before payment) it never will.
public enum PaymentStatus: String, Codable, Sendable, Hashable {
    case pending, captured, declined, refunded
}

/// What the stock check and the charge came to. In stage 1 they happen one
/// after the other in a request; from stage 4 on they arrive as messages in
/// any order. `OrderDecision.decide` gives the same answer either way.
public enum StockOutcome: String, Codable, Sendable { case reserved, rejected }
public enum PaymentOutcome: String, Codable, Sendable { case captured, declined }

public enum OrderDecision: Equatable, Sendable {
    case confirm
    case cancel(CancelReason)

    /// Decides a pending order from what is known so far, or answers nil
    /// when it must wait for the other outcome.
    ///
    /// Out of stock wins over a declined payment (contract rule), so a
    /// declined payment alone cannot decide: the stock answer may still be
    /// "rejected". A rejected stock check decides at once. Whatever was done
    /// by the other side (a capture, a reservation) is then compensated by
    /// the caller: refund a capture, release a reservation.
    public static func decide(stock: StockOutcome?, payment: PaymentOutcome?) -> OrderDecision? {
        switch (stock, payment) {
        case (.rejected?, _): .cancel(.outOfStock)
        case (.reserved?, .declined?): .cancel(.paymentDeclined)
        case (.reserved?, .captured?): .confirm
        default: nil
        }
    }
}
