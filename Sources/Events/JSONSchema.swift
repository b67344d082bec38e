import Foundation
import Messaging

/// A JSON Schema (draft 2020-12), limited to the keywords an event's data
/// needs, and a validator for it.
///
/// Why a subset and not all of JSON Schema: every keyword here is checked,
/// and any other keyword is an error when the schema is loaded. A validator
/// that skipped a keyword it does not know would accept data the schema
/// says is wrong, and nobody would notice; refusing the schema up front
/// makes the limit visible. The subset:
///
/// - `type` (a name or an array of names; `integer` is a number without a fraction)
/// - objects: `properties`, `required`, `additionalProperties` (a boolean or a schema)
/// - arrays: `items` (one schema for every element), `minItems`, `maxItems`
/// - values: `enum`, `const`
/// - numbers: `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`
/// - strings: `minLength`, `maxLength` (in Unicode code points), `pattern`
///   (searched, not anchored: write `^…$`), `format: "date-time"` (RFC 3339, checked)
/// - `$defs` and local references `"$ref": "#/$defs/Name"`
/// - annotations, which check nothing: `$schema` (must be draft 2020-12),
///   `$id` (top level only), `title`, `description`, `examples`, `$comment`
///
/// The tests hold it to python's `jsonschema` on the same schemas and many
/// instances: where both support a keyword, they agree.
public struct JSONSchema: Sendable {
    public static let draft = "https://json-schema.org/draft/2020-12/schema"

    /// The schema as written.
    public let source: JSONValue
    let root: Node
    let definitions: [String: Node]

    /// The schema's `$id`, if it has one.
    public var id: String? { source["$id"]?.stringValue }

    public init(_ value: JSONValue) throws(JSONSchemaError) {
        source = value
        var definitions: [String: Node] = [:]
        if case .object(let members) = value, let defs = members["$defs"] {
            guard case .object(let named) = defs else { throw JSONSchemaError("/$defs", "must be an object of schemas") }
            for (name, schema) in named {
                definitions[name] = try Node.compile(schema, at: "/$defs/" + JSONPointer.escape(name), isRoot: false)
            }
        }
        root = try Node.compile(value, at: "", isRoot: true)
        self.definitions = definitions
        // Every reference must name a definition that exists...
        for (pointer, name) in root.references() + definitions.values.flatMap({ $0.references() })
        where definitions[name] == nil {
            throw JSONSchemaError(pointer, "$ref names '#/$defs/\(name)', which is not defined")
        }
        // ...and no definition may stand for itself without a step into
        // the data (A is B, B is A): validating it would never end.
        for start in definitions.keys {
            var seen: Set<String> = [start]
            var next = definitions[start]?.directReference
            while let name = next {
                guard seen.insert(name).inserted else {
                    throw JSONSchemaError("/$defs/" + JSONPointer.escape(start), "$ref goes round in a circle (\(seen.sorted().joined(separator: ", "))) without a step into the data")
                }
                next = definitions[name]?.directReference
            }
        }
    }

    /// Parses and loads JSON text.
    public init(parsing bytes: some Sequence<UInt8>) throws(JSONSchemaError) {
        let value: JSONValue
        do { value = try JSONValue(parsing: bytes) } catch { throw JSONSchemaError("", "the schema is not JSON") }
        try self.init(value)
    }

    /// Every way `value` breaks the schema, each starting with the JSON
    /// pointer of the value at fault (`/items/0/quantity must be at least
    /// 1`, `/customerId is required`); empty when it is valid.
    public func validate(_ value: JSONValue) -> [String] {
        var errors: [String] = []
        root.validate(value, at: "", in: definitions, into: &errors)
        return errors
    }

    public func isValid(_ value: JSONValue) -> Bool { validate(value).isEmpty }
}

/// A schema that cannot be loaded: where in it, and why.
public struct JSONSchemaError: Error, Equatable, CustomStringConvertible {
    /// JSON pointer into the schema ("" for its top).
    public let pointer: String
    public let reason: String

    init(_ pointer: String, _ reason: String) {
        self.pointer = pointer
        self.reason = reason
    }

    public var description: String { "schema \(pointer.isEmpty ? "(top level)" : pointer): \(reason)" }
}

enum JSONPointer {
    /// `~` and `/` are escaped in a pointer's segments (RFC 6901).
    static func escape(_ segment: String) -> String {
        segment.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }

