import Common
import EventStore
import Events
import Foundation
import Jobs
import Kafka
import Logging
import Messaging
import Observability
import Streams

/// The order service's event store is its outbox (`scripts/diff-stages 7 8`:
/// stage 7 wrote each event twice, once as the order's new row and once in
/// the outbox; here it is written once). The relay reads the store in
/// global order, 256 events at a time, from its checkpoint, and for each
/// event:
/// - puts it on `<ns>.order-store` (every event of every order, one
///   partition: the topic's order is the store's);
/// - if the order service owns it (OrderCreated, …), puts it on
///   `<ns>.orders` too, for the saga's other services and analytics;
/// - adds the jobs it implies: an order's deadline when it is created, its
///   invoice when it is confirmed (BullMQ job ids make a second add a
///   no-op).
/// Only once all of that was acknowledged does the checkpoint move, in the
/// store's own database. A relay killed in between sends the batch again:
/// the same events under the same ids (`<order id>.<sequence>`), which
/// every consumer drops (the inboxes; the projections by event id, and by
/// each order's version, so that even an event sent again after a later one
/// is not applied twice). The producer is stage 7's: `acks=all`, not idempotent, for
/// the reason given on `ServiceMessaging.producerConfiguration`.
enum StoreRelay {
    static let checkpoint = "kafka-relay"

    static func make(store: EventStore, messaging: ServiceMessaging, logger: Logger) -> OutboxRelay {
        let namespace = messaging.namespace
        let log = KafkaDestination(configuration: messaging.producerConfiguration, topic: StageTopology.orderStoreTopic(namespace: namespace),
                                   partitions: StageTopology.orderStorePartitions, logger: logger)
        let orders = KafkaDestination(configuration: messaging.producerConfiguration, topic: StageTopology.topic(.order, namespace: namespace),
                                      partitions: StageTopology.partitions, logger: logger)
        let jobs = JobsDestination(client: messaging.jobs.client, prefix: messaging.jobs.prefix)
        let policy = messaging.policy
        Task {
            await log.prepare()
            await orders.prepare()
        }
        return OutboxRelay(logger: logger) {
            while true {
                let from = try await store.db.read { db in try EventStore.checkpoint(checkpoint, in: db) }
                let batch = try await store.read(after: from, limit: 256)
                guard let last = batch.last else { return }
                let messages = try batch.map(message)
                try await log.deliver(messages)
                try await orders.deliver(zip(batch, messages).filter { Order.ownEvents.contains($0.0.type) }.map(\.1))
                let jobMessages = try batch.flatMap { try implied(by: $0, policy: policy) }
                try await jobs.deliver(jobMessages)
                // Each event once (its copy on `<ns>.orders` is the same
                // event), and each job it implied.
                MessagingMetrics.published(messages + jobMessages)
                try await store.write { db in try EventStore.setCheckpoint(checkpoint, to: last.position, in: db) }
            }
        }
    }

    /// A stored event as a CloudEvent (stage 6's envelope), with its place
    /// in its stream (`sequence`) and in the store (`position`) as
    /// extension attributes, which the query side's projections read.
    static func envelope(_ event: RecordedEvent) throws -> CloudEvent {
        let catalog = EventLog.catalog
        var envelope = CloudEvent(
            id: "\(event.stream).\(event.version)", source: Producer.order.source, type: catalog.type(of: event.type),
            time: event.time, subject: event.stream, dataschema: catalog.dataschema(event.type, version: event.schemaVersion),
            correlationid: event.metadata.correlationId, causationid: event.metadata.causationId,
            requestid: event.metadata.causationId == nil ? event.metadata.requestId : nil,
            data: try JSONValue(parsing: event.data),
            extensions: ["sequence": .number(Double(event.version)), "position": .number(Double(event.position))])
        // The trace the event was appended in, which its consumers continue.
        envelope.traceparent = event.metadata.traceparent
        return envelope
    }

    static func message(_ event: RecordedEvent) throws -> OutgoingMessage {
        let envelope = try envelope(event)
        return OutgoingMessage(
            id: envelope.id, type: envelope.type, body: envelope.encoded(), correlationId: envelope.correlationid,
            traceparent: envelope.traceparent)
    }

    static func implied(by event: RecordedEvent, policy: JobPolicy) throws -> [OutgoingMessage] {
        // The jobs an event implies belong to the trace it was appended in.
        try Observability.inTrace(event.metadata.traceparent) {
            switch event.type {
            case OrderCreated.name: [try .deadline(orderId: event.stream, policy: policy)]
            case OrderConfirmed.name: [try .invoice(orderId: event.stream)]
            default: []
            }
        }
    }
}
