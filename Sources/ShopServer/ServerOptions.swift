import ArgumentParser
import Foundation

/// The options every stage's entry point takes. A flag wins over the
/// environment variable, which wins over the default, so the same binary
/// runs on a laptop (`--port 9000`) and under a process manager (`PORT=9000`).
public struct ServerOptions: ParsableArguments, Sendable {
    @Option(help: "Address to listen on (env HOST).")
    public var host: String?

    @Option(help: "Port to listen on; 0 lets the system choose (env PORT; default 8080).")
    public var port: Int?

    @Option(name: .customLong("data-dir"), help: "Folder for this stage's databases and secrets (env DATA_DIR; default .data/<stage> in the current folder).")
    public var dataDir: String?

    public init() {}

    public func resolvedHost() -> String { host ?? Environment.string("HOST") ?? "127.0.0.1" }
    public func resolvedPort(default fallback: Int = 8080) -> Int { port ?? Environment.int("PORT") ?? fallback }

    /// Absolute, created if missing.
    public func resolvedDataDir(stage: String) throws -> URL {
        let path = dataDir ?? Environment.string("DATA_DIR") ?? ".data/\(stage)"
        let url = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            .standardizedFileURL
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Reading settings from the environment, in one place.
public enum Environment {
    public static func string(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
    public static func int(_ name: String) -> Int? { string(name).flatMap(Int.init) }
}
