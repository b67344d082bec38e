import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Synchronization

/// Where each partition's log ends, and when each of its records was
/// written: what a lag report needs and the broker does not tell.
///
/// Tansu's answer to "where does this partition end?" (ListOffsets LATEST)
/// is wrong: it names the base offset of the last batch written, plus one,
/// so a lag computed from it comes out too small (infra.md). A fetch is
/// never wrong, so the monitor *reads* every topic, from the beginning, in a
/// group of its own that never commits, and keeps for each partition the
/// offset after the last record it saw and the time of every record (8
/// bytes each: 100,000 events cost under a megabyte). A group's lag on a
/// partition is then `end - committed`, and its age the time of the record
/// at the committed offset: the oldest one the group has not processed.
public final class StreamMonitor: Service, Sendable {
    public struct Partition: Sendable {
        /// The offset after the last record seen.
        public var end: Int64
        /// The first offset `times` covers (records before it were gone
        /// when the monitor read, or it started past them).
        var base: Int64
        var times: [Int64]

        /// When the record at `offset` was written, in ms since 1970.
        public func time(at offset: Int64) -> Int64? {
            let index = Int(offset - base)
            return times.indices.contains(index) ? times[index] : nil
        }
    }

    let configuration: KafkaConsumerConfiguration
    let logger: Logger
    private let partitions = Mutex<[KafkaTopicPartition: Partition]>([:])
    private let started = Mutex(false)

    /// `group` must be used by nothing else: the monitor rewinds it to the
    /// beginning whenever it starts.
    public init(bootstrapServers: String, group: String, topics: [String], fetchWait: Duration = .milliseconds(100), logger: Logger) {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: group, topics: topics, clientID: "stream-monitor")
        configuration.startPosition = .beginning
        configuration.fetchWaitMax = fetchWait
        configuration.batchSize = 2_000
        self.configuration = configuration
        self.logger = logger
    }

    /// What the monitor has seen so far, by partition.
    public var snapshot: [KafkaTopicPartition: Partition] { partitions.withLock { $0 } }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let consumer = try KafkaConsumer.make(configuration: configuration, logger: logger)
                for try await record in consumer.messages.cancelOnGracefulShutdown() {
                    see(record)
                }
                await consumer.close()
            } catch {
                logger.warning("stream monitor stopped; starting it again", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func see(_ record: KafkaConsumerMessage) {
        let time = record.timestampMilliseconds ?? Int64(Date().timeIntervalSince1970 * 1000)
        partitions.withLock { partitions in
            let key = record.topicPartition
            var partition = partitions[key] ?? Partition(end: record.offset, base: record.offset, times: [])
            // Read again after a rejoin: already known.
            guard record.offset >= partition.end else { return }
            // A gap (records the broker no longer has, or control records):
            // unknown times, filled with this one's.
            for _ in partition.end..<record.offset { partition.times.append(time) }
            partition.times.append(time)
            partition.end = record.offset + 1
            partitions[key] = partition
        }
    }
}
