import Foundation

/// One reply from Redis, in the shapes RESP2 (the protocol hiredis 0.14
/// speaks) has.
///
/// Bulk strings are bytes, not `String`: Redis values are binary-safe and a
/// job payload or a serialized object need not be UTF-8. The decoders below
/// turn them into `String`/`Int`/`Double` where the caller knows what to
/// expect, and say what they got when they are wrong.
public enum RESPValue: Sendable, Hashable {
    /// "+OK": a short status line.
    case simpleString(String)
    /// "-ERR ...": an error reply. `send` throws these; in a pipeline they are
    /// kept as values so one failed command does not hide the others' replies.
    case error(String)
    /// ":42".
    case integer(Int)
    /// "$3\r\nfoo": a binary-safe string.
    case bulkString([UInt8])
    /// "$-1" or "*-1": no value (GET of a missing key, a blocking pop that
    /// timed out). hiredis does not tell the two apart, so neither do we.
    case null
    /// "*2\r\n...": a list of replies, possibly nested.
    case array([RESPValue])
}

// MARK: - Decoders

extension RESPValue {
    /// True for `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A simple or bulk string as text. Throws for `.null`, so use
    /// `optionalString` when the key may be missing.
    public var string: String {
        get throws(RedisError) {
            switch self {
            case .simpleString(let text):
                return text
            case .bulkString(let bytes):
                // Not `String(decoding:)`, which would quietly replace bad
                // bytes with U+FFFD: a value that is not text is an error here.
                guard let text = String(bytes: bytes, encoding: .utf8) else {
                    throw .unexpectedReply(expected: "UTF-8 text", got: self)
                }
                return text
            case .error(let message):
                throw RedisError(serverMessage: message)
            default:
                throw .unexpectedReply(expected: "a string", got: self)
            }
        }
    }

    /// Like `string`, with `.null` as `nil`.
    public var optionalString: String? {
        get throws(RedisError) {
            if isNull { return nil }
            return try string
        }
    }

    /// An integer reply, or a string holding a decimal integer (GET of a
    /// counter answers with a bulk string "5", not with ":5").
    public var int: Int {
        get throws(RedisError) {
            switch self {
            case .integer(let value):
                return value
            case .simpleString, .bulkString:
                guard let value = Int(try string) else {
                    throw .unexpectedReply(expected: "an integer", got: self)
                }
                return value
            case .error(let message):
                throw RedisError(serverMessage: message)
            default:
                throw .unexpectedReply(expected: "an integer", got: self)
            }
        }
    }

    /// Like `int`, with `.null` as `nil`.
    public var optionalInt: Int? {
        get throws(RedisError) {
            if isNull { return nil }
            return try int
        }
    }

    /// A floating-point number sent as a string (scores: ZSCORE, BZPOPMIN).
    /// Redis writes infinities as "inf"/"-inf", which `Double(_:)` reads.
    public var double: Double {
        get throws(RedisError) {
            if case .integer(let value) = self { return Double(value) }
            guard let value = Double(try string) else {
                throw .unexpectedReply(expected: "a number", got: self)
            }
            return value
        }
    }

    /// The raw bytes of a simple or bulk string.
    public var bytes: [UInt8] {
        get throws(RedisError) {
            switch self {
            case .bulkString(let bytes):
                return bytes
            case .simpleString(let text):
                return Array(text.utf8)
            case .error(let message):
                throw RedisError(serverMessage: message)
            default:
                throw .unexpectedReply(expected: "a bulk string", got: self)
            }
        }
    }

    /// Like `bytes`, with `.null` as `nil`.
    public var optionalBytes: [UInt8]? {
        get throws(RedisError) {
            if isNull { return nil }
            return try bytes
        }
    }

    /// The elements of an array reply. (Named `elements`, not `array`, so it
    /// does not read like the enum case.)
    public var elements: [RESPValue] {
        get throws(RedisError) {
            switch self {
            case .array(let values):
                return values
            case .error(let message):
                throw RedisError(serverMessage: message)
            default:
                throw .unexpectedReply(expected: "an array", got: self)
            }
        }
    }

    /// Like `elements`, with `.null` as `nil`.
    public var optionalElements: [RESPValue]? {
        get throws(RedisError) {
            if isNull { return nil }
            return try elements
        }
    }

    /// Throws if this is an error reply, else returns the value unchanged:
    /// for pipelines, whose replies come back as values.
    public func checked() throws(RedisError) -> RESPValue {
        if case .error(let message) = self { throw RedisError(serverMessage: message) }
        return self
    }
}

// MARK: - Printing

extension RESPValue: CustomStringConvertible {
    /// Close to what redis-cli shows, so a failing test or an error message
    /// can be read without a debugger. Bytes that are not text are shown as
    /// escapes rather than dropped.
    public var description: String {
        switch self {
        case .simpleString(let text):
            return text
        case .error(let message):
            return "(error) \(message)"
        case .integer(let value):
            return "(integer) \(value)"
        case .null:
            return "(nil)"
        case .bulkString(let bytes):
            var text = "\""
            for byte in bytes.prefix(200) {
                switch byte {
                case UInt8(ascii: "\""): text += "\\\""
                case UInt8(ascii: "\\"): text += "\\\\"
                case 0x20..<0x7f: text.unicodeScalars.append(Unicode.Scalar(byte))
                default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
                }
            }
            if bytes.count > 200 { text += "...(\(bytes.count) bytes)" }
            return text + "\""
        case .array(let values):
            return "[" + values.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
