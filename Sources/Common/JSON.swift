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

    /// One decoder for every request body: it is safe to share once set up,
    /// and making one per request cost more than decoding a small body.
    static let requestDecoder = decoder()

    /// Decodes a request body, turning Foundation's decoding errors into the
    /// contract's 400 whose message names the offending field
    /// (`items[0].quantity must be an integer`).
    public static func decodeRequest<T: Decodable>(_ type: T.Type, from data: Data) throws(ShopError) -> T {
        if data.isEmpty { throw ShopError(.invalidRequest, "the request body must be a JSON object") }
        do {
            return try requestDecoder.decode(type, from: data)
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
///
/// Written out from integer milliseconds rather than with Foundation's
/// formatter: a `Date` is a Double, and a formatter that truncates the
/// fraction prints 21:11:07.122 for a time stored as 21:11:07.1229999. Going
/// through whole milliseconds makes format → parse → format exact.
public enum Timestamp {
    public static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    public static func format(_ date: Date) -> String {
        let ms = milliseconds(date)
        let days = ms >= 0 ? ms / 86_400_000 : (ms - 86_399_999) / 86_400_000
        let inDay = ms - days * 86_400_000
        let (y, m, d) = civil(fromDays: days)
        func pad(_ n: Int64, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(inDay / 3_600_000, 2)):\(pad(inDay / 60_000 % 60, 2)):"
            + "\(pad(inDay / 1000 % 60, 2)).\(pad(inDay % 1000, 3))Z"
    }

    /// Accepts `YYYY-MM-DDTHH:MM:SSZ` with an optional fraction of 1 to 9
    /// digits (kept to the millisecond); UTC only.
    public static func parse(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count >= 20, b.last == UInt8(ascii: "Z"), b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"),
              b[10] == UInt8(ascii: "T"), b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var n: Int64 = 0
            for i in range {
                guard (48...57).contains(b[i]) else { return nil }
                n = n * 10 + Int64(b[i] - 48)
            }
            return n
        }
        guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10),
              let h = number(11..<13), let mi = number(14..<16), let s = number(17..<19),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        var ms: Int64 = 0
        if b.count > 20 {
            guard b[19] == UInt8(ascii: "."), b.count - 21 >= 1, b.count - 21 <= 9,
                  let fraction = number(20..<(b.count - 1)) else { return nil }
            var scaled = fraction
            var digits = b.count - 21
            while digits > 3 { scaled /= 10; digits -= 1 }
            while digits < 3 { scaled *= 10; digits += 1 }
            ms = scaled
        } else if b.count != 20 {
            return nil
        }
        let total = ((days(fromCivil: y, mo, d) * 24 + h) * 60 + mi) * 60 + s
        return Date(timeIntervalSince1970: Double(total * 1000 + ms) / 1000)
    }

    /// Now, to the millisecond, so that what is stored, sent and compared agree.
    public static func now() -> Date {
        Date(timeIntervalSince1970: Double(milliseconds(Date())) / 1000)
    }

    // Days since 1970-01-01 and back (Howard Hinnant's civil-date algorithms,
    // valid for the proleptic Gregorian calendar).
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
