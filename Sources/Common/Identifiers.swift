/// Ids are opaque strings with a readable prefix (`ord_`, `usr_`, ...), as
/// Stripe does: a log line or a support ticket says what kind of thing an id
/// names, and ids of different kinds can never be confused.
public enum ID {
    private static let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")  // Crockford base32

    /// `prefix_` followed by 20 random base32 characters (100 bits). Two
    /// 64-bit draws give 20 five-bit characters: each draw is a system call
    /// for fresh randomness, and ids are made on every request.
    public static func make(_ prefix: String) -> String {
        var rng = SystemRandomNumberGenerator()
        var out = prefix + "_"
        out.reserveCapacity(prefix.count + 21)
        for var bits in [rng.next(), rng.next()] {
            for _ in 0..<10 {
                out.append(alphabet[Int(bits & 31)])
                bits >>= 5
            }
        }
        return out
    }

    public static let user = "usr", product = "prd", order = "ord", payment = "pay",
        notification = "ntf", invoice = "inv"
}