    static func unescape(_ segment: String) -> String {
        segment.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
    }

    /// How an error names the value: its pointer, or "the value" for the top.
    static func name(_ pointer: String) -> String { pointer.isEmpty ? "the value" : pointer }
}

/// JSON's types as a schema names them.
enum JSONType: String, CaseIterable, Sendable {
    case null, boolean, object, array, number, string, integer

    func admits(_ value: JSONValue) -> Bool {
        switch (self, value) {
        case (.null, .null), (.boolean, .bool), (.object, .object), (.array, .array), (.number, .number), (.string, .string): true
        case (.integer, .number(let n)): n.isFinite && n.rounded() == n
        default: false
        }
    }
}

/// NSRegularExpression is immutable once made and documented as safe to use
/// from any thread; this says so to the compiler.
struct Pattern: @unchecked Sendable {
    let text: String
    let regex: NSRegularExpression

    func matches(_ string: String) -> Bool {
        regex.firstMatch(in: string, range: NSRange(string.startIndex..., in: string)) != nil
    }
}

/// A schema compiled once: what each keyword asks, checked for shape.
indirect enum Node: Sendable {
    /// `true` accepts everything, `false` nothing.
    case always(Bool)
    case rules(Rules)

    struct Rules: Sendable {
        var types: [JSONType]?
        var properties: [String: Node] = [:]
        var required: [String] = []
        var additionalProperties: Node?
        var items: Node?
        var allowed: [JSONValue]?
        var constant: JSONValue??
        var minimum: Double?
        var maximum: Double?
        var exclusiveMinimum: Double?
        var exclusiveMaximum: Double?
        var minLength: Int?
        var maxLength: Int?
        var minItems: Int?
        var maxItems: Int?
        var pattern: Pattern?
        var dateTime = false
        /// `#/$defs/<name>`, and where the `$ref` stands in the schema.
        var reference: (name: String, pointer: String)?
    }

    static let annotations: Set<String> = ["$schema", "$id", "title", "description", "examples", "$comment", "$defs"]
    static let assertions: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "pattern", "format", "$ref",
    ]

    static func compile(_ schema: JSONValue, at pointer: String, isRoot: Bool) throws(JSONSchemaError) -> Node {
        switch schema {
        case .bool(let b): return .always(b)
        case .object(let members): return .rules(try compileRules(members, at: pointer, isRoot: isRoot))
        default: throw JSONSchemaError(pointer, "a schema is an object or a boolean, not \(schema.kindName)")
        }
    }

    private static func compileRules(_ members: [String: JSONValue], at pointer: String, isRoot: Bool) throws(JSONSchemaError) -> Rules {
        func here(_ keyword: String) -> String { pointer + "/" + JSONPointer.escape(keyword) }
        for keyword in members.keys.sorted() where !annotations.contains(keyword) && !assertions.contains(keyword) {
            throw JSONSchemaError(here(keyword), "keyword '\(keyword)' is not supported here (see JSONSchema for the subset); a schema must not say more than is checked")
        }
        func number(_ keyword: String) throws(JSONSchemaError) -> Double? {
            guard let value = members[keyword] else { return nil }
            guard case .number(let n) = value else {
                throw JSONSchemaError(here(keyword), "must be a number" + (value.boolValue != nil && keyword.hasPrefix("exclusive") ? " (draft 4's boolean form is not draft 2020-12)" : ""))
            }
            return n
        }
        func count(_ keyword: String) throws(JSONSchemaError) -> Int? {
            guard let value = members[keyword] else { return nil }
            guard let n = value.intValue, n >= 0 else { throw JSONSchemaError(here(keyword), "must be a non-negative integer") }
            return n
        }
        func string(_ keyword: String) throws(JSONSchemaError) -> String? {
            guard let value = members[keyword] else { return nil }
            guard case .string(let s) = value else { throw JSONSchemaError(here(keyword), "must be a string") }
            return s
        }

        // Annotations: check their shape, so a typo is not taken for a note.
        if let draft = try string("$schema"), draft != JSONSchema.draft {
            throw JSONSchemaError(here("$schema"), "is '\(draft)'; these schemas are draft 2020-12 (\(JSONSchema.draft))")
        }
        if members["$id"] != nil {
            // A nested $id would change what a $ref is relative to.
            guard isRoot else { throw JSONSchemaError(here("$id"), "$id is supported at the top level only") }
            _ = try string("$id")
        }
        _ = try string("title")
        _ = try string("description")
        _ = try string("$comment")
        if let examples = members["examples"], examples.arrayValue == nil {
            throw JSONSchemaError(here("examples"), "must be an array")
        }
        if members["$defs"] != nil, !isRoot {
            // References resolve against the top's $defs only.
            throw JSONSchemaError(here("$defs"), "$defs is supported at the top level only")
        }

        var rules = Rules()
        if let type = members["type"] {
            let names: [String]
            switch type {
            case .string(let name): names = [name]
            case .array(let list) where !list.isEmpty && list.allSatisfy({ $0.stringValue != nil }):
                names = list.compactMap(\.stringValue)
            default: throw JSONSchemaError(here("type"), "must be a type name or a non-empty array of them")
            }
            guard Set(names).count == names.count else { throw JSONSchemaError(here("type"), "names a type twice") }
            rules.types = try names.map { (name) throws(JSONSchemaError) -> JSONType in
                guard let t = JSONType(rawValue: name) else {
                    throw JSONSchemaError(here("type"), "'\(name)' is not a JSON Schema type (\(JSONType.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                return t
            }
        }
        if let properties = members["properties"] {
            guard case .object(let named) = properties else { throw JSONSchemaError(here("properties"), "must be an object of schemas") }
            for (name, schema) in named {
                rules.properties[name] = try compile(schema, at: here("properties") + "/" + JSONPointer.escape(name), isRoot: false)
            }
        }
        if let required = members["required"] {
            guard case .array(let list) = required, list.allSatisfy({ $0.stringValue != nil }) else {
                throw JSONSchemaError(here("required"), "must be an array of property names")
            }
            rules.required = list.compactMap(\.stringValue)
            guard Set(rules.required).count == rules.required.count else { throw JSONSchemaError(here("required"), "names a property twice") }
        }
        if let additional = members["additionalProperties"] {
            rules.additionalProperties = try compile(additional, at: here("additionalProperties"), isRoot: false)
        }
        if let items = members["items"] {
            if items.arrayValue != nil {
                throw JSONSchemaError(here("items"), "must be one schema; the array form (a tuple) is prefixItems in draft 2020-12, which this subset lacks")
            }
            rules.items = try compile(items, at: here("items"), isRoot: false)
        }
        if let allowed = members["enum"] {
            guard case .array(let list) = allowed else { throw JSONSchemaError(here("enum"), "must be an array of the allowed values") }
            rules.allowed = list
        }
        if let constant = members["const"] { rules.constant = .some(constant) }
        rules.minimum = try number("minimum")
        rules.maximum = try number("maximum")
        rules.exclusiveMinimum = try number("exclusiveMinimum")
        rules.exclusiveMaximum = try number("exclusiveMaximum")
        rules.minLength = try count("minLength")
        rules.maxLength = try count("maxLength")
        rules.minItems = try count("minItems")
        rules.maxItems = try count("maxItems")
        if let pattern = try string("pattern") {
            do {
                rules.pattern = Pattern(text: pattern, regex: try NSRegularExpression(pattern: pattern))
            } catch {
                throw JSONSchemaError(here("pattern"), "'\(pattern)' is not a regular expression")
            }
        }
        if let format = try string("format") {
            // Formats are only notes in draft 2020-12 unless a validator
            // chooses to check them. This one checks the one it supports and
            // refuses the others, rather than letting them pass unchecked.
            guard format == "date-time" else {
                throw JSONSchemaError(here("format"), "format '\(format)' is not supported (only date-time, which is checked)")
            }
            rules.dateTime = true
        }
        if let ref = try string("$ref") {
            let prefix = "#/$defs/"
            guard ref.hasPrefix(prefix), ref.count > prefix.count, !ref.dropFirst(prefix.count).contains("/") else {
                throw JSONSchemaError(here("$ref"), "'\(ref)' is not supported: only local references of the form #/$defs/Name")
            }
            rules.reference = (JSONPointer.unescape(String(ref.dropFirst(prefix.count))), here("$ref"))
        }
        return rules
    }

    /// Every `$ref` in this schema and below: (where, which definition).
    func references() -> [(String, String)] {
        guard case .rules(let rules) = self else { return [] }
        var found: [(String, String)] = rules.reference.map { [($0.pointer, $0.name)] } ?? []
        for child in Array(rules.properties.values) + [rules.additionalProperties, rules.items].compactMap({ $0 }) {
            found += child.references()
        }
        return found
    }

    /// The definition this schema refers to at its own level, where the same
    /// value is validated again (not one of its members or elements).
    var directReference: String? {
        if case .rules(let rules) = self { rules.reference?.name } else { nil }
    }

    func validate(_ value: JSONValue, at pointer: String, in definitions: [String: Node], into errors: inout [String]) {
        let name = JSONPointer.name(pointer)
        let rules: Rules
        switch self {
        case .always(true): return
        case .always(false):
            errors.append("\(name) is not allowed here")
            return
        case .rules(let r): rules = r
        }
        if let reference = rules.reference, let target = definitions[reference.name] {
            target.validate(value, at: pointer, in: definitions, into: &errors)
        }
        if let types = rules.types, !types.contains(where: { $0.admits(value) }) {
            let expected = types.map { $0 == .integer || $0 == .object || $0 == .array ? "an \($0.rawValue)" : "a \($0.rawValue)" }
            errors.append("\(name) must be \(expected.joined(separator: " or ")), not \(value.kindName)")
            // The other keywords would only repeat that the type is wrong.
            return
        }
        if let allowed = rules.allowed, !allowed.contains(value) {
            errors.append("\(name) must be one of \(allowed.map(\.jsonText).joined(separator: ", ")), not \(value.jsonText)")
        }
        if let constant = rules.constant, let expected = constant, value != expected {
            errors.append("\(name) must be \(expected.jsonText), not \(value.jsonText)")
        }
        switch value {
        case .number(let n):
            if let m = rules.minimum, n < m { errors.append("\(name) must be at least \(JSONValue.number(m).jsonText), not \(value.jsonText)") }
            if let m = rules.maximum, n > m { errors.append("\(name) must be at most \(JSONValue.number(m).jsonText), not \(value.jsonText)") }
            if let m = rules.exclusiveMinimum, n <= m { errors.append("\(name) must be greater than \(JSONValue.number(m).jsonText), not \(value.jsonText)") }
            if let m = rules.exclusiveMaximum, n >= m { errors.append("\(name) must be less than \(JSONValue.number(m).jsonText), not \(value.jsonText)") }
        case .string(let s):
            // JSON Schema counts characters as Unicode code points.
            let length = s.unicodeScalars.count
            if let m = rules.minLength, length < m { errors.append("\(name) must be at least \(m) characters long") }
            if let m = rules.maxLength, length > m { errors.append("\(name) must be at most \(m) characters long") }
            if let p = rules.pattern, !p.matches(s) { errors.append("\(name) must match the pattern \(p.text)") }
            if rules.dateTime, RFC3339.parse(s) == nil { errors.append("\(name) must be an RFC 3339 date-time (such as 2026-11-24T21:11:07.123Z)") }
        case .array(let elements):
            if let m = rules.minItems, elements.count < m { errors.append("\(name) must have at least \(m) item\(m == 1 ? "" : "s")") }
            if let m = rules.maxItems, elements.count > m { errors.append("\(name) must have at most \(m) item\(m == 1 ? "" : "s")") }
            if let items = rules.items {
                for (index, element) in elements.enumerated() {
                    items.validate(element, at: pointer + "/\(index)", in: definitions, into: &errors)
                }
            }
        case .object(let members):
            for key in rules.required where members[key] == nil {
                errors.append("\(pointer)/\(JSONPointer.escape(key)) is required")
            }
            for key in members.keys.sorted() {
                let member = pointer + "/" + JSONPointer.escape(key)
                if let schema = rules.properties[key] {
                    schema.validate(members[key]!, at: member, in: definitions, into: &errors)
                } else if case .always(false) = rules.additionalProperties {
                    errors.append("\(member) is not allowed here (no such property)")
                } else if let schema = rules.additionalProperties {
                    schema.validate(members[key]!, at: member, in: definitions, into: &errors)
                }
            }
        case .null, .bool:
            break
        }
    }
}

extension JSONValue {
    /// Compact JSON text, to quote a value in an error.
    var jsonText: String { String(decoding: encoded(), as: UTF8.self) }
}
