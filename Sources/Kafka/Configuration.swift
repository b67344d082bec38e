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
            // Without idempotence a retried request could overtake the one
            // after it and reorder a partition; one request in flight per
            // connection keeps each partition in the order sent.
            ("max.in.flight.requests.per.connection", idempotent ? "5" : "1"),
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
        /// Where the application says, on every assignment: librdkafka calls
        /// the rebalance callback, which asks `provider` for the next offset
        /// to read of the partitions just assigned, and starts each one it
        /// answers for there. A partition it does not answer for (no entry,
        /// or a negative offset) starts as with `.committed`.
        ///
        /// This is "offsets stored with the data": a read model that writes
        /// its position into its own database in the same transaction as the
        /// update the message caused can never be ahead of, or behind, its
        /// data, whatever crashed when. The group's commit is then only a
        /// hint (for lag, for other tools); the database has the last word.
        /// Messages may still arrive twice (a rebalance while a batch is in
        /// hand), so the read model skips one whose offset is below the
        /// position it stored: the same transaction makes that check exact.
        ///
        /// Unlike `.beginning` this applies on every assignment, not only the
        /// first: the database moves on as the read model works, so its
        /// answer is always the right place to resume.
        ///
        /// `provider` runs on the consumer's own thread, inside a poll, while
        /// the group waits for this member: keep it to a quick read (one
        /// query), and do not call the consumer from it. An offset past the
        /// end of the log is "out of range" and treated as
        /// `offsetResetToEarliest` says.
        case stored(@Sendable ([KafkaTopicPartition]) -> [KafkaTopicPartition: Int64])
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
    /// A member that has not asked for messages for this long leaves the
    /// group (`max.poll.interval.ms`); it is also the rebalance timeout, how
    /// long the coordinator waits for the members to join again. librdkafka's
    /// 300 s is harmful against Tansu 0.6.0: when one member leaves while
    /// another is joining, Tansu waits that long before it assigns anything
    /// (seen with confluent-kafka too: no assignment within 40 s; at 10 s,
    /// assigned after 3 to 4 s). A handler that holds a message longer than
    /// this costs a rejoin, and the message is read again.
    public var maxPollInterval: Duration = .seconds(10)
    /// How long the broker may hold an empty fetch before answering
    /// (`fetch.wait.max.ms`). Tansu answers waiting fetches late, so
    /// end-to-end latency spreads between 0 and half of this; below 10 ms a
    /// Tansu consumer stalls for good, so values under 10 ms are refused.
    public var fetchWaitMax: Duration = .milliseconds(10)
    /// nil: nothing is committed but what `commit` and `commitAsync` commit.
    /// A duration: librdkafka commits, that often, the offsets `store` has
    /// recorded (`enable.auto.commit` with `enable.auto.offset.store=false`),
    /// so a consumer that processes many small messages sends one commit a
    /// second instead of one per message; only what was stored, so only
    /// what was processed, is ever committed. A crash loses at most the
    /// last interval's commits: those messages are read again.
    public var autoCommitStoredEvery: Duration?
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
        guard maxPollInterval >= sessionTimeout else {
            throw KafkaError.configuration("maxPollInterval (\(maxPollInterval)) must be at least the session timeout (\(sessionTimeout))")
        }
        guard !topics.isEmpty else { throw KafkaError.configuration("a consumer needs at least one topic") }
        guard !groupID.isEmpty else { throw KafkaError.configuration("a consumer needs a group id") }
        guard batchSize > 1 else { throw KafkaError.configuration("batchSize must be at least 2") }
    }

    var properties: [(String, String)] {
        client.properties + [
            ("group.id", groupID),
            // Only what the application says it processed is committed: by
            // its own commits, or (autoCommitStoredEvery) by librdkafka's
            // timer, which commits stored offsets only. A crash between
            // receiving and processing then means reprocessing, never loss.
            ("enable.auto.commit", autoCommitStoredEvery == nil ? "false" : "true"),
            // Offsets are "stored" (kept for the next commit) only when the
            // application commits or stores them, not when a message is handed out.
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", offsetResetToEarliest ? "earliest" : "latest"),
            ("session.timeout.ms", String(sessionTimeout.milliseconds)),
            ("heartbeat.interval.ms", String(heartbeatInterval.milliseconds)),
            ("auto.commit.interval.ms", String((autoCommitStoredEvery ?? .seconds(5)).milliseconds)),
            ("max.poll.interval.ms", String(maxPollInterval.milliseconds)),
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
