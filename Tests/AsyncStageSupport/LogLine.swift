import Foundation

/// A line of a stage's log as its fields: logfmt (`key=value`, a value
/// with spaces in quotes), as ShopLogHandler writes it. The trace tests read
/// the real processes' logs with it.
public struct LogLine: Sendable {
    public var fields: [String: String] = [:]

    public init(_ line: Substring) {
        var rest = line[...]
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces)
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(character); escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { break } else { value.append(character) }
                }
            } else {
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            fields[key] = value
            rest = rest.drop { $0 == " " }
        }
    }

    public subscript(key: String) -> String? { fields[key] }

    /// The lines of a log file that belong to a trace.
    public static func lines(of file: URL, trace: String) -> [LogLine] {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.contains("trace_id=\(trace)") }.map { LogLine($0) }
    }

    /// Random lower-case hex, never a zero byte (an all-zero id is invalid).
    public static func hex(_ bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 1...255)) }.joined()
    }
}
