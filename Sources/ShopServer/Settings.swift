import Foundation
import Logging

/// Everything a process of the shop is told when it starts, read once: a
/// flag wins over its environment variable, which wins over the default.
/// The entry point (a stage's `Command.swift`) builds one from its flags and
/// `ProcessInfo.processInfo.environment` and passes it down; nothing below
/// the entry point reads the environment, so a library's behaviour depends
/// only on what it was given, and a test gives it exactly that.
///
/// The README's "Running a stage" table lists every variable read here.
public struct Settings: Sendable {
    // Where the process listens and keeps its data.
    public var host: String
    /// nil: the service's own default (8080 for an entry point).
    public var port: Int?
    /// `--data-dir`, `DATA_DIR`; nil: `.data/<stage>` under the current folder.
    public var dataDir: String?

    // Tokens and the first administrator (see `Credentials`).
    /// `JWT_SECRET`; nil: a development secret kept in the data folder.
    public var jwtSecret: String?
    public var tokenLifetimeSeconds: Int
    public var adminEmail: String
    public var adminPassword: String
    public var bcryptCost: UInt8

    // Logs.
    public var logLevel: Logger.Level
    public var logFormat: ShopLogHandler.Format
    /// `SHOP_EXIT_ON_STDIN_EOF=1`: the parent keeps our stdin open, and we
    /// stop when it closes (see `Lifeline`).
    public var exitWhenParentExits: Bool

    // The order side of stages 1 to 3.
    /// `GROUP_COMMIT=off`: every order transaction commits on its own.
    public var groupCommit: Bool
    /// `PAYMENT_RETRY_BASE_MS`: the first step of the in-line card retry.
    public var paymentRetryBaseMilliseconds: Int?

    // Discovery and the gateway (stage 3 on).
    /// `--etcd`, `ETCD_URL`.
    public var etcdURL: String
    /// `SHOP_NAMESPACE` (or the older `DISCOVERY_NAMESPACE`); nil: derived
    /// from the deployment's data folder.
    public var namespace: String?
    /// `ADVERTISE_HOST`: the name or address other processes reach this one
    /// at, as it registers itself in etcd. nil: `host`, unless that is a
    /// wildcard (`0.0.0.0`, `::`, as in a container), then the machine's
    /// host name (see `advertisedHost`).
    public var advertiseHost: String?
    /// `DISCOVERY`: `etcd` (the default: every instance registers under a
    /// lease) or `dns` (callers resolve a name per service and use every
    /// address it has: Kubernetes' headless Services, Compose's service
    /// names). Anything else is refused when the registry is made.
    public var discovery: String
    /// `DISCOVERY_DNS_URL`: with `DISCOVERY=dns`, a service's URL, where
    /// `{service}` stands for its name (`http://{service}:8080`).
    public var discoveryDNSURL: String
    /// `DISCOVERY_TTL`: seconds a silent instance stays listed.
    public var discoveryTTLSeconds: Int
    /// `RATE_LIMIT_PER_SECOND`, `RATE_LIMIT_BURST`: each caller's token bucket.
    public var rateLimitPerSecond: Double
    public var rateLimitBurst: Double

    // Messaging (stage 4 on).
    /// `--amqp`, `AMQP_URL`.
    public var amqpURL: String
    /// `RETRY_DELAYS_MS` as given (`200,1000,5000`); the stage parses it
    /// against its own default ladder.
    public var retryDelaysMilliseconds: String?
    /// `INBOX_RETENTION_HOURS`: how long a consumer remembers message ids.
    public var inboxRetention: Duration

    // Jobs (stage 5 on).
    /// `REDIS_URL` (`redis://host:port`): the job store.
    public var redisURL: String

    // Streams (stage 7 on).
    /// `KAFKA_BOOTSTRAP` (`host:port`): the Kafka-protocol broker.
    public var kafkaBootstrap: String

    // Metrics.
    /// Where to list the process's addresses for Prometheus (see
    /// `ScrapeTargets`): `PROMETHEUS_TARGETS_DIR` if set (empty: nowhere),
    /// else `.infra/prometheus/targets` of the checkout the executable was
    /// built in, once `scripts/infra up prometheus` has made it; nil: nowhere.
    public var prometheusTargets: URL?

    /// The environment as it was read, for the few variables only one
    /// stage's entry point knows (stage 2's service ports and addresses).
    public let environment: [String: String]

