import Common
import Foundation
import Messaging
import Observability
import Testing

@testable import Events

/// An event that changed shape: v1 had the total in cents, v2 has an
/// amount with its currency. The catalogue reads either as v2.
struct OrderPlacedV1: DomainEvent {
    static let name = "OrderPlaced"
    static let version = 1
    var orderId: String
    var totalCents: Int
    var subject: String { orderId }
}

struct OrderPlaced: DomainEvent, Equatable {
    static let name = "OrderPlaced"
    static let version = 2
    struct Money: Codable, Equatable { var cents: Int; var currency: String }
    var orderId: String
    var total: Money
    var placedAt: Date
    var subject: String { orderId }
}

struct StockReserved: DomainEvent {
    static let name = "StockReserved"
    static let version = 1
    var orderId: String
    var subject: String { orderId }
}

/// A schema folder of a test's own, removed afterwards.
func withSchemaFolder<T>(_ files: [String: JSONValue], _ body: (URL) throws -> T) throws -> T {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("events-schemas-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: root) }
    for (path, schema) in files {
        let url = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(schema.encoded()).write(to: url)
    }
    return try body(root)
}

@Suite struct EventCatalogTests {
    static let files: [String: JSONValue] = [
        "OrderPlaced/v1.json": [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://shop.local/schemas/events/OrderPlaced/v1.json",
            "type": "object", "required": ["orderId", "totalCents"], "additionalProperties": false,
            "properties": ["orderId": ["type": "string", "pattern": "^ord_"], "totalCents": ["type": "integer", "minimum": 0]],
        ],
        "OrderPlaced/v2.json": [
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object", "required": ["orderId", "total", "placedAt"], "additionalProperties": false,
            "properties": [
                "orderId": ["type": "string", "pattern": "^ord_"],
                "total": ["$ref": "#/$defs/Money"],
                "placedAt": ["type": "string", "format": "date-time"],
            ],
            "$defs": ["Money": [
                "type": "object", "required": ["cents", "currency"], "additionalProperties": false,
                "properties": ["cents": ["type": "integer", "minimum": 0], "currency": ["enum": ["EUR", "USD"]]],
            ]],
        ],
        "StockReserved/v1.json": ["type": "object", "required": ["orderId"], "properties": ["orderId": ["type": "string"]]],
        "README.md": "not a schema, left alone",
    ]

    /// v1 → v2: the cents become an amount in euros (all v1 orders were),
    /// and the time, which v1 did not carry, is the envelope's. Here it is
    /// fixed, as a step cannot see the envelope.
    static func catalog() throws -> EventCatalog {
        var catalog = try withSchemaFolder(files) { try EventCatalog(schemaRoot: $0) }
        catalog.upcast("OrderPlaced", from: 1) { v1 in
            var v2 = v1
            v2["totalCents"] = nil
            v2["total"] = ["cents": v1["totalCents"] ?? 0, "currency": "EUR"]
            v2["placedAt"] = "2020-01-01T00:00:00Z"
            return v2
        }
        return catalog
    }

    static let placedAt = Timestamp.parse("2026-11-24T21:11:07.123Z")!

    @Test func loadsEveryNameAndVersion() throws {
        let catalog = try Self.catalog()
        #expect(Set(catalog.schemas.keys) == [EventSchemaKey("OrderPlaced", version: 1), EventSchemaKey("OrderPlaced", version: 2), EventSchemaKey("StockReserved", version: 1)])
        #expect(catalog.type(of: "OrderPlaced") == "shop.OrderPlaced")
        #expect(catalog.name(ofType: "shop.OrderPlaced") == "OrderPlaced")
        #expect(catalog.name(ofType: "shop.Nothing") == nil)
        #expect(catalog.name(ofType: "OrderPlaced") == nil)
        #expect(catalog.dataschema("OrderPlaced", version: 2) == "https://shop.local/schemas/events/OrderPlaced/v2.json")
        #expect(catalog.key(ofDataschema: "https://shop.local/schemas/events/OrderPlaced/v2.json") == EventSchemaKey("OrderPlaced", version: 2))
        #expect(catalog.key(ofDataschema: "https://shop.local/schemas/events/OrderPlaced/v3.json") == nil)
        #expect(catalog.key(ofDataschema: "https://elsewhere/schemas/events/OrderPlaced/v1.json") == nil)
        #expect(catalog.versions(of: "OrderPlaced") == [1, 2])
    }

    @Test func aV1EventIsReadAsV2() throws {
        let catalog = try Self.catalog()
        let message = try catalog.message(OrderPlacedV1(orderId: "ord_1", totalCents: 1250), source: "/shop/order", correlationId: "cor_1", requestId: "req_1")
        #expect(message.type == "shop.OrderPlaced")
        let event = try catalog.read(body: message.body)
        #expect(event.id == message.id)
        #expect(event.name == "OrderPlaced" && event.receivedVersion == 1 && event.version == 2)
        #expect(event.envelope.dataschema.hasSuffix("/OrderPlaced/v1.json"))
        #expect(try event.decode(OrderPlaced.self) == OrderPlaced(
            orderId: "ord_1", total: .init(cents: 1250, currency: "EUR"), placedAt: Timestamp.parse("2020-01-01T00:00:00Z")!))
        #expect(event.correlationId == "cor_1" && event.requestId == "req_1" && event.envelope.causationid == nil)

        // A consumer that still reads v1 gets it as it was.
        let asV1 = try catalog.read(body: message.body, as: 1)
        #expect(asV1.version == 1 && asV1.data == ["orderId": "ord_1", "totalCents": 1250])
    }

    /// The CloudEvents distributed-tracing extension: an event made in a
    /// trace carries it in its envelope, and its message in the header.
    @Test func anEventMadeInATraceCarriesIt() throws {
        let catalog = try Self.catalog()
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let message = try Observability.inTrace(traceparent) {
            try catalog.message(OrderPlacedV1(orderId: "ord_3", totalCents: 5), source: "/shop/order", correlationId: "cor_3", requestId: "req_3")
        }
        #expect(message.traceparent == traceparent)
        let event = try catalog.read(body: message.body)
        #expect(event.envelope.traceparent == traceparent)
        #expect(event.envelope.tracestate == nil)
        let json = try JSONSerialization.jsonObject(with: Data(message.body)) as? [String: Any]
        #expect(json?["traceparent"] as? String == traceparent)

        let plain = try catalog.message(OrderPlacedV1(orderId: "ord_4", totalCents: 5), source: "/shop/order", correlationId: "cor_4", requestId: "req_4")
        #expect(plain.traceparent == nil)
        #expect(try catalog.read(body: plain.body).envelope.traceparent == nil)
    }

    @Test func aV2EventIsReadAsItIs() throws {
        let catalog = try Self.catalog()
        let placed = OrderPlaced(orderId: "ord_2", total: .init(cents: 990, currency: "USD"), placedAt: Self.placedAt)
        let envelope = try catalog.envelope(placed, source: "/shop/order", correlationId: "cor_2", causedBy: nil, requestId: nil, id: "evt_2", time: Self.placedAt)
        #expect(envelope.subject == "ord_2" && envelope.type == "shop.OrderPlaced" && envelope.time == Self.placedAt)
        let event = try catalog.read(body: envelope.encoded())
        #expect(event.envelope == envelope)
        #expect(event.receivedVersion == 2 && event.version == 2)
        #expect(try event.decode(OrderPlaced.self) == placed)

        // An event reacting to it carries its id as the cause and stays in its story.
        let reaction = try catalog.envelope(StockReserved(orderId: "ord_2"), source: "/shop/inventory", correlationId: nil, causedBy: event, requestId: nil)
        #expect(reaction.causationid == "evt_2" && reaction.correlationid == "cor_2" && reaction.requestid == nil)
        #expect(throws: EventCatalogError.self) {
            try catalog.envelope(StockReserved(orderId: "ord_2"), source: "/shop/inventory", correlationId: nil, causedBy: event, requestId: "req_1")
        }
    }

    @Test func dataThatBreaksItsSchemaIsPoisonNamingTheField() throws {
        let catalog = try Self.catalog()
        let envelope = CloudEvent(
            id: "evt_3", source: "/shop/order", type: "shop.OrderPlaced", time: Self.placedAt, subject: "ord_3",
            dataschema: catalog.dataschema("OrderPlaced", version: 1), data: ["orderId": "ord_3", "totalCents": "12.50"])
        let reason = poisonReason { () throws(MessageFailure) in _ = try catalog.read(body: envelope.encoded()) }
        #expect(reason.contains("/totalCents must be an integer, not a string"))
        #expect(reason.contains("OrderPlaced v1"))
        #expect(reason.contains("evt_3"))

        // A producer that breaks its own schema fails before the outbox.
        do {
            _ = try catalog.message(OrderPlacedV1(orderId: "3", totalCents: -1), source: "/shop/order", correlationId: nil)
            Issue.record("the producer's broken event was accepted")
        } catch let error as EventCatalogError {
            #expect(error.code == .invalidData)
            #expect(error.description.contains("/orderId must match the pattern ^ord_"))
            #expect(error.description.contains("/totalCents must be at least 0"))
        }
    }

    @Test func anUnknownTypeOrDataschemaIsPoison() throws {
        let catalog = try Self.catalog()
        func event(type: String, dataschema: String) -> CloudEvent {
            CloudEvent(id: "evt_4", source: "/shop/order", type: type, time: Self.placedAt, subject: "ord_4",
                       dataschema: dataschema, data: ["orderId": "ord_4", "totalCents": 1])
        }
        let v1 = catalog.dataschema("OrderPlaced", version: 1)
        #expect(poisonReason { () throws(MessageFailure) in _ = try catalog.read(event(type: "shop.OrderShipped", dataschema: v1)) }
            .contains("type 'shop.OrderShipped' is not in the event catalogue"))
        #expect(poisonReason { () throws(MessageFailure) in _ = try catalog.read(event(type: "OrderPlaced", dataschema: v1)) }
            .contains("type 'OrderPlaced' is not in the event catalogue"))
        #expect(poisonReason { () throws(MessageFailure) in
            _ = try catalog.read(event(type: "shop.OrderPlaced", dataschema: "https://shop.local/schemas/events/OrderPlaced/v7.json"))
        }.contains("names no schema in the catalogue (OrderPlaced has v1, v2"))
        #expect(poisonReason { () throws(MessageFailure) in
            _ = try catalog.read(event(type: "shop.OrderPlaced", dataschema: catalog.dataschema("StockReserved", version: 1)))
        }.contains("is the schema of StockReserved, not of OrderPlaced"))
        #expect(poisonReason { () throws(MessageFailure) in _ = try catalog.read(body: Array("{\"id\":\"x\"}".utf8)) }
            .contains("not a CloudEvent: the required attribute 'specversion' is missing"))
    }

    @Test func versionsTheConsumerCannotReachArePoison() throws {
        var catalog = try Self.catalog()
        let v2 = try catalog.message(OrderPlaced(orderId: "ord_5", total: .init(cents: 1, currency: "EUR"), placedAt: Self.placedAt), source: "/shop/order", correlationId: nil)
        #expect(poisonReason { () throws(MessageFailure) in _ = try catalog.read(body: v2.body, as: 1) }.contains("never downcast"))

        // Without its upcaster, a v1 event cannot be read as v2.
        let bare = try withSchemaFolder(Self.files) { try EventCatalog(schemaRoot: $0) }
        let v1 = try bare.message(OrderPlacedV1(orderId: "ord_5", totalCents: 1), source: "/shop/order", correlationId: nil)
        #expect(poisonReason { () throws(MessageFailure) in _ = try bare.read(body: v1.body) }.contains("no upcaster from OrderPlaced v1"))

        // An upcaster whose output breaks the next schema is caught too.
        catalog = bare
        catalog.upcast("OrderPlaced", from: 1) { $0 }
        #expect(poisonReason { () throws(MessageFailure) in _ = try catalog.read(body: v1.body) }
            .contains("the data upcast from OrderPlaced v1 does not follow the schema of OrderPlaced v2"))
    }

    @Test func aSchemaTheValidatorCannotCheckFailsAtLoad() throws {
        var files = Self.files
        files["StockReserved/v2.json"] = ["type": "object", "properties": ["orderId": ["type": "string", "format": "uuid"]]]
        #expect(throws: EventCatalogError.self) { try withSchemaFolder(files) { try EventCatalog(schemaRoot: $0) } }

        files = Self.files
        files["StockReserved/v2.json"] = ["type": "object", "anyOf": [["required": ["orderId"]]]]
        do {
            _ = try withSchemaFolder(files) { try EventCatalog(schemaRoot: $0) }
            Issue.record("a schema with anyOf was loaded")
        } catch let error as EventCatalogError {
            #expect(error.code == .badSchemaFile)
            #expect(error.description.contains("StockReserved/v2.json: schema /anyOf: keyword 'anyOf' is not supported"))
        }

        // The $id, when given, must be where events point.
        files = Self.files
        files["StockReserved/v1.json"] = ["$id": "https://shop.local/schemas/StockReserved.json", "type": "object"]
        #expect(throws: EventCatalogError.self) { try withSchemaFolder(files) { try EventCatalog(schemaRoot: $0) } }

        files = Self.files
        files["StockReserved/version1.json"] = ["type": "object"]
        #expect(throws: EventCatalogError.self) { try withSchemaFolder(files) { try EventCatalog(schemaRoot: $0) } }

        #expect(throws: EventCatalogError.self) { try EventCatalog(schemaRoot: URL(fileURLWithPath: "/nonexistent/schemas")) }
    }
}

/// The reason of the poison `body` throws; the test fails if it throws
/// nothing or something else.
func poisonReason(_ body: () throws(MessageFailure) -> Void) -> String {
    do {
        try body()
        Issue.record("expected poison, nothing was thrown")
    } catch {
        if case .poison(let reason) = error { return reason }
        Issue.record("expected poison, got \(error)")
    }
    return ""
}
