import AMQP

/// The names and the shape of a deployment's RabbitMQ objects.
///
/// Every name starts with the deployment's namespace, so two deployments
/// (two learners' stages, or the tests running several at once) can share
/// one broker without reading each other's messages:
///
///     <ns>.shop                  topic exchange; a message's routing key is its type
///     <ns>.<queue>               a service's work queue, bound to the types it handles
///     <ns>.<queue>.retry.<n>     step n of its retry ladder: a message waits out the
///                                queue's TTL, then RabbitMQ dead-letters it back to
///                                <ns>.<queue> through the default exchange
///     <ns>.dead-letters          fanout exchange and queue: what could not be processed
///     <ns>.<exchange>            from stage 6, a topic exchange per publishing service
///                                (`<ns>.events.order`); a queue subscribes to the event
///                                types it wants on the exchanges of their producers
///
/// Every process declares the whole topology when it connects. Declaring is
/// idempotent, and it means no publisher can ever send a message before the
/// queues that must receive it exist (an unbound topic message is dropped).
public struct MessageTopology: Sendable {
    /// A service's work queue and the message types routed to it.
    public struct Queue: Sendable {
        public let name: String
        public let bindings: [Binding]
        /// Bound to these routing keys on the deployment's one exchange (stages 4 and 5).
        public init(_ name: String, bindings: [String]) {
            self.name = name
            self.bindings = bindings.map { Binding(exchange: nil, key: $0) }
        }
        /// Bound to keys on other exchanges (stage 6 on: a subscriber binds
        /// its own queue to its producers' exchanges; the producers never
        /// hear of it).
        public init(_ name: String, subscriptions: [Binding]) {
            self.name = name
            self.bindings = subscriptions
        }
    }

    /// A routing key on an exchange: `exchange` is the short name
    /// (`events.order`), nil for the deployment's main exchange.
    public struct Binding: Sendable, Hashable {
        public let exchange: String?
        public let key: String
        public init(exchange: String?, key: String) {
            self.exchange = exchange
            self.key = key
        }
    }

    public let namespace: String
    public let queues: [Queue]
    /// How long a message waits before attempt 2, 3, ...; a message that
    /// fails once more after the last step is dead-lettered. Fixed per queue
    /// (`x-message-ttl`), not per message: RabbitMQ only expires messages at
    /// the head of a queue, so messages with mixed TTLs in one queue would
    /// wait for the slowest in front of them.
    public let retryDelays: [Duration]
    /// Topic exchanges besides the main one (short names), declared with
    /// the rest: a publisher's own, and those its subscribers bind to.
    public let exchanges: [String]

    public init(namespace: String, queues: [Queue], retryDelays: [Duration], exchanges: [String] = []) {
        self.namespace = namespace
        self.queues = queues
        self.retryDelays = retryDelays
        self.exchanges = exchanges
    }

    public var exchange: String { "\(namespace).shop" }
    public var deadLetterExchange: String { "\(namespace).dead-letters" }
    public var deadLetterQueue: String { "\(namespace).dead-letters" }
    public func queue(_ name: String) -> String { "\(namespace).\(name)" }
    /// An exchange by its short name (`events.order` → `<ns>.events.order`).
    public func exchange(_ name: String) -> String { "\(namespace).\(name)" }
    public func retryQueue(_ name: String, step: Int) -> String { "\(namespace).\(name).retry.\(step)" }

    /// Attempts a message gets in all: the first, plus one per retry step.
    public var maxAttempts: Int { retryDelays.count + 1 }

    /// Declares everything; safe to run any number of times, from any process.
    public func declare(on channel: AMQPChannel) async throws {
        try await channel.exchangeDeclare(exchange, type: .topic, durable: true)
        try await channel.exchangeDeclare(deadLetterExchange, type: .fanout, durable: true)
        try await channel.queueDeclare(deadLetterQueue, durable: true)
        try await channel.queueBind(queue: deadLetterQueue, exchange: deadLetterExchange, routingKey: "")
        for name in exchanges {
            try await channel.exchangeDeclare(exchange(name), type: .topic, durable: true)
        }
        for work in queues {
            // A message the consumer rejects outright (it never does on
            // purpose; a handler that crashes the channel might) still ends
            // among the dead letters rather than vanishing.
            try await channel.queueDeclare(queue(work.name), durable: true, arguments: QueueArguments(deadLetterExchange: deadLetterExchange))
            for binding in work.bindings {
                try await channel.queueBind(queue: queue(work.name), exchange: binding.exchange.map(exchange) ?? exchange, routingKey: binding.key)
            }
            for (index, delay) in retryDelays.enumerated() {
                // Nobody consumes a retry queue: messages sit out the TTL and
                // expire into the default exchange, addressed to the work queue.
                try await channel.queueDeclare(
                    retryQueue(work.name, step: index + 1), durable: true,
                    arguments: QueueArguments(deadLetterExchange: "", deadLetterRoutingKey: queue(work.name), messageTTL: delay))
            }
        }
    }

    /// `RETRY_DELAYS_MS=200,1000,5000`: the ladder's steps, in milliseconds.
    public static func retryDelays(parsing value: String?, default fallback: [Duration]) -> [Duration] {
        guard let value, !value.isEmpty else { return fallback }
        let steps = value.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard steps.count == value.split(separator: ",").count, steps.allSatisfy({ $0 >= 0 }) else { return fallback }
        return steps.map { .milliseconds($0) }
    }
}
