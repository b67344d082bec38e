import Crypto

/// Short names that must come out the same in every process and every
/// release, derived from text with SHA-256: an order request's fingerprint
/// (for `Idempotency-Key`), a deployment's namespace, a dead letter's id.
/// Swift's own `hashValue` will not do: it is seeded afresh in every process.
public enum Fingerprint {
    /// The SHA-256 of the text's UTF-8, as 64 lower-case hex digits.
    public static func sha256Hex(_ text: String) -> String {
        let digits = Array("0123456789abcdef")
        var hex = ""
        hex.reserveCapacity(64)
        for byte in SHA256.hash(data: Array(text.utf8)) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0f)])
        }
        return hex
    }
}
