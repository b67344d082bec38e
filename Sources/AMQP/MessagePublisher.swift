/// Anything messages can be published through: a channel, or the
/// reconnecting client's current channel. The conveniences are written once
/// here for both.
public protocol MessagePublisher: Sendable {
    func publish(_ message: OutboundMessage) async throws
    func publish(contentsOf messages: [OutboundMessage], window: Int) async throws
}

extension MessagePublisher {
    public func publish(
        _ body: [UInt8], exchange: String = "", routingKey: String, properties: BasicProperties = .persistent,
        mandatory: Bool = false
    ) async throws {
        try await publish(
            OutboundMessage(exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: mandatory))
    }
}
