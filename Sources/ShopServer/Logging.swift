import Common
import Foundation
import Logging
import Observability

/// Structured logs, one line per event, in logfmt (`key=value`), which
/// people read and tools (grep, lnav, Loki) parse:
///
///     2026-11-24T21:40:01.532Z level=info service=stage-1 msg=request request_id=req_… method=POST path=/orders status=201 ms=1.84
///
/// `LOG_FORMAT=json` writes one JSON object per line instead;
/// `LOG_LEVEL` (trace … critical, default info) filters.
///
/// A line written inside a trace carries its `trace_id` (and the hop's
/// `span_id`), wherever it is written from: `grep trace_id=…` over every
/// process's log follows one order through the whole system.
public struct ShopLogHandler: LogHandler {
    public enum Format: Sendable { case logfmt, json }

    public var metadata: Logger.Metadata = [:]
    /// What every line adds from its task: the trace it is in.
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level
    let service: String
    let format: Format

    public init(service: String, level: Logger.Level, format: Format, metadataProvider: Logger.MetadataProvider? = nil) {
        self.service = service
        self.logLevel = level
        self.format = format
        self.metadataProvider = metadataProvider
    }

    /// Installs the handler for the whole process. Call once, first thing in `main`.
    public static func bootstrap(service: String, settings: Settings) {
        let (level, format) = (settings.logLevel, settings.logFormat)
        LoggingSystem.bootstrap({ _, provider in
            ShopLogHandler(service: service, level: level, format: format, metadataProvider: provider)
        }, metadataProvider: .traceIds)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("ts", Timestamp.format(Date())), ("level", event.level.rawValue),
            ("service", service), ("msg", event.message.description),
        ]
        var merged = metadata
        if let provider = metadataProvider { merged.merge(provider.get()) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        // Hummingbird adds its own request id; ours is the one that travels.
        merged.removeValue(forKey: "hb.request.id")
        for key in merged.keys.sorted() { fields.append((key, "\(merged[key]!)")) }

        var line: String
        switch format {
        case .logfmt:
            line = fields.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            line = "{" + fields.map { "\"\($0.0)\":\(Self.jsonString($0.1))" }.joined(separator: ",") + "}"
        }
        line += "\n"
        // One write(2) per line: lines from concurrent requests never interleave.
        line.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
    }

    static func logfmtValue(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0.isNewline }
        guard needsQuotes else { return value }
        return jsonString(value)
    }

    static func jsonString(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Lines meant for the person at the terminal (and scripts waiting on us),
/// written straight to stdout so that they appear at once, even in a pipe.
public enum Console {
    public static func line(_ text: String) {
        var text = text + "\n"
        text.withUTF8 { bytes in _ = write(STDOUT_FILENO, bytes.baseAddress, bytes.count) }
    }
}
