import Foundation
import Kafka
import Observability

/// How far each consumer group is behind the log (stage 7 on), read at each
/// scrape by the process that reports it (`GET /reports/stream`), the same
/// way and with the same figures:
///
/// - `shop_consumer_lag_records{group, topic, partition}`: records written
///   to the partition that the group has not committed yet;
/// - `shop_consumer_lag_seconds{group}`: the age of the oldest of them.
///
/// Topics are named without the deployment's namespace (`orders`), so a
/// query reads the same in every deployment. A group that falls behind
/// during a replay, and catches up, is the lesson of stage 7's reports.
public enum StreamMetrics {
    public static func watch(groups: [StreamGroup], admin: KafkaAdmin, monitor: StreamMonitor) {
        Observability.beforeEachScrape {
            // The broker down: the gauges keep their last figures, and
            // `/reports/stream` says what is wrong.
            guard let report = try? await StreamReport.make(groups: groups, admin: admin, monitor: monitor) else { return }
            for group in report.groups {
                Observability.gauge("shop_consumer_lag_seconds", [("group", group.group)]).record(group.lagSeconds)
                for partition in group.partitions {
                    let topic = partition.topic.split(separator: ".").last.map(String.init) ?? partition.topic
                    Observability.gauge("shop_consumer_lag_records", [
                        ("group", group.group), ("topic", topic), ("partition", String(partition.partition)),
                    ]).record(partition.lag)
                }
            }
        }
    }
}
