import Auth
import Common

extension ValidOrderRequest {
    /// What an order stores to recognise its request when the same
    /// `Idempotency-Key` comes again: a SHA-256 of the request's canonical
    /// form, so the card number in that text is not kept with the order.
    /// Existing orders hold the same hash, so it must never change.
    public var fingerprint: String { Fingerprint.sha256Hex(canonicalForm) }
}
