/// Money is always an integer number of cents. Floating point never touches a
/// price: 0.1 + 0.2 is not 0.3 in binary, and a shop that loses a cent per
/// order loses it a million times.
public typealias Cents = Int

/// The contract has one currency. Keeping it a type (not a bare string)
/// makes the day a second one arrives a compile error instead of a bug.
public enum Currency: String, Codable, Sendable, Hashable {
    case usd = "USD"
}

/// Upper bounds that keep every total far inside `Int64`:
/// 50 lines × 10,000 units × $1,000,000.00 = 5 × 10^13 cents.
public enum Limits {
    public static let maxPriceCents: Cents = 100_000_000
    public static let maxQuantityPerLine = 10_000
    public static let maxLinesPerOrder = 50
    public static let maxRestockQuantity = 1_000_000
    public static let maxInitialStock = 1_000_000_000
    /// Request bodies larger than this are refused with 413 before parsing.
    public static let maxBodyBytes = 1 << 20
}
