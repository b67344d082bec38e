/// Settings shared by every client: where the cluster is, and what to call us.
public struct KafkaClientOptions: Sendable {
    /// "host:port[,host:port…]": the brokers to ask first; they tell the
    /// client about the rest of the cluster.
    public var bootstrapServers: String
    /// Shows up in broker logs and metrics.
    public var clientID: String
    /// Raw librdkafka properties, applied last (override anything above).
    /// See librdkafka's CONFIGURATION.md for the names.
    public var extraProperties: [String: String]

    public init(bootstrapServers: String, clientID: String = "shop", extraProperties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.extraProperties = extraProperties
    }

    var properties: [(String, String)] {
        [
            ("bootstrap.servers", bootstrapServers),
            ("client.id", clientID),
            // Brokers close idle connections; librdkafka would log each one.
            ("log.connection.close", "false"),
        ]
    }
}

public struct KafkaProducerConfiguration: Sendable {
    public var client: KafkaClientOptions
    /// Batch sends for up to this long (librdkafka's `linger.ms`): a few
    /// milliseconds buys much bigger batches under load.
    public var linger: Duration = .milliseconds(5)
    /// How long one message may take, retries included, before its send
    /// fails with `.timedOut` (`message.timeout.ms`). librdkafka's default is
    /// five minutes; a broker that is down should show up sooner than that.
    public var messageTimeout: Duration = .seconds(30)
    /// Idempotent producing (`enable.idempotence`): retries cannot duplicate
    /// or reorder messages. It implies `acks=all`, which we also set.
    public var idempotent = true

    public init(bootstrapServers: String, clientID: String = "shop") {
        self.client = KafkaClientOptions(bootstrapServers: bootstrapServers, clientID: clientID)
    }

    var properties: [(String, String)] {
        client.properties + [
            // The broker answers only once every in-sync replica has the
            // message: an acknowledged event is not lost with one broker.
            ("acks", "all"),
            // Compatible with Java clients: the same key lands in the same
            // partition whichever language produced it (librdkafka's own
            // default, CRC32, disagrees with Java's murmur2). Other
            // librdkafka-based producers (confluent-kafka) must set it too.
            ("partitioner", "murmur2_random"),
            ("enable.idempotence", idempotent ? "true" : "false"),
            ("linger.ms", String(linger.milliseconds)),
            ("message.timeout.ms", String(messageTimeout.milliseconds)),
        ] + client.extraProperties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

public struct KafkaConsumerConfiguration: Sendable {
    /// Where a consumer starts in a partition that was just assigned to it.
    public enum StartPosition: Sendable {
        /// Where the group left off (its committed offset); where there is
        /// none, at `offsetResetToEarliest` (beginning or end).
        case committed
        /// At offset 0 of every partition, whatever the group committed: a
        /// replay, e.g. to rebuild a read model. Each partition is rewound
        /// once per consumer instance (on its first assignment), so a later
        /// rebalance resumes from the commits the replay made instead of
        /// starting over again.
        case beginning
    }

    public var client: KafkaClientOptions
    public var groupID: String
    public var topics: [String]
    public var startPosition: StartPosition = .committed
    /// With no committed offset: read from the beginning (true) or only new
    /// messages (false). `auto.offset.reset`.
    public var offsetResetToEarliest = true
    /// A member that has not sent a heartbeat for this long is dropped from
    /// the group. A join takes about half of it (the coordinator waits for
    /// members), so we use 6 s (joins in ~3 s) instead of librdkafka's 45 s.
    public var sessionTimeout: Duration = .seconds(6)
    public var heartbeatInterval: Duration = .milliseconds(500)
    /// How long the broker may hold an empty fetch before answering
    /// (`fetch.wait.max.ms`). Tansu answers waiting fetches late, so
    /// end-to-end latency spreads between 0 and half of this; below 10 ms a
    /// Tansu consumer stalls for good, so values under 10 ms are refused.
    public var fetchWaitMax: Duration = .milliseconds(10)
    /// How long `commit` waits for the broker's answer.
    public var commitTimeout: Duration = .seconds(10)
    /// How long `close` may take (final commit, leaving the group).
    public var closeTimeout: Duration = .seconds(10)
    /// Messages taken from librdkafka per call; they are handed out one by one.
    public var batchSize = 500
    /// Told about every assignment and revocation (after it is applied).
    public var onRebalance: (@Sendable (KafkaRebalance) -> Void)?

    public init(bootstrapServers: String, groupID: String, topics: [String], clientID: String = "shop") {
        self.client = KafkaClientOptions(bootstrapServers: bootstrapServers, clientID: clientID)
        self.groupID = groupID
        self.topics = topics
    }

    static let minimumFetchWait = Duration.milliseconds(10)

    func validate() throws(KafkaError) {
        guard fetchWaitMax >= Self.minimumFetchWait else {
            throw KafkaError.configuration(
                "fetchWaitMax \(fetchWaitMax.milliseconds) ms is below 10 ms: against Tansu such a consumer stalls for good (empty fetches of the same offset, no error)")
        }
        guard !topics.isEmpty else { throw KafkaError.configuration("a consumer needs at least one topic") }
        guard !groupID.isEmpty else { throw KafkaError.configuration("a consumer needs a group id") }
        guard batchSize > 1 else { throw KafkaError.configuration("batchSize must be at least 2") }
    }

    var properties: [(String, String)] {
        client.properties + [
            ("group.id", groupID),
            // We commit ourselves, after processing: a crash between
            // receiving and processing then means reprocessing, never loss.
            ("enable.auto.commit", "false"),
            // Offsets are "stored" (kept for the final commit at close) only
            // when the application commits, not when a message is handed out.
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", offsetResetToEarliest ? "earliest" : "latest"),
            ("session.timeout.ms", String(sessionTimeout.milliseconds)),
            ("heartbeat.interval.ms", String(heartbeatInterval.milliseconds)),
            ("fetch.wait.max.ms", String(fetchWaitMax.milliseconds)),
            ("enable.partition.eof", "false"),
        ] + client.extraProperties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

public struct KafkaAdminConfiguration: Sendable {
    public var client: KafkaClientOptions
    /// Bounds every admin request, including waiting for a first connection.
    public var requestTimeout: Duration = .seconds(10)

    public init(bootstrapServers: String, clientID: String = "shop-admin") {
        self.client = KafkaClientOptions(bootstrapServers: bootstrapServers, clientID: clientID)
    }

    var properties: [(String, String)] {
        client.properties + client.extraProperties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}

extension Duration {
    /// Whole milliseconds, as librdkafka's settings and timeouts want them.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    var millisecondsInt32: Int32 { Int32(clamping: milliseconds) }
}
