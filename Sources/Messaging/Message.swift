import AMQP
import Common
import Foundation
import Observability

/// Headers the project sets on messages, beside AMQP's own properties
/// (`message-id`, `type`, `timestamp`).
public enum MessageHeader {
    /// Which attempt this delivery is: absent (1) on the first, 2 after the
    /// first retry, and so on.
    public static let attempt = "x-attempt"
    /// Set on dead letters: why, from which queue, after how many attempts, when.
    public static let reason = "x-dead-letter-reason"
    public static let sourceQueue = "x-source-queue"
    public static let attempts = "x-attempts"
    public static let deadLetteredAt = "x-dead-lettered-at"
    /// Unique per dead-lettering, so the office stores each one once.
    public static let deadLetterId = "x-dead-letter-id"
    /// Ties the messages of one order's flow together in logs.
    public static let correlationId = "x-correlation-id"
    /// W3C Trace Context, as on HTTP: the trace the message belongs to, and
    /// the span that wrote it (its consumer's parent).
    public static let traceparent = TraceHeader.traceparent
}

/// A message to send: its type is also its routing key (`order.created`),
/// its id is what consumers deduplicate on, its body is JSON.
public struct OutgoingMessage: Sendable, Equatable {
    public var id: String
    public var type: String
    public var body: [UInt8]
    public var correlationId: String?
    /// The trace the message continues. By default the trace of the code
    /// that makes the message (a request, a message being handled), which
    /// is what a consumer continues.
    public var traceparent: String?

    public init(
        id: String = ID.make("msg"), type: String, body: [UInt8], correlationId: String? = nil,
        traceparent: String? = Observability.currentTraceparent
    ) {
        self.id = id
        self.type = type
        self.body = body
        self.correlationId = correlationId
        self.traceparent = traceparent
    }

    public init(type: String, json payload: some Encodable, correlationId: String? = nil) throws {
        self.init(type: type, body: Array(try Self.encoder.encode(payload)), correlationId: correlationId)
    }

    static let encoder = JSON.encoder()

    /// As published: persistent, with the id and type as AMQP properties, and
    /// `mandatory`, so that a message no queue is bound for comes back as an
    /// error instead of disappearing.
    /// The correlation id travels twice: as a header (what stage 4's tools
    /// read) and as AMQP's own `correlation-id` property (what any AMQP
    /// tool shows).
    public func amqp(exchange: String, contentType: String = "application/json") -> OutboundMessage {
        var headers: AMQPTable = [:]
        if let correlationId { headers[MessageHeader.correlationId] = .string(correlationId) }
        if let traceparent { headers[MessageHeader.traceparent] = .string(traceparent) }
        return OutboundMessage(
            exchange: exchange, routingKey: type, body: body,
            properties: BasicProperties(
                contentType: contentType, headers: headers, deliveryMode: .persistent,
                correlationID: correlationId, messageID: id, timestamp: Date(), type: type),
            mandatory: true)
    }
}

/// What a handler can say about a message it could not process.
public enum MessageFailure: Error, CustomStringConvertible {
    /// It will never succeed: unparseable, an unknown type, fields missing
    /// or out of range. Straight to the dead letters, no retry.
    case poison(String)
    /// It may succeed later (a provider's transient error, a busy database):
    /// down the retry ladder. Any other error a handler throws counts as this.
    case transient(String)

    public var description: String {
        switch self {
        case .poison(let reason): "poison message: \(reason)"
        case .transient(let reason): "transient failure: \(reason)"
        }
    }
}

/// A delivery as a handler sees it.
public struct IncomingMessage: Sendable {
    public let id: String
    public let type: String
    public let body: [UInt8]
    /// 1 on the first delivery, then one more per trip down the retry ladder.
    public let attempt: Int
    /// The broker handed this out before without an ack: a crash somewhere.
    /// Handlers must not care (they are idempotent), logs should say it.
    public let redelivered: Bool
    public let correlationId: String?
    /// The trace it continues (`traceparent`), if its sender was in one.
    public let traceparent: String?
    /// The AMQP delivery it came in; nil for a message that came another way
    /// (stage 7's consumers read events from Kafka and hand them to the
    /// same handlers).
    public let delivery: Delivery?

    /// A message that did not come from RabbitMQ: what the handlers and the
    /// inbox need of it, nothing more.
    public init(
        id: String, type: String, body: [UInt8], attempt: Int = 1, redelivered: Bool = false, correlationId: String? = nil,
        traceparent: String? = nil
    ) {
        self.id = id
        self.type = type
        self.body = body
        self.attempt = attempt
        self.redelivered = redelivered
        self.correlationId = correlationId
        self.traceparent = traceparent
        self.delivery = nil
    }

    /// Reads what identifies a message. A message without an id or a type
    /// cannot be deduplicated or routed: it is poison.
    init(_ delivery: Delivery) throws(MessageFailure) {
        guard let id = delivery.properties.messageID, !id.isEmpty else {
            throw .poison("the message has no message-id property, so it cannot be processed exactly once")
        }
        let type = delivery.properties.type ?? delivery.routingKey
        guard !type.isEmpty else { throw .poison("the message has no type property") }
        self.id = id
        self.type = type
        self.body = delivery.body
        self.attempt = max(1, Int(delivery.headers[MessageHeader.attempt]?.intValue ?? 1))
        self.redelivered = delivery.redelivered
        self.correlationId = delivery.headers[MessageHeader.correlationId]?.stringValue ?? delivery.properties.correlationID
        self.traceparent = delivery.headers[MessageHeader.traceparent]?.stringValue
        self.delivery = delivery
    }

    static let decoder = JSON.decoder()

    /// The body as `T`; anything that does not fit is poison, with the
    /// field named (the same descriptions the HTTP API gives).
    public func decode<T: Decodable>(_ type: T.Type) throws(MessageFailure) -> T {
        do {
            return try JSON.decodeRequest(T.self, from: Data(body))
        } catch {
            throw .poison("\(self.type) body does not fit: \(error.message)")
        }
    }
}
