import Common
import Foundation

/// Any JSON value, kept as it was: a dead letter's payload, a job's data, a
/// domain event's `data` before it is decoded into a type.
///
/// Numbers are Doubles, as in JavaScript: exact for integers up to 2^53,
/// which covers every amount and quantity of the shop. A whole number is
/// written back without a ".0", so `{"quantity":2}` survives a round trip as
/// it was and not as `2.0`, which a strict reader would take for a
/// fraction.
public enum JSONValue: Codable, Sendable, Hashable {
    case null, bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n):
            if n == n.rounded(), abs(n) < 9e15 { try c.encode(Int64(n)) } else { try c.encode(n) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

// MARK: Reading and changing a value by hand
//
// An upcaster (Events) rewrites an old event's data into the new shape
// without a Swift type for the old version: these make that read like the
// JSON it is, `data["currency"] = "EUR"`.

extension JSONValue {
    /// An object's member; nil when absent or when this is not an object.
    /// Setting nil removes the member. Only an object has members: setting
    /// one on anything else is a programming error (the schema said object).
    public subscript(key: String) -> JSONValue? {
        get {
            guard case .object(let members) = self else { return nil }
            return members[key]
        }
        set {
            guard case .object(var members) = self else {
                preconditionFailure("JSONValue: cannot set member '\(key)' on \(self), which is not an object")
            }
            members[key] = newValue
            self = .object(members)
        }
    }

    /// An array's element; nil when out of range or when this is not an array.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var numberValue: Double? { if case .number(let n) = self { n } else { nil } }
    /// The number when it is a whole number that fits an Int.
    public var intValue: Int? {
        guard case .number(let n) = self, n == n.rounded(), abs(n) < 9e15 else { return nil }
        return Int(n)
    }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }
    public var isNull: Bool { self == .null }

    /// Parses JSON text (any value at the top, not only an object).
    public init(parsing bytes: some Sequence<UInt8>) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    /// A Codable value as JSON, written the project's way (`JSON.encoder()`:
    /// dates as ISO-8601 strings), so that it reads back with `decode`.
    public init(encoding value: some Encodable) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: JSON.encoder().encode(value))
    }

    /// The project's JSON text of this value (sorted keys, stable).
    public func encoded() -> [UInt8] {
        // Encoding a JSONValue cannot fail: every case is plain JSON.
        Array((try? JSON.encoder().encode(self)) ?? Data("null".utf8))
    }
}

// Literals, so that tests and upcasters can write `["quantity": 2]`.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
