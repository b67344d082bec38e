import Foundation
import GRDB
import Observability

/// What a service's messaging did, for `GET /metrics` (stage 4 on):
///
/// - `shop_messages_published_total{type}`: messages the outbox relay
///   handed to the broker and the broker confirmed, by type (RabbitMQ's
///   routing key, an event's name, `job` for a job relayed to Redis);
/// - `shop_messages_consumed_total{queue, outcome}`: deliveries settled by a
///   consumer: `handled`, `retried` (sent one step down the retry ladder)
///   or `dead_lettered`; `shop_message_handling_seconds{queue}` how long
///   each took, from delivery to settlement;
/// - `shop_outbox_backlog_messages` and `shop_outbox_oldest_message_age_seconds`:
///   what waits in the outbox, read at each scrape. A backlog that grows
///   while the broker is down, and drains when it is back, is the outbox
///   doing its job; an age that keeps growing is a relay that cannot publish.
public enum MessagingMetrics {
    public enum Settled: String, Sendable {
        case handled, retried
        case deadLettered = "dead_lettered"
    }

    public static func published(_ messages: [OutgoingMessage]) {
        var byType: [String: Int] = [:]
        for message in messages { byType[message.type, default: 0] += 1 }
        for (type, count) in byType {
            Observability.counter("shop_messages_published_total", [("type", type)]).increment(by: count)
        }
    }

    public static func consumed(queue: String, _ settled: Settled, since started: ContinuousClock.Instant) {
        Observability.counter("shop_messages_consumed_total", [("queue", queue), ("outcome", settled.rawValue)]).increment()
        Observability.timer("shop_message_handling_seconds", [("queue", queue)]).record(since: started)
    }

    /// Reads the outbox's backlog at each scrape (one small query on the
    /// database's reader; the outbox holds only what is not sent yet).
    static func watchOutbox(_ db: any DatabaseReader) {
        let backlog = Observability.gauge("shop_outbox_backlog_messages")
        let oldest = Observability.gauge("shop_outbox_oldest_message_age_seconds")
        Observability.beforeEachScrape {
            guard let (count, createdAt) = try? await db.read({ db -> (Int, Int64?) in
                let row = try Row.fetchOne(db, sql: "SELECT count(*) AS n, min(createdAt) AS oldest FROM outbox")
                return (row?["n"] ?? 0, row?["oldest"])
            }) else { return }
            backlog.record(count)
            oldest.record(createdAt.map { max(0, Double(Date().databaseMilliseconds - $0) / 1000) } ?? 0)
        }
    }
}