    /// The option groups are those the command parsed; nil for a command
    /// that does not take them. (A group made with `init()` and never
    /// parsed cannot be read.)
    public init(
        environment: [String: String], server: ServerOptions? = nil, etcd: EtcdOptions? = nil, amqp: AMQPOptions? = nil
    ) {
        self.environment = environment
        // An empty variable counts as unset, as in most shells' tools.
        func string(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ name: String) -> Int? { string(name).flatMap(Int.init) }
        func double(_ name: String) -> Double? { string(name).flatMap(Double.init) }

        host = server?.host ?? string("HOST") ?? "127.0.0.1"
        port = server?.port ?? int("PORT")
        dataDir = server?.dataDir ?? string("DATA_DIR")

        jwtSecret = string("JWT_SECRET")
        tokenLifetimeSeconds = int("TOKEN_LIFETIME_SECONDS") ?? 3_600
        adminEmail = string("ADMIN_EMAIL") ?? Credentials.defaultAdminEmail
        adminPassword = string("ADMIN_PASSWORD") ?? Credentials.defaultAdminPassword
        bcryptCost = UInt8(clamping: int("BCRYPT_COST") ?? 10)

        logLevel = string("LOG_LEVEL").flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        logFormat = string("LOG_FORMAT")?.lowercased() == "json" ? .json : .logfmt
        exitWhenParentExits = string("SHOP_EXIT_ON_STDIN_EOF") == "1"

        groupCommit = string("GROUP_COMMIT") != "off"
        paymentRetryBaseMilliseconds = int("PAYMENT_RETRY_BASE_MS").flatMap { $0 >= 0 ? $0 : nil }

        etcdURL = etcd?.etcd ?? string("ETCD_URL") ?? "http://127.0.0.1:2379"
        namespace = string("SHOP_NAMESPACE") ?? string("DISCOVERY_NAMESPACE")
        advertiseHost = string("ADVERTISE_HOST")
        discovery = string("DISCOVERY")?.lowercased() ?? "etcd"
        discoveryDNSURL = string("DISCOVERY_DNS_URL") ?? "http://{service}:8080"
        discoveryTTLSeconds = int("DISCOVERY_TTL").flatMap { $0 > 0 ? $0 : nil } ?? 5
        rateLimitPerSecond = double("RATE_LIMIT_PER_SECOND") ?? 1_000
        rateLimitBurst = double("RATE_LIMIT_BURST") ?? 2_000

        amqpURL = amqp?.amqp ?? string("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672/"
        retryDelaysMilliseconds = string("RETRY_DELAYS_MS")
        inboxRetention = .seconds(3_600 * (int("INBOX_RETENTION_HOURS").flatMap { $0 > 0 ? $0 : nil } ?? 7 * 24))

        redisURL = string("REDIS_URL") ?? "redis://127.0.0.1:6379"
        kafkaBootstrap = string("KAFKA_BOOTSTRAP") ?? "127.0.0.1:9092"

        if let configured = environment["PROMETHEUS_TARGETS_DIR"] {
            prometheusTargets = configured.isEmpty ? nil : URL(fileURLWithPath: configured)
        } else {
            prometheusTargets = InfraScript.checkout.map { URL(fileURLWithPath: $0).appendingPathComponent(".infra/prometheus/targets") }
                .flatMap { folder in
                    var isFolder: ObjCBool = false
                    return FileManager.default.fileExists(atPath: folder.path, isDirectory: &isFolder) && isFolder.boolValue ? folder : nil
                }
        }
    }

    /// A variable of the environment as read at start (empty counts as unset).
    public func string(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
    public func int(_ name: String) -> Int? { string(name).flatMap(Int.init) }

    /// The host this process's URL is registered under (`advertiseHost`):
    /// a wildcard address is where a process listens, never where it can
    /// be reached from another machine. IPv6 literals come in brackets.
    public var advertisedHost: String {
        let name = advertiseHost ?? (["0.0.0.0", "::", "[::]", ""].contains(host) ? ProcessInfo.processInfo.hostName : host)
        return name.contains(":") && !name.hasPrefix("[") ? "[\(name)]" : name
    }

    /// The port, or the service's default.
    public func port(default fallback: Int = 8080) -> Int { port ?? fallback }

    /// The data folder, absolute, created if missing: `dataDir`, else
    /// `.data/<stage>` (for example `.data/stage-3/order`) under the current folder.
    public func dataFolder(stage: String) throws -> URL {
        let path = dataDir ?? ".data/\(stage)"
        let url = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
            .standardizedFileURL
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
