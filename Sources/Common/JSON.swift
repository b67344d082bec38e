import Foundation

/// One JSON configuration for the whole project: times as ISO-8601 UTC with
/// milliseconds (so "newest first" survives a round trip), keys sorted so
/// that output is stable and diffable.
public enum JSON {
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(Timestamp.format(date))
        }
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO-8601 time")
            }
            return date
        }
        return decoder
    }

    /// Decodes a request body, turning Foundation's decoding errors into the
    /// contract's 400 whose message names the offending field
    /// (`items[0].quantity must be an integer`).
    public static func decodeRequest<T: Decodable>(_ type: T.Type, from data: Data) throws(ShopError) -> T {
        if data.isEmpty { throw ShopError(.invalidRequest, "the request body must be a JSON object") }
        do {
            return try decoder().decode(type, from: data)
        } catch let error as DecodingError {
            if case .dataCorrupted(let context) = error, context.codingPath.isEmpty,
               let field = firstNonIntegerNumber(in: data) {
                // Foundation reports a fraction or an out-of-range number in
                // an integer field as "not valid JSON", without a path. The
                // body *is* valid JSON, so find the number and name its field.
                throw ShopError.invalid(field, "must be an integer")
            }
            throw describe(error)
        } catch {
            throw ShopError(.invalidRequest, "the request body is not valid JSON")
        }
    }

    /// The path of the first number in the document that is not a whole
    /// number within Int64, or nil when the data is not JSON at all. Every
    /// number in this contract is an integer (cents, quantities).
    static func firstNonIntegerNumber(in data: Data) -> String? {
        guard let root = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else { return nil }
        func search(_ value: Any, _ path: String) -> String? {
            switch value {
            case let object as [String: Any]:
                for key in object.keys.sorted() {
                    if let found = search(object[key]!, path.isEmpty ? key : path + "." + key) { return found }
                }
            case let array as [Any]:
                for (index, element) in array.enumerated() {
                    if let found = search(element, path + "[\(index)]") { return found }
                }
            case let number as NSNumber:
                let double = number.doubleValue
                if double.rounded() != double || abs(double) > 9.2e18 { return path }
            default:
                break
            }
            return nil
        }
        return search(root, "")
    }

    static func describe(_ error: DecodingError) -> ShopError {
        func path(_ codingPath: [any CodingKey], adding key: (any CodingKey)? = nil) -> String {
            var text = ""
            for k in codingPath + (key.map { [$0] } ?? []) {
                if let index = k.intValue { text += "[\(index)]" } else { text += text.isEmpty ? k.stringValue : "." + k.stringValue }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            return .invalid(path(context.codingPath, adding: key), "is required")
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            return field.isEmpty
                ? ShopError(.invalidRequest, "the request body must be a JSON object")
                : .invalid(field, "must be \(typeName(type))")
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if field.isEmpty { return ShopError(.invalidRequest, "the request body is not valid JSON") }
            // Foundation reports a number too large for Int this way.
            return .invalid(field, "has a value that is not allowed here (\(context.debugDescription.prefix(80)))")
        @unknown default:
            return ShopError(.invalidRequest, "the request body could not be read")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type: "an integer"
        case is Bool.Type: "true or false"
        case is Double.Type: "a number"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : "an object"
        }
    }
}

/// ISO-8601 in UTC with milliseconds: `2026-11-24T21:11:07.123Z`.
public enum Timestamp {
    private static let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let plain = Date.ISO8601FormatStyle()

    public static func format(_ date: Date) -> String { style.format(date) }

    public static func parse(_ text: String) -> Date? {
        (try? style.parse(text)) ?? (try? plain.parse(text))
    }

    /// Times are kept to the millisecond everywhere, so that what the
    /// database stores, what the JSON says and what a test compares agree.
    public static func now() -> Date {
        Date(timeIntervalSinceReferenceDate: (Date().timeIntervalSinceReferenceDate * 1000).rounded(.down) / 1000)
    }
}
