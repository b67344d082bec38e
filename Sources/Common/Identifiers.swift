/// Ids are opaque strings with a readable prefix (`ord_`, `usr_`, ...), as
/// Stripe does: a log line or a support ticket says what kind of thing an id
/// names, and ids of different kinds can never be confused.
public enum ID {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")  // Crockford base32

    /// `prefix_` followed by 20 random base32 characters (100 bits).
    public static func make(_ prefix: String) -> String {
        var rng = SystemRandomNumberGenerator()
        var out = prefix + "_"
        out.reserveCapacity(prefix.count + 21)
        for _ in 0..<20 { out.append(alphabet[Int(rng.next() % 32)]) }
        return out
    }

    public static let user = "usr", product = "prd", order = "ord", payment = "pay",
        notification = "ntf", invoice = "inv"
}
