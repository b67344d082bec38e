import Common
import Foundation
import Messaging

/// A CloudEvents 1.0 event in structured JSON mode: the whole event, its
/// context attributes and its `data`, is one JSON object in the message
/// body (content type `application/cloudevents+json`).
///
/// Why an envelope at all: a consumer should learn what it holds (which
/// event, which version of its shape, about which aggregate, caused by
/// what) before it reads the data, and the same way for every event. A
/// standard envelope means tools that never heard of the shop can read it.
///
/// The project requires a few attributes CloudEvents leaves optional:
/// `time` (every fact happened at some moment) and `dataschema` (the
/// catalogue finds the schema, and so the version, through it).
/// `correlationid`, `causationid` and `requestid` are extension attributes.
public struct CloudEvent: Sendable, Equatable, Codable {
    public static let contentType = "application/cloudevents+json"
    public static let specVersion = "1.0"

    public var specversion: String
    public var id: String
    /// Who published it, as a URI reference: `/shop/order`.
    public var source: String
    /// What happened, namespaced: `shop.OrderCreated`.
    public var type: String
    /// When it happened, RFC 3339 on the wire.
    public var time: Date
    /// The aggregate the event is about (the order's id).
    public var subject: String?
    public var datacontenttype: String
    /// The JSON Schema `data` follows; its path carries the version.
    public var dataschema: String
    /// Extension: the same for every event of one order's story, so logs
    /// can follow it across services.
    public var correlationid: String?
    /// Extension: the id of the event this one reacts to.
    public var causationid: String?
    /// Extension: the HTTP request that caused this event (then it has no
    /// causationid: a request is a cause from outside the event flow).
    public var requestid: String?
    public var data: JSONValue
    /// Any other extension attributes, kept as they came: a consumer that
    /// passes an event on must not lose what it does not understand.
    public var extensions: [String: JSONValue]

    public init(
        id: String, source: String, type: String, time: Date, subject: String?,
        datacontenttype: String = "application/json", dataschema: String,
        correlationid: String? = nil, causationid: String? = nil, requestid: String? = nil,
        data: JSONValue, extensions: [String: JSONValue] = [:]
    ) {
        self.specversion = Self.specVersion
        self.id = id
        self.source = source
        self.type = type
        self.time = time
        self.subject = subject
        self.datacontenttype = datacontenttype
        self.dataschema = dataschema
        self.correlationid = correlationid
        self.causationid = causationid
        self.requestid = requestid
        self.data = data
        self.extensions = extensions
    }

    /// Extension (CloudEvents distributed tracing): the W3C Trace Context
    /// of the work that wrote the event, which its consumers continue.
    public var traceparent: String? {
        get { if case .string(let text)? = extensions["traceparent"] { text } else { nil } }
        set { extensions["traceparent"] = newValue.map { .string($0) } }
    }

    public var tracestate: String? {
        get { if case .string(let text)? = extensions["tracestate"] { text } else { nil } }
        set { extensions["tracestate"] = newValue.map { .string($0) } }
    }

    /// The attributes this type has a property for; every other member of
    /// the JSON object but `data` is an extension.
    static let knownAttributes: Set<String> = [
        "specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema",
        "correlationid", "causationid", "requestid",
    ]

    // MARK: Reading

    /// Parses a message body. Anything that is not a CloudEvent the project
    /// can read fails with the attribute named.
    public init(parsing body: some Sequence<UInt8>) throws(CloudEventError) {
        let json: JSONValue
        do {
            json = try JSONValue(parsing: body)
        } catch {
            throw CloudEventError(.notJSON, nil, "the body is not JSON")
        }
        try self.init(json: json)
    }

    public init(from decoder: any Decoder) throws {
        try self.init(json: try decoder.singleValueContainer().decode(JSONValue.self))
    }

