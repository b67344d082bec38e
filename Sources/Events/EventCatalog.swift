import Common
import Foundation
import Observability
import Messaging

/// Every event the shop knows: names and versions mapped to JSON Schemas,
/// and the steps that bring an old version's data up to the next.
///
/// The schemas are files in the repository, one per event and version:
/// `<schemaRoot>/OrderCreated/v2.json`. They are the contract between a
/// producer and its consumers, readable without Swift, and the envelope
/// points at one (`dataschema`, `https://shop.local/schemas/events/OrderCreated/v2.json`).
///
/// Both sides check: a producer validates before the event goes to its
/// outbox (a producer that breaks its schema fails in its own transaction,
/// not at every consumer), and a consumer validates what it receives (it
/// trusts the schema, not the producer's code).
///
/// Versions let the shape change without a flag day: a producer moves to
/// v2 while consumers still get v1 events from before (in queues, in dead
/// letters to replay). A consumer registers one step per version,
/// `upcast("OrderCreated", from: 1) { v1 in … v2 }`, and reads every event
/// as the version its code knows.
public struct EventCatalog: Sendable {
    public typealias Upcaster = @Sendable (JSONValue) throws -> JSONValue

    public let typePrefix: String
    public let schemaBase: String
    public private(set) var schemas: [EventSchemaKey: JSONSchema]
    /// By the version they start from.
    private var upcasters: [EventSchemaKey: Upcaster] = [:]

    /// Loads every `<Name>/v<N>.json` under `schemaRoot`. A file that is not
    /// a schema of the supported subset, or whose `$id` is not where the
    /// envelope will point, stops the service at start, not at its first
    /// event. Other files (a README) are left alone.
    public init(schemaRoot: URL, typePrefix: String = "shop.", schemaBase: String = "https://shop.local/schemas/events/") throws(EventCatalogError) {
        let files = FileManager.default
        let folders: [String]
        do {
            folders = try files.contentsOfDirectory(atPath: schemaRoot.path)
        } catch {
            throw EventCatalogError(.unreadableSchemas, "cannot list the schema folder \(schemaRoot.path): \(error.localizedDescription)")
        }
        var schemas: [EventSchemaKey: JSONSchema] = [:]
        for name in folders.sorted() where !name.hasPrefix(".") {
            let folder = schemaRoot.appendingPathComponent(name)
            var isFolder: ObjCBool = false
            guard files.fileExists(atPath: folder.path, isDirectory: &isFolder), isFolder.boolValue else { continue }
            guard Self.isEventName(name) else {
                throw EventCatalogError(.badSchemaFile, "\(folder.path): a folder of schemas is named after its event, in PascalCase (OrderCreated)")
            }
            let entries = (try? files.contentsOfDirectory(atPath: folder.path)) ?? []
            for file in entries.sorted() where file.hasSuffix(".json") && !file.hasPrefix(".") {
                let path = folder.appendingPathComponent(file).path
                guard let version = Self.version(ofFile: file) else {
                    throw EventCatalogError(.badSchemaFile, "\(path): a schema file is named v<version>.json (v1.json, v2.json)")
                }
                guard let bytes = files.contents(atPath: path) else {
                    throw EventCatalogError(.unreadableSchemas, "\(path): cannot be read")
                }
                schemas[EventSchemaKey(name, version: version)] = try Self.load(bytes, path: path)
            }
        }
        guard !schemas.isEmpty else {
            throw EventCatalogError(.unreadableSchemas, "no schemas under \(schemaRoot.path) (expected <Name>/v<N>.json files)")
        }
        try self.init(schemas: schemas, typePrefix: typePrefix, schemaBase: schemaBase)
    }

    /// A catalogue of schemas already loaded (tests, or schemas from elsewhere).
    public init(schemas: [EventSchemaKey: JSONSchema], typePrefix: String = "shop.", schemaBase: String = "https://shop.local/schemas/events/") throws(EventCatalogError) {
        self.schemas = schemas
        self.typePrefix = typePrefix
        self.schemaBase = schemaBase
        for key in schemas.keys.sorted() {
            if let id = schemas[key]!.id, id != dataschema(key.name, version: key.version) {
                throw EventCatalogError(.badSchemaFile,
                    "the schema of \(key) has $id '\(id)', but events will point at '\(dataschema(key.name, version: key.version))'")
            }
        }
    }

