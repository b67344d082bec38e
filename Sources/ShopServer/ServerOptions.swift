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

/// `--etcd`: where discovery lives (stage 3 on).
public struct EtcdOptions: ParsableArguments {
    @Option(help: "etcd's client URL (env ETCD_URL; default http://127.0.0.1:2379).")
    var etcd: String?

    public init() {}

    public var url: String { etcd ?? Environment.string("ETCD_URL") ?? "http://127.0.0.1:2379" }
}

/// `--amqp`: where RabbitMQ is (stage 4 on).
public struct AMQPOptions: ParsableArguments {
    @Option(help: "RabbitMQ's URL (env AMQP_URL; default amqp://guest:guest@127.0.0.1:5672/).")
    var amqp: String?

    public init() {}

    public var url: String { amqp ?? Self.fromEnvironment }

    /// `AMQP_URL`, else the project's local broker.
    public static var fromEnvironment: String { Environment.string("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672/" }
}