    /// Checks the attributes one by one, in the order the specification
    /// lists them, so the first problem named is the most basic one.
    public init(json: JSONValue) throws(CloudEventError) {
        guard case .object(var members) = json else {
            throw CloudEventError(.notAnObject, nil, "a CloudEvent in structured JSON mode is a JSON object, and the body is not one")
        }
        if members["data_base64"] != nil {
            throw CloudEventError(.binaryData, "data_base64",
                "the event carries data_base64 (binary data); events here carry JSON in 'data'")
        }
        // Attribute names are restricted so that every protocol binding
        // (HTTP headers, AMQP properties, Kafka headers) can carry them as
        // they are: lower-case ASCII letters and digits, nothing else.
        for name in members.keys.sorted() where name != "data" && !Self.isValidAttributeName(name) {
            throw CloudEventError(.invalidAttributeName, name,
                "attribute name '\(name)' is not allowed: CloudEvents attribute names are lower-case letters and digits only (a-z, 0-9)")
        }
        // A JSON null stands for an absent attribute.
        func take(_ name: String) -> JSONValue? {
            let value = members.removeValue(forKey: name)
            return value == .null ? nil : value
        }
        func string(_ name: String, required: Bool, why: String = "") throws(CloudEventError) -> String? {
            guard let value = take(name) else {
                if required { throw CloudEventError(.missingAttribute, name, "the required attribute '\(name)' is missing\(why)") }
                return nil
            }
            guard case .string(let text) = value else {
                throw CloudEventError(.wrongType, name, "attribute '\(name)' must be a string, not \(value.kindName)")
            }
            guard !text.isEmpty else {
                throw CloudEventError(.emptyAttribute, name, "attribute '\(name)' must not be empty")
            }
            return text
        }

        let specversion = try string("specversion", required: true)!
        guard specversion == Self.specVersion else {
            throw CloudEventError(.unsupportedSpecVersion, "specversion",
                "specversion is '\(specversion)', and only CloudEvents \(Self.specVersion) is understood here")
        }
        self.specversion = specversion
        id = try string("id", required: true)!
        source = try string("source", required: true)!
        type = try string("type", required: true)!

        let dataschema = try string("dataschema", required: true, why: " (this project requires it: it names the schema, and so the version, of data)")!
        guard let url = URL(string: dataschema), url.scheme != nil else {
            throw CloudEventError(.invalidAttribute, "dataschema", "dataschema '\(dataschema)' is not an absolute URI")
        }
        self.dataschema = dataschema

        let contentType = try string("datacontenttype", required: false) ?? "application/json"
        guard Self.isJSON(contentType) else {
            throw CloudEventError(.unsupportedContentType, "datacontenttype",
                "datacontenttype is '\(contentType)'; events here carry JSON data (application/json or a +json type)")
        }
        datacontenttype = contentType

        subject = try string("subject", required: false)

        let time = try string("time", required: true, why: " (this project requires it: every fact happened at some moment)")!
        guard let date = RFC3339.parse(time) else {
            throw CloudEventError(.invalidTime, "time", "time '\(time)' is not an RFC 3339 timestamp (such as 2026-11-24T21:11:07.123Z)")
        }
        self.time = date

        correlationid = try string("correlationid", required: false)
        causationid = try string("causationid", required: false)
        requestid = try string("requestid", required: false)

        guard let data = members.removeValue(forKey: "data") else {
            throw CloudEventError(.missingData, "data", "the event has no 'data' member: a domain event's facts are its data")
        }
        self.data = data

        // What is left are extensions. CloudEvents' attribute types are all
        // scalars (string, integer, boolean, URI, timestamp, binary as base64).
        var extensions: [String: JSONValue] = [:]
        for name in members.keys.sorted() {
            guard let value = take(name) else { continue }
            switch value {
            case .string, .number, .bool: extensions[name] = value
            default:
                throw CloudEventError(.wrongType, name,
                    "extension attribute '\(name)' must be a string, a number or a boolean, not \(value.kindName)")
            }
        }
        self.extensions = extensions
    }

    static func isValidAttributeName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) }
    }

    static func isJSON(_ contentType: String) -> Bool {
        let media = contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json"))
    }

    // MARK: Writing

    struct AttributeKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Writes exactly the attribute names above (absent optionals left out,
    /// not null) and `time` in RFC 3339, UTC, to the millisecond.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AttributeKey.self)
        for (name, value) in extensions where !Self.knownAttributes.contains(name) && name != "data" {
            try c.encode(value, forKey: AttributeKey(name))
        }
        try c.encode(specversion, forKey: AttributeKey("specversion"))
        try c.encode(id, forKey: AttributeKey("id"))
        try c.encode(source, forKey: AttributeKey("source"))
        try c.encode(type, forKey: AttributeKey("type"))
        try c.encode(Timestamp.format(time), forKey: AttributeKey("time"))
        try c.encodeIfPresent(subject, forKey: AttributeKey("subject"))
        try c.encode(datacontenttype, forKey: AttributeKey("datacontenttype"))
        try c.encode(dataschema, forKey: AttributeKey("dataschema"))
        try c.encodeIfPresent(correlationid, forKey: AttributeKey("correlationid"))
        try c.encodeIfPresent(causationid, forKey: AttributeKey("causationid"))
        try c.encodeIfPresent(requestid, forKey: AttributeKey("requestid"))
        try c.encode(data, forKey: AttributeKey("data"))
    }

    /// The message body: the project's JSON (sorted keys, so stable).
    public func encoded() -> [UInt8] {
        // Nothing in an event can fail to encode: strings, a date, JSON.
        Array(try! Self.encoder.encode(self))
    }

    static let encoder = JSON.encoder()
}

/// Why a body is not a CloudEvent this project can read.
public struct CloudEventError: Error, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notJSON, notAnObject, missingAttribute, emptyAttribute, wrongType, invalidAttribute,
             invalidAttributeName, unsupportedSpecVersion, unsupportedContentType, invalidTime, missingData, binaryData
    }
    public let code: Code
    /// The attribute at fault, when there is one.
    public let attribute: String?
    /// A sentence a person can act on.
    public let description: String

    init(_ code: Code, _ attribute: String?, _ description: String) {
        self.code = code
        self.attribute = attribute
        self.description = description
    }
}

extension JSONValue {
    /// "a string", "an object": for error messages.
    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