    static func load(_ bytes: Data, path: String) throws(EventCatalogError) -> JSONSchema {
        do {
            return try JSONSchema(parsing: bytes)
        } catch {
            throw EventCatalogError(.badSchemaFile, "\(path): \(error.description)")
        }
    }

    static func isEventName(_ name: String) -> Bool {
        guard let first = name.utf8.first, (65...90).contains(first) else { return false }
        return name.utf8.allSatisfy { (65...90).contains($0) || (97...122).contains($0) || (48...57).contains($0) }
    }

    /// `v12.json` → 12; nil for anything else (`v0.json`, `v01.json`, `12.json`).
    static func version(ofFile file: String) -> Int? {
        guard file.hasPrefix("v"), file.hasSuffix(".json") else { return nil }
        let digits = file.dropFirst().dropLast(5)
        guard let first = digits.first, first != "0", digits.allSatisfy(\.isASCII), let n = Int(digits), n > 0 else { return nil }
        return n
    }

    // MARK: Names

    /// `OrderCreated` → `shop.OrderCreated`.
    public func type(of name: String) -> String { typePrefix + name }

    /// `shop.OrderCreated` → `OrderCreated`, when the catalogue has a schema
    /// of that event; nil otherwise.
    public func name(ofType type: String) -> String? {
        guard type.hasPrefix(typePrefix) else { return nil }
        let name = String(type.dropFirst(typePrefix.count))
        return versions(of: name).isEmpty ? nil : name
    }

    /// The versions the catalogue has a schema of, oldest first.
    public func versions(of name: String) -> [Int] {
        schemas.keys.filter { $0.name == name }.map(\.version).sorted()
    }

    /// Every event name in the catalogue, sorted.
    public var names: [String] { Set(schemas.keys.map(\.name)).sorted() }

    public func dataschema(_ name: String, version: Int) -> String { "\(schemaBase)\(name)/v\(version).json" }

    /// The schema a `dataschema` URI names, when it is one of this catalogue's.
    public func key(ofDataschema uri: String) -> EventSchemaKey? {
        guard let key = Self.parse(dataschema: uri, base: schemaBase), schemas[key] != nil else { return nil }
        return key
    }

