import Common
import Foundation
import Logging
import Messaging

/// An event as a consumer gets it from `EventCatalog.read`: the envelope as
/// published, and the data checked against its schema and brought up to the
/// version the consumer reads.
public struct ReceivedEvent: Sendable {
    public let envelope: CloudEvent
    /// `OrderCreated`.
    public let name: String
    /// The version the producer published.
    public let receivedVersion: Int
    /// The version `data` has now, after upcasting.
    public let version: Int
    /// The data after upcasting, valid against the schema of `version`.
    public let data: JSONValue

    public init(envelope: CloudEvent, name: String, receivedVersion: Int, version: Int, data: JSONValue) {
        self.envelope = envelope
        self.name = name
        self.receivedVersion = receivedVersion
        self.version = version
        self.data = data
    }

    public var id: String { envelope.id }
    public var type: String { envelope.type }
    public var subject: String? { envelope.subject }
    public var time: Date { envelope.time }
    public var correlationId: String? { envelope.correlationid }
    public var causationId: String? { envelope.causationid }
    public var requestId: String? { envelope.requestid }

    /// Whether this is the event `E` stands for (by name; the version is
    /// what `read(_:as:)` made it).
    public func `is`<E: DomainEvent>(_ type: E.Type) -> Bool { name == E.name }

    /// The data as `T`; data that does not fit is poison, with the field
    /// named. The schema has been checked already, so this fails only when
    /// the Swift type and the schema disagree: a bug to fix on our side.
    public func decode<T: Decodable>(_ type: T.Type) throws(MessageFailure) -> T {
        do {
            return try JSON.decodeRequest(T.self, from: Data(data.encoded()))
        } catch {
            throw .poison("event \(id) (\(name) v\(version)) does not fit \(T.self): \(error.message)")
        }
    }

    /// What a log line about this event should carry, so that one order's
    /// story can be followed through every service (grep the correlation id).
    public var metadata: Logger.Metadata {
        var metadata: Logger.Metadata = [
            "event.id": .string(id), "event.type": .string(type), "event.version": .stringConvertible(version),
        ]
        if receivedVersion != version { metadata["event.receivedVersion"] = .stringConvertible(receivedVersion) }
        if let subject { metadata["event.subject"] = .string(subject) }
        if let correlationId { metadata["correlationId"] = .string(correlationId) }
        if let causationId { metadata["causationId"] = .string(causationId) }
        if let requestId { metadata["requestId"] = .string(requestId) }
        return metadata
    }
}
