import Foundation

/// A domain event's payload: a fact, named in the past tense, that one
/// service owns and publishes (`OrderCreated`, `PaymentCompleted`).
///
/// Which events exist is policy, so the types live in the stage folders;
/// this protocol is what the mechanism needs of them. A type is one version
/// of an event's shape: when the shape changes, the version goes up, a new
/// schema file is added beside the old one, and consumers upcast what was
/// published before.
public protocol DomainEvent: Codable, Sendable {
    /// The event's name, past tense, PascalCase: `OrderCreated`.
    static var name: String { get }
    /// The version of the shape this type is; producers publish it.
    static var version: Int { get }
    /// The aggregate the event is about (the order's id): the envelope's
    /// `subject`.
    var subject: String { get }
}

/// One schema of the catalogue: an event's name and a version of it.
public struct EventSchemaKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let name: String
    public let version: Int

    public init(_ name: String, version: Int) {
        self.name = name
        self.version = version
    }

    public init(name: String, version: Int) { self.init(name, version: version) }

    /// The key of a DomainEvent type.
    public init<E: DomainEvent>(_ type: E.Type) { self.init(E.name, version: E.version) }

    public var description: String { "\(name) v\(version)" }

    public static func < (a: Self, b: Self) -> Bool { (a.name, a.version) < (b.name, b.version) }
}