    static func parse(dataschema uri: String, base: String) -> EventSchemaKey? {
        guard uri.hasPrefix(base) else { return nil }
        let parts = uri.dropFirst(base.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, isEventName(String(parts[0])), let version = version(ofFile: String(parts[1])) else { return nil }
        return EventSchemaKey(String(parts[0]), version: version)
    }

    // MARK: Upcasting

    /// Registers the step from `version` to `version + 1` of an event: a
    /// function from the old data (valid against the old schema) to the new
    /// (which is then checked against the new schema). Registering a step
    /// twice, or for versions the catalogue has no schema of, is a mistake
    /// in the service's wiring and stops it at start.
    public mutating func upcast(_ name: String, from version: Int, _ step: @escaping Upcaster) {
        let key = EventSchemaKey(name, version: version)
        precondition(schemas[key] != nil && schemas[EventSchemaKey(name, version: version + 1)] != nil,
                     "upcast(\(name), from: \(version)): the catalogue needs schemas of both v\(version) and v\(version + 1)")
        precondition(upcasters[key] == nil, "upcast(\(name), from: \(version)) is registered twice")
        upcasters[key] = step
    }

    // MARK: Reading

    /// Parses, checks and upcasts a delivery: the body must be a CloudEvent
    /// whose type the catalogue knows, whose dataschema names one of its
    /// schemas, whose data validates against that schema. Then the data is
    /// upcast step by step to `targetVersion` (nil: the newest version the
    /// catalogue has of that event) and validated against that version's
    /// schema. Every failure is poison, with a reason a person can act on:
    /// retrying will not make a malformed event well-formed.
    public func read(_ message: IncomingMessage, as targetVersion: Int? = nil) throws(MessageFailure) -> ReceivedEvent {
        try read(body: message.body, as: targetVersion)
    }

    /// The same from the bytes of a body (a test, a log, another transport).
    public func read(body: some Sequence<UInt8>, as targetVersion: Int? = nil) throws(MessageFailure) -> ReceivedEvent {
        let envelope: CloudEvent
        do {
            envelope = try CloudEvent(parsing: body)
        } catch {
            throw .poison("the body is not a CloudEvent: \(error.description)")
        }
        return try read(envelope, as: targetVersion)
    }

    /// The same from an envelope already parsed.
    public func read(_ envelope: CloudEvent, as targetVersion: Int? = nil) throws(MessageFailure) -> ReceivedEvent {
        let about = "event \(envelope.id) (\(envelope.type))"
        guard let name = name(ofType: envelope.type) else {
            throw .poison("\(about): type '\(envelope.type)' is not in the event catalogue (it knows \(names.map { type(of: $0) }.joined(separator: ", ")))")
        }
        let known = versions(of: name).map { "v\($0)" }.joined(separator: ", ")
        guard let key = key(ofDataschema: envelope.dataschema) else {
            throw .poison("\(about): dataschema '\(envelope.dataschema)' names no schema in the catalogue (\(name) has \(known) at \(dataschema(name, version: 1).replacingOccurrences(of: "v1.json", with: "v<N>.json")))")
        }
        guard key.name == name else {
            throw .poison("\(about): dataschema '\(envelope.dataschema)' is the schema of \(key.name), not of \(name)")
        }
        let received = try check(envelope.data, against: key, about: about, what: "the data")

        let target = targetVersion ?? versions(of: name).last!
        guard target >= key.version else {
            // Not a bad event, but one this consumer is too old for: it
            // waits in the dead letters until the consumer is upgraded and
            // the letter replayed.
            throw .poison("\(about): \(key) is newer than the v\(target) this consumer reads, and events are only upcast, never downcast; upgrade the consumer, then replay")
        }
        guard schemas[EventSchemaKey(name, version: target)] != nil else {
            throw .poison("\(about): the consumer reads \(name) v\(target), and the catalogue has no schema of it (it has \(known))")
        }
        let data = try upcast(received, from: key, to: target, about: about)
        return ReceivedEvent(envelope: envelope, name: name, receivedVersion: key.version, version: target, data: data)
    }

    /// Data of an event stored at an older version, as `target` (nil: the
    /// newest), checked against each schema on the way: for an event store,
    /// whose rows keep the version they were written at.
    public func upcast(_ name: String, data: JSONValue, from version: Int, to target: Int? = nil) throws(MessageFailure) -> (version: Int, data: JSONValue) {
        let key = EventSchemaKey(name, version: version)
        guard schemas[key] != nil else { throw .poison("\(key) is not in the event catalogue") }
        let about = "a stored \(key)"
        let checked = try check(data, against: key, about: about, what: "the data")
        let target = target ?? versions(of: name).last!
        return (target, try upcast(checked, from: key, to: target, about: about))
    }

    private func upcast(_ received: JSONValue, from key: EventSchemaKey, to target: Int, about: String) throws(MessageFailure) -> JSONValue {
        let name = key.name
        var data = received
        for version in key.version..<target {
            let from = EventSchemaKey(name, version: version), to = EventSchemaKey(name, version: version + 1)
            guard let step = upcasters[from] else {
                throw .poison("\(about): no upcaster from \(from) to v\(version + 1) is registered, so \(key) cannot be read as v\(target)")
            }
            do {
                data = try step(data)
            } catch let failure as MessageFailure {
                throw failure
            } catch {
                throw .poison("\(about): upcasting \(from) to v\(version + 1) failed: \(error)")
            }
            data = try check(data, against: to, about: about, what: "the data upcast from \(from)")
        }
        return data
    }

    private func check(_ data: JSONValue, against key: EventSchemaKey, about: String, what: String) throws(MessageFailure) -> JSONValue {
        let errors = schemas[key]!.validate(data)
        guard errors.isEmpty else {
            throw .poison("\(about): \(what) does not follow the schema of \(key) (\(dataschema(key.name, version: key.version))): \(errors.joined(separator: "; "))")
        }
        return data
    }

    // MARK: Publishing

    /// The event as its producer sends it. The data is validated against
    /// the schema of `E.version` here, before the event reaches the outbox.
    ///
    /// - correlationId: the story this event belongs to; nil takes the
    ///   cause's (an event reacting to another stays in its story).
    /// - causedBy: the event this one reacts to (its id becomes `causationid`).
    /// - requestId: the HTTP request that caused it, for an event that is
    ///   not a reaction to another event. Not both.
    public func envelope<E: DomainEvent>(
        _ event: E, source: String, correlationId: String?, causedBy: ReceivedEvent?, requestId: String?,
        id: String = ID.make("evt"), time: Date = Date()
    ) throws -> CloudEvent {
        try envelope(event, source: source, correlationId: correlationId ?? causedBy?.correlationId,
                     causationId: causedBy?.id, requestId: requestId, id: id, time: time)
    }

    /// The same, with the cause known only by its id: work done later (a
    /// job) for an event that is no longer at hand.
    public func envelope<E: DomainEvent>(
        _ event: E, source: String, correlationId: String?, causationId: String?, requestId: String?,
        id: String = ID.make("evt"), time: Date = Date()
    ) throws -> CloudEvent {
        let key = EventSchemaKey(E.self)
        guard let schema = schemas[key] else {
            throw EventCatalogError(.unknownSchema, "\(E.self) is \(key), and the catalogue has no schema of it (add \(key.name)/v\(key.version).json)")
        }
        guard causationId == nil || requestId == nil else {
            throw EventCatalogError(.conflictingCauses, "\(key.name): an event is caused by another event or by a request, not both (causationid \(causationId!), requestId \(requestId!))")
        }
        guard !source.isEmpty, !id.isEmpty, !event.subject.isEmpty else {
            throw EventCatalogError(.invalidEnvelope, "\(key.name): source, id and subject must not be empty")
        }
        let data: JSONValue
        do {
            data = try JSONValue(encoding: event)
        } catch {
            throw EventCatalogError(.invalidData, "\(E.self) could not be encoded as JSON: \(error)")
        }
        let errors = schema.validate(data)
        guard errors.isEmpty else {
            throw EventCatalogError(.invalidData, "\(E.self) breaks its own schema (\(dataschema(key.name, version: key.version))): \(errors.joined(separator: "; "))")
        }
        var envelope = CloudEvent(
            id: id, source: source, type: type(of: key.name),
            // The wire has milliseconds: keep exactly that, so the envelope a
            // producer stores equals the one its consumers read.
            time: Date(timeIntervalSince1970: Double(Timestamp.milliseconds(time)) / 1000),
            subject: event.subject, dataschema: dataschema(key.name, version: key.version),
            correlationid: correlationId, causationid: causationId, requestid: requestId,
            data: data)
        // The trace of the request or message that caused it, so that its
        // consumers' work joins the same trace.
        if let trace = Observability.currentTrace {
            envelope.traceparent = trace.traceparent
            envelope.tracestate = trace.traceState
        }
        return envelope
    }

    /// The event as an outbox message: its id is the event's id (what
    /// consumers deduplicate on), its type the event's type (the routing
    /// key), its body the envelope in structured JSON mode.
    public func message<E: DomainEvent>(
        _ event: E, source: String, correlationId: String?, causedBy: ReceivedEvent? = nil, requestId: String? = nil
    ) throws -> OutgoingMessage {
        let envelope = try envelope(event, source: source, correlationId: correlationId, causedBy: causedBy, requestId: requestId)
        return OutgoingMessage(
            id: envelope.id, type: envelope.type, body: envelope.encoded(), correlationId: envelope.correlationid,
            traceparent: envelope.traceparent)
    }

    /// The same, with the cause known only by its id.
    public func message<E: DomainEvent>(
        _ event: E, source: String, correlationId: String?, causationId: String?
    ) throws -> OutgoingMessage {
        let envelope = try envelope(event, source: source, correlationId: correlationId, causationId: causationId, requestId: nil)
        return OutgoingMessage(
            id: envelope.id, type: envelope.type, body: envelope.encoded(), correlationId: envelope.correlationid,
            traceparent: envelope.traceparent)
    }

    /// Whether every step from `version` up to `target` has an upcaster.
    public func canUpcast(_ name: String, from version: Int, to target: Int) -> Bool {
        (version..<target).allSatisfy { upcasters[EventSchemaKey(name, version: $0)] != nil }
    }
}

/// Why the catalogue could not be loaded, or an event not be made.
public struct EventCatalogError: Error, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unreadableSchemas, badSchemaFile, unknownSchema, invalidData, conflictingCauses, invalidEnvelope
    }
    public let code: Code
    public let description: String

    init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
