/// The contract's input rules, in one place, so that every stage (and every
/// service that takes the same input) refuses exactly the same requests with
/// exactly the same messages.
public enum Validate {
    /// A pragmatic address check: one `@`, a non-empty local part, a domain
    /// with a dot, no spaces or control characters, at most 254 characters
    /// (the SMTP limit). Deliverability is the mail server's job, not ours.
    public static func email(_ raw: String, field: String = "email") throws(ShopError) -> String {
        let email = raw.trimmingWhitespace()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.count <= 254,
              parts.count == 2,
              !parts[0].isEmpty, parts[0].count <= 64,
              parts[1].contains("."),
              !parts[1].hasPrefix("."), !parts[1].hasSuffix("."), !parts[1].contains(".."),
              email.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f })
        else {
            throw .invalid(field, "must be an email address such as ada@example.com")
        }
        return email
    }

    /// Emails compare case-insensitively (contract); we store them as typed
    /// and compare their lowercased form.
    public static func normalizedEmail(_ email: String) -> String { email.lowercased() }

    /// bcrypt reads at most 72 bytes of a password; a longer one would be
    /// silently cut, so it is refused instead.
    public static func password(_ password: String, field: String = "password") throws(ShopError) {
        guard password.count >= 8 else { throw .invalid(field, "must be at least 8 characters long") }
        guard password.utf8.count <= 72 else { throw .invalid(field, "must be at most 72 bytes long") }
    }

    public static func name(_ raw: String, field: String = "name") throws(ShopError) -> String {
        let name = raw.trimmingWhitespace()
        guard !name.isEmpty else { throw .invalid(field, "must not be empty") }
        guard name.count <= 200 else { throw .invalid(field, "must be at most 200 characters long") }
        return name
    }

    public static func sku(_ raw: String, field: String = "sku") throws(ShopError) -> String {
        let sku = raw.trimmingWhitespace()
        guard !sku.isEmpty, sku.count <= 64,
              sku.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f })
        else { throw .invalid(field, "must be 1 to 64 printable ASCII characters without spaces") }
        return sku
    }

    public static func description(_ raw: String, field: String = "description") throws(ShopError) -> String {
        guard raw.count <= 10_000 else { throw .invalid(field, "must be at most 10,000 characters long") }
        return raw
    }

    public static func priceCents(_ cents: Int, field: String = "priceCents") throws(ShopError) -> Cents {
        guard cents > 0 else { throw .invalid(field, "must be greater than 0") }
        guard cents <= Limits.maxPriceCents else { throw .invalid(field, "must be at most \(Limits.maxPriceCents)") }
        return cents
    }

    public static func initialStock(_ units: Int, field: String = "initialStock") throws(ShopError) -> Int {
        guard units >= 0 else { throw .invalid(field, "must be 0 or more") }
        guard units <= Limits.maxInitialStock else { throw .invalid(field, "must be at most \(Limits.maxInitialStock)") }
        return units
    }

    public static func restockQuantity(_ units: Int, field: String = "quantity") throws(ShopError) -> Int {
        guard units > 0 else { throw .invalid(field, "must be greater than 0") }
        guard units <= Limits.maxRestockQuantity else { throw .invalid(field, "must be at most \(Limits.maxRestockQuantity)") }
        return units
    }

    /// Ids in paths and bodies: refuse anything that cannot be one of ours
    /// early, with a message, instead of a confusing lookup miss.
    public static func id(_ raw: String, field: String) throws(ShopError) -> String {
        guard !raw.isEmpty, raw.count <= 64,
              raw.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f })
        else { throw .invalid(field, "must be an id such as prd_0123456789abcdefghjk") }
        return raw
    }

    /// `Idempotency-Key`: 1 to 255 printable ASCII characters, as Stripe allows.
    public static func idempotencyKey(_ raw: String) throws(ShopError) -> String {
        guard !raw.isEmpty, raw.count <= 255,
              raw.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7f })
        else { throw ShopError(.invalidRequest, "the Idempotency-Key header must be 1 to 255 printable ASCII characters") }
        return raw
    }
}

/// An order request after validation: lines are unique, quantities in
/// range, the card passes Luhn. Only this type reaches the order logic.
public struct ValidOrderRequest: Sendable, Hashable {
    public struct Line: Sendable, Hashable {
        public let productId: String
        public let quantity: Int
    }
    public let lines: [Line]
    public let card: CardNumber

    public init(_ request: API.PlaceOrderRequest) throws(ShopError) {
        let items = request.items
        guard !items.isEmpty else { throw .invalid("items", "must contain at least 1 line") }
        guard items.count <= Limits.maxLinesPerOrder else {
            throw .invalid("items", "must contain at most \(Limits.maxLinesPerOrder) lines (it has \(items.count))")
        }
        var seen = Set<String>()
        var lines: [Line] = []
        for (index, item) in items.enumerated() {
            let id = try Validate.id(item.productId, field: "items[\(index)].productId")
            guard item.quantity >= 1 else { throw .invalid("items[\(index)].quantity", "must be at least 1") }
            guard item.quantity <= Limits.maxQuantityPerLine else {
                throw .invalid("items[\(index)].quantity", "must be at most \(Limits.maxQuantityPerLine)")
            }
            guard seen.insert(id).inserted else {
                throw .invalid("items[\(index)].productId", "repeats a product already in the order; use one line per product with its total quantity")
            }
            lines.append(Line(productId: id, quantity: item.quantity))
        }
        self.lines = lines
        self.card = try CardNumber(request.paymentMethod.card)
    }

    /// What was asked, as one canonical text, for `Idempotency-Key`: the same
    /// key with the same request answers the same order; with another request
    /// it is a client bug (409). Whitespace or key order in the JSON does not
    /// matter, because the text is made after parsing.
    ///
    /// Orders store a hash of it (Checkout's `fingerprint`), never the text,
    /// which holds the card number. The hashing is not done here because
    /// Common is the pure domain: no I/O and no framework, so every module
    /// and test can use it without building a crypto library.
    public var canonicalForm: String {
        lines.map { "\($0.productId)*\($0.quantity)" }.joined(separator: ",") + "|" + card.digits
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
