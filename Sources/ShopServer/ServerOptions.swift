import ArgumentParser

/// The flags every stage's entry point takes. Each has an environment
/// variable behind it; `Settings` puts the two together (a flag wins), so
/// the same binary runs on a laptop (`--port 9000`) and under a process
/// manager (`PORT=9000`).
public struct ServerOptions: ParsableArguments, Sendable {
    @Option(help: "Address to listen on (env HOST).")
    public var host: String?

    @Option(help: "Port to listen on; 0 lets the system choose (env PORT; default 8080).")
    public var port: Int?

    @Option(name: .customLong("data-dir"), help: "Folder for this stage's databases and secrets (env DATA_DIR; default .data/<stage> in the current folder).")
    public var dataDir: String?

    public init() {}
}

/// `--etcd`: where discovery lives (stage 3 on).
public struct EtcdOptions: ParsableArguments, Sendable {
    @Option(help: "etcd's client URL (env ETCD_URL; default http://127.0.0.1:2379).")
    public var etcd: String?

    public init() {}
}

/// `--amqp`: where RabbitMQ is (stage 4 on).
public struct AMQPOptions: ParsableArguments, Sendable {
    @Option(help: "RabbitMQ's URL (env AMQP_URL; default amqp://guest:guest@127.0.0.1:5672/).")
    public var amqp: String?

    public init() {}
}
