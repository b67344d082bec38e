import Events
import Foundation
import Observability
import Kafka
import Logging
import Messaging
import Synchronization

/// How a domain event sits in a Kafka record: the CloudEvents Kafka
/// binding in *structured* mode. The record's value is the very envelope
/// stage 6 sent through RabbitMQ (`application/cloudevents+json`, said in the
/// `content-type` header) and its key is the envelope's `subject`, the
/// aggregate's id.
///
/// Why structured rather than binary (attributes as `ce_` headers): the
/// record is whole on its own. Copied to the dead-letter topic, handed to
/// RabbitMQ for a retry, or read by a tool that ignores headers, it still
/// carries its id, type, schema and story; the outbox already holds the
/// envelope's bytes; stage 6's schemas and reader take it unchanged.
///
/// Why the key: Kafka keeps order per partition, and a record's partition
/// is a hash of its key. One order's events share a key, so they share a
/// partition and are read in the order they were written; different orders
/// spread over the partitions and are read in parallel.
public enum EventRecords {
    public static let contentTypeHeader = "content-type"

    /// The record for an outbox message that holds an envelope.
    /// The trace also goes as a `traceparent` header (beside the envelope's
    /// attribute of the same name), where Kafka tools look for it.
    public static func record(_ message: OutgoingMessage, topic: String) -> KafkaProducerMessage {
        var headers = [KafkaHeader(name: contentTypeHeader, value: CloudEvent.contentType)]
        if let traceparent = message.traceparent {
            headers.append(KafkaHeader(name: TraceHeader.traceparent, value: Array(traceparent.utf8)))
        }
        return KafkaProducerMessage(
            topic: topic, key: subject(of: message.body).map { Array($0.utf8) }, value: message.body, headers: headers)
    }

    /// The trace a record continues: its `traceparent` header.
    public static func traceparent(of record: KafkaConsumerMessage) -> String? {
        record.headers.first { $0.name == TraceHeader.traceparent }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    private struct Subject: Decodable { var subject: String? }
    private static let decoder = JSONDecoder()

    /// The envelope's `subject`, read without reading the rest: a record
    /// without one goes to a partition of the producer's choosing.
    public static func subject(of body: [UInt8]) -> String? {
        (try? decoder.decode(Subject.self, from: Data(body)))?.subject
    }

    /// The record's envelope, parsed but not yet checked against a schema
    /// (a record that has none is poison). A consumer looks at its type
    /// first (`catalog.name(ofType:)`) to pass over the events it does not
    /// subscribe to, then has the catalogue check the same envelope and
    /// bring it to the version its code reads (`catalog.read(envelope,
    /// as:)`; nil: the newest). A consumer names its version, as stage 6's
    /// do: the catalogue is shared by every stage, so it also holds versions
    /// a consumer's stage never heard of (stage 8's OrderCreated v4, which
    /// stage 7 has no upcaster to). Whatever does not fit is poison.
    public static func envelope(of record: KafkaConsumerMessage) throws(MessageFailure) -> CloudEvent {
        guard let value = record.value, !value.isEmpty else {
            throw .poison("the record at \(record.topic)[\(record.partition)]@\(record.offset) has no value")
        }
        do {
            return try CloudEvent(parsing: value)
        } catch {
            throw .poison("the body is not a CloudEvent: \(error.description)")
        }
    }

    /// What the inbox and the handlers of stages 4–6 need of a message.
    public static func incoming(_ record: KafkaConsumerMessage, event: ReceivedEvent) -> IncomingMessage {
        IncomingMessage(id: event.id, type: event.type, body: record.value ?? [], correlationId: event.correlationId)
    }
}

/// The outbox's destination at stage 7: a Kafka topic, with `acks=all`,
/// so an acknowledged record is stored. Whether the producer is idempotent
/// is the caller's choice (stage 7 says why it is not, against Tansu); the
/// outbox is at-least-once either way: a batch whose acknowledgement was
/// lost is sent again, and consumers deduplicate by event id.
///
/// An idempotent producer whose sends failed for long enough (the broker
/// was away past `message.timeout.ms`) is fenced for good: librdkafka
/// cannot know which of its sequence numbers were written. Then this
/// destination throws it away and makes a new one; the relay sends the
/// batch again.
public final class KafkaDestination: OutboxDestination, Sendable {
    let configuration: KafkaProducerConfiguration
    let topic: String
    let partitions: Int32
    let logger: Logger
    private let producer = Mutex<KafkaProducer?>(nil)
    private let topicExists = Atomic(false)

    /// The topic is created, with `partitions` partitions, before the first
    /// send if it is not there: a broker that creates topics on first use
    /// would give it its own default instead.
    public init(configuration: KafkaProducerConfiguration, topic: String, partitions: Int32, logger: Logger) {
        self.configuration = configuration
        self.topic = topic
        self.partitions = partitions
        self.logger = logger
    }

    /// Creates the topic if it is missing and the producer, before the
    /// first event needs them: an idempotent producer first asks the broker
    /// for its producer id, which Tansu answered in up to several seconds
    /// under load, and the first order of a fresh stage waited for it.
    /// Failing here changes nothing: `deliver` tries again.
    public func prepare() async {
        do {
            try await ensureTopic()
            _ = try current()
        } catch {
            logger.notice("the Kafka topic or producer is not ready yet; the first send will try again", metadata: ["topic": .string(topic), "error": "\(error)"])
        }
    }

    private func ensureTopic() async throws {
        if !topicExists.load(ordering: .relaxed) {
            try await StreamSetup.createTopics([topic], partitions: partitions, bootstrap: configuration.client.bootstrapServers)
            topicExists.store(true, ordering: .relaxed)
        }
    }

    public func deliver(_ messages: [OutgoingMessage]) async throws {
        try await send(messages.map { EventRecords.record($0, topic: topic) })
    }

    /// Sends records as they are, and waits for every acknowledgement.
    func send(_ records: [KafkaProducerMessage]) async throws {
        try await ensureTopic()
        let producer = try current()
        do {
            _ = try await producer.send(records)
        } catch {
            if error.code == .fatal || error.code == .closed {
                logger.warning("the Kafka producer is fenced (\(error.message)); making a new one", metadata: ["topic": .string(topic)])
                self.producer.withLock { $0 = nil }
                await producer.shutdown(timeout: .seconds(1))
            }
            throw error
        }
    }

    private func current() throws -> KafkaProducer {
        try producer.withLock { producer in
            if let producer { return producer }
            let made = try KafkaProducer.make(configuration: configuration, logger: logger)
            producer = made
            return made
        }
    }
}
