import Foundation
import Kafka

/// A consumer group as `GET /reports/stream` shows it.
public struct StreamGroup: Sendable {
    /// The name the API uses (`reporting`); `groupId` is Kafka's (`<ns>.reporting`).
    public var name: String
    public var groupId: String
    public var topics: [String]
    /// A group that only builds a read model can be rewound and rebuilt; one
    /// that acts on the world (charges cards, sends emails) cannot: a replay
    /// would do it all again.
    public var replayable: Bool

    public init(name: String, groupId: String, topics: [String], replayable: Bool) {
        self.name = name
        self.groupId = groupId
        self.topics = topics
        self.replayable = replayable
    }
}

/// `GET /reports/stream`'s answer.
public struct StreamReport: Codable, Sendable, Equatable {
    public struct Group: Codable, Sendable, Equatable {
        public var group: String
        public var topics: [String]
        public var replayable: Bool
        public var lag: Int64
        public var lagSeconds: Double
        public var partitions: [PartitionLag]
    }

    public struct PartitionLag: Codable, Sendable, Equatable {
        public var topic: String
        public var partition: Int32
        /// The next offset the group will read (0 before its first commit).
        public var committedOffset: Int64
        public var endOffset: Int64
        public var lag: Int64
    }

    public var groups: [Group]

    /// Lag from the group's committed offsets (asked of the broker) and the
    /// monitor's ends and times (read from the log itself, see `StreamMonitor`).
    public static func make(
        groups: [StreamGroup], admin: KafkaAdmin, monitor: StreamMonitor, now: Date = Date()
    ) async throws -> StreamReport {
        let seen = monitor.snapshot
        var report: [Group] = []
        for group in groups {
            let partitions = try await admin.partitions(of: group.topics)
            let committed = try await admin.committedOffsets(group: group.groupId, partitions: partitions)
            var rows: [PartitionLag] = []
            var oldest: Int64?
            for partition in partitions.sorted(by: { ($0.topic, $0.partition) < ($1.topic, $1.partition) }) {
                let log = seen[partition]
                let end = log?.end ?? 0
                let next = committed[partition] ?? 0
                let lag = max(0, end - next)
                if lag > 0, let time = log?.time(at: next) { oldest = min(oldest ?? time, time) }
                rows.append(PartitionLag(topic: partition.topic, partition: partition.partition, committedOffset: next, endOffset: end, lag: lag))
            }
            let age = oldest.map { max(0, now.timeIntervalSince1970 - Double($0) / 1000) } ?? 0
            report.append(Group(
                group: group.name, topics: group.topics, replayable: group.replayable,
                lag: rows.reduce(0) { $0 + $1.lag }, lagSeconds: (age * 1000).rounded() / 1000, partitions: rows))
        }
        return StreamReport(groups: report)
    }
}
