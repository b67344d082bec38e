import Foundation

/// One value of an AMQP field table (message headers, queue arguments).
///
/// AMQP 0-9-1 knows a dozen integer widths; RabbitMQ and its clients agree on
/// a smaller set. Reading, every integer kind becomes `.int` (unsigned 64-bit
/// values above `Int64.max` are clamped); writing, `.int` goes out as a
/// signed 64-bit `l`, which RabbitMQ and pika both read as a plain integer.
public indirect enum AMQPValue: Sendable, Hashable {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    /// Seconds since 1970, as AMQP timestamps carry no fractions.
    case timestamp(Date)
    case decimal(scale: UInt8, value: UInt32)
    case array([AMQPValue])
    case table([String: AMQPValue])
    case void

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var intValue: Int64? { if case .int(let i) = self { i } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var arrayValue: [AMQPValue]? { if case .array(let a) = self { a } else { nil } }
    public var tableValue: [String: AMQPValue]? { if case .table(let t) = self { t } else { nil } }
    public var dateValue: Date? { if case .timestamp(let d) = self { d } else { nil } }
}

extension AMQPValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByFloatLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(arrayLiteral elements: AMQPValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, AMQPValue)...) {
        self = .table(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// A field table. Order carries no meaning in AMQP, so a dictionary it is.
public typealias AMQPTable = [String: AMQPValue]

/// How the broker stores a message: `persistent` survives a broker restart
/// (on a durable queue), `transient` lives in memory only.
public enum DeliveryMode: UInt8, Sendable, Hashable {
    case transient = 1
    case persistent = 2
}

/// The `basic` class content properties. Every field is optional on the wire;
/// nil means "not sent".
public struct BasicProperties: Sendable, Hashable {
    public var contentType: String?
    public var contentEncoding: String?
    public var headers: AMQPTable?
    public var deliveryMode: DeliveryMode?
    public var priority: UInt8?
    public var correlationID: String?
    public var replyTo: String?
    /// Per-message TTL in milliseconds, as a decimal string (AMQP's choice).
    public var expiration: String?
    public var messageID: String?
    /// Whole seconds: the wire format drops anything finer.
    public var timestamp: Date?
    public var type: String?
    public var userID: String?
    public var appID: String?

    public init(
        contentType: String? = nil, contentEncoding: String? = nil, headers: AMQPTable? = nil,
        deliveryMode: DeliveryMode? = nil, priority: UInt8? = nil, correlationID: String? = nil,
        replyTo: String? = nil, expiration: String? = nil, messageID: String? = nil,
        timestamp: Date? = nil, type: String? = nil, userID: String? = nil, appID: String? = nil
    ) {
        self.contentType = contentType
        self.contentEncoding = contentEncoding
        self.headers = headers
        self.deliveryMode = deliveryMode
        self.priority = priority
        self.correlationID = correlationID
        self.replyTo = replyTo
        self.expiration = expiration
        self.messageID = messageID
        self.timestamp = timestamp
        self.type = type
        self.userID = userID
        self.appID = appID
    }

    /// Persistent with no other property: what every durable event should be.
    public static var persistent: BasicProperties { BasicProperties(deliveryMode: .persistent) }
}

/// A message to publish.
public struct OutboundMessage: Sendable {
    public var exchange: String
    public var routingKey: String
    public var body: [UInt8]
    public var properties: BasicProperties
    /// Ask the broker to return the message (an error for the publisher)
    /// when no queue is bound for it, instead of dropping it silently.
    public var mandatory: Bool

    public init(
        exchange: String = "", routingKey: String, body: [UInt8],
        properties: BasicProperties = .persistent, mandatory: Bool = false
    ) {
        self.exchange = exchange
        self.routingKey = routingKey
        self.body = body
        self.properties = properties
        self.mandatory = mandatory
    }
}

/// Arguments of `queue.declare` that the workshop uses, plus room for others.
/// RabbitMQ compares them on every redeclare: a queue declared again with
/// different arguments fails with 406 PRECONDITION_FAILED.
public struct QueueArguments: Sendable, Hashable {
    /// Where rejected, expired or overflowing messages go (`x-dead-letter-exchange`).
    public var deadLetterExchange: String?
    /// Routing key used when dead-lettering (`x-dead-letter-routing-key`);
    /// the message's own key when nil.
    public var deadLetterRoutingKey: String?
    /// How long a message may wait in the queue (`x-message-ttl`).
    public var messageTTL: Duration?
    /// At most this many ready messages (`x-max-length`); the oldest are
    /// dropped or dead-lettered beyond it.
    public var maxLength: Int?
    /// Anything else (`x-queue-type`, `x-overflow`, ...).
    public var extra: AMQPTable

    public init(
        deadLetterExchange: String? = nil, deadLetterRoutingKey: String? = nil,
        messageTTL: Duration? = nil, maxLength: Int? = nil, extra: AMQPTable = [:]
    ) {
        self.deadLetterExchange = deadLetterExchange
        self.deadLetterRoutingKey = deadLetterRoutingKey
        self.messageTTL = messageTTL
        self.maxLength = maxLength
        self.extra = extra
    }

    /// The table as it goes on the wire.
    public var table: AMQPTable {
        var t = extra
        if let deadLetterExchange { t["x-dead-letter-exchange"] = .string(deadLetterExchange) }
        if let deadLetterRoutingKey { t["x-dead-letter-routing-key"] = .string(deadLetterRoutingKey) }
        if let messageTTL {
            let (seconds, attoseconds) = messageTTL.components
            t["x-message-ttl"] = .int(seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        }
        if let maxLength { t["x-max-length"] = .int(Int64(maxLength)) }
        return t
    }
}

/// The answer to `queue.declare`: the name (the broker picks one for ""),
/// and how many messages are ready and how many consumers listen.
public struct QueueInfo: Sendable, Hashable {
    public let name: String
    public let messageCount: UInt32
    public let consumerCount: UInt32
}

/// Exchange types RabbitMQ ships with.
public enum ExchangeType: String, Sendable {
    case direct, fanout, topic, headers
}

/// One entry of the `x-death` header RabbitMQ adds each time a message is
/// dead-lettered: which queue, why (`rejected`, `expired`, `maxlen`), and how
/// many times for that queue and reason. A retry ladder reads `count`.
public struct XDeathEntry: Sendable, Hashable {
    public let queue: String
    public let reason: String
    public let count: Int64
    public let exchange: String
    public let routingKeys: [String]
    public let time: Date?

    init?(_ value: AMQPValue) {
        guard let t = value.tableValue else { return nil }
        queue = t["queue"]?.stringValue ?? ""
        reason = t["reason"]?.stringValue ?? ""
        count = t["count"]?.intValue ?? 0
        exchange = t["exchange"]?.stringValue ?? ""
        routingKeys = t["routing-keys"]?.arrayValue?.compactMap(\.stringValue) ?? []
        time = t["time"]?.dateValue
    }
}
