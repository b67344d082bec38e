import Foundation
import Messaging
import TestSupport
import Testing

@testable import Events

/// The validator agrees with python's `jsonschema` (Draft202012Validator,
/// formats checked) on whether each of many instances is valid: instances
/// are generated here from a few valid ones by breaking them every way the
/// generator knows, and both sides judge each one.
@Suite struct JSONSchemaTests {
    // MARK: Against python jsonschema

    /// An order-shaped schema that uses every supported keyword.
    static let order: JSONValue = [
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://shop.local/schemas/events/OrderCreated/v2.json",
        "title": "OrderCreated", "description": "A customer placed an order.",
        "type": "object",
        "required": ["orderId", "customerId", "lines", "totalCents", "currency", "placedAt"],
        "additionalProperties": false,
        "properties": [
            "orderId": ["type": "string", "pattern": "^ord_[A-Za-z0-9]+$"],
            "customerId": ["type": "string", "minLength": 1, "maxLength": 12],
            "lines": ["type": "array", "minItems": 1, "maxItems": 3, "items": ["$ref": "#/$defs/Line"]],
            "totalCents": ["type": "integer", "minimum": 0, "examples": [1250]],
            "currency": ["enum": ["EUR", "USD"]],
            "placedAt": ["type": "string", "format": "date-time"],
            "note": ["type": ["string", "null"], "maxLength": 3],
            "schemaVersion": ["const": 2],
            "discount": ["type": "number", "exclusiveMinimum": 0, "maximum": 0.5],
        ],
        "$defs": [
            "Line": [
                "type": "object",
                "required": ["sku", "quantity"],
                "properties": [
                    "sku": ["type": "string", "pattern": "[A-Z]{2}"],
                    "quantity": ["type": "integer", "minimum": 1, "maximum": 99],
                    "tags": ["type": "array", "items": ["type": "array", "maxItems": 2, "items": ["type": "string"]]],
                ],
                "additionalProperties": ["type": "string"],
            ],
        ],
    ]

    static let orderInstances: [JSONValue] = [
        [
            "orderId": "ord_1", "customerId": "cus_1", "totalCents": 1250, "currency": "EUR",
            "placedAt": "2026-11-24T21:11:07.123Z",
            "lines": [["sku": "AB-1", "quantity": 2, "tags": [["x", "y"], []]], ["sku": "CD", "quantity": 1, "gift": "yes"]],
        ],
        [
            "orderId": "ord_Z", "customerId": "c", "totalCents": 0, "currency": "USD", "placedAt": "2024-02-29t23:59:59+05:30",
            "lines": [["sku": "XY", "quantity": 99]], "note": .null, "schemaVersion": 2, "discount": 0.5,
        ],
    ]

    /// A tree that refers to itself, and a few small schemas that each
    /// lean on one keyword's corner cases.
    static let others: [(JSONValue, [JSONValue])] = [
        (
            [
                "$defs": ["Node": [
                    "type": "object", "required": ["value"], "additionalProperties": false,
                    "properties": ["value": ["type": "integer"], "children": ["type": "array", "items": ["$ref": "#/$defs/Node"]]],
                ]],
                "$ref": "#/$defs/Node",
            ],
            [["value": 1, "children": [["value": 2], ["value": 3, "children": [["value": 4]]]]]]
        ),
        (["type": ["integer", "null"], "minimum": 3, "exclusiveMaximum": 10], [3, .null, 9.0]),
        (["enum": [1, "1", true, .null, ["a": [1]]]], [1, "1", true, .null, ["a": [1.0]]]),
        (["const": ["a": 1, "b": [false]]], [["b": [false], "a": 1]]),
        (["type": "array", "maxItems": 2, "items": ["type": "array", "items": ["type": "integer"]]], [[[1, 2], []]]),
        (["type": "object", "additionalProperties": ["type": "string", "minLength": 2, "maxLength": 3]], [["a": "😀😀", "b": "abc"]]),
        (["type": "string", "pattern": "[0-9]{2}"], ["a12b"]),
        (["properties": ["a": false, "b": true], "required": ["b"]], [["b": 1]]),
        (true, [1]),
        (false, [1]),
    ]

    @Test func agreesWithPythonJsonschema() async throws {
        var cases: [(schema: JSONValue, instances: [JSONValue])] = [(Self.order, Self.orderInstances.flatMap(InstanceGenerator.variants))]
        for (schema, valid) in Self.others {
            cases.append((schema, valid.flatMap(InstanceGenerator.variants)))
        }
        var random = SplitMix64(seed: 6)
        for index in cases.indices {
            cases[index].instances += (0..<150).map { _ in InstanceGenerator.randomValue(&random, depth: 0) }
        }
        let request: JSONValue = .array(cases.map { ["schema": $0.schema, "instances": .array($0.instances)] })
        let answer = try await PythonPeer.runJSON(Self.pythonJudge, input: String(decoding: request.encoded(), as: UTF8.self))
        let verdicts = try #require(answer["results"] as? [[Bool]])
        try #require(verdicts.count == cases.count)

        var compared = 0, validCount = 0
        for (index, test) in cases.enumerated() {
            let schema = try JSONSchema(test.schema)
            for (instance, python) in zip(test.instances, verdicts[index]) {
                let errors = schema.validate(instance)
                #expect(errors.isEmpty == python, "schema \(index), instance \(instance.jsonText): python says \(python ? "valid" : "invalid"), we say \(errors)")
                compared += 1
                if python { validCount += 1 }
            }
        }
        // Enough of both kinds that agreement means something.
        #expect(compared > 2000)
        #expect(validCount > 100 && compared - validCount > 1000)
    }

    static let pythonJudge = """
        import json, sys
        from jsonschema import Draft202012Validator
        # Without rfc3339-validator, jsonschema skips date-time silently.
        assert "date-time" in Draft202012Validator.FORMAT_CHECKER.checkers, "pip install rfc3339-validator (scripts/requirements.txt)"
        results = []
        for case in json.load(sys.stdin):
            Draft202012Validator.check_schema(case["schema"])
            validator = Draft202012Validator(case["schema"], format_checker=Draft202012Validator.FORMAT_CHECKER)
            results.append([validator.is_valid(instance) for instance in case["instances"]])
        print(json.dumps({"results": results}))
        """

    // MARK: What the errors say

    @Test func errorsNameTheValueByItsPointer() throws {
        let schema = try JSONSchema(Self.order)
        var order = Self.orderInstances[0]
        order["customerId"] = nil
        order["totalCents"] = -1
        order["extra"] = true
        order["lines"] = [["sku": "ab", "quantity": 1.5], ["sku": "AB", "quantity": 0, "tags": [[1]]]]
        order["placedAt"] = "2026-02-30T10:00:00Z"
        #expect(schema.validate(order).sorted() == [
            "/customerId is required",
            "/extra is not allowed here (no such property)",
            "/lines/0/quantity must be an integer, not a number",
            "/lines/0/sku must match the pattern [A-Z]{2}",
            "/lines/1/quantity must be at least 1, not 0",
            "/lines/1/tags/0/0 must be a string, not a number",
            "/placedAt must be an RFC 3339 date-time (such as 2026-11-24T21:11:07.123Z)",
            "/totalCents must be at least 0, not -1",
        ])
        #expect(schema.validate("text") == ["the value must be an object, not a string"])
        #expect(schema.validate(Self.orderInstances[1]) == [])
    }

    // MARK: What a schema may say

    /// Schemas as JSON text, and where in each the loader should point.
    static let refused: [(schema: String, pointer: String)] = [
        (##"{"type": "object", "oneOf": [{"type": "object"}]}"##, "/oneOf"),
        (##"{"properties": {"a": {"prefixItems": [true]}}}"##, "/properties/a/prefixItems"),
        (##"{"properties": {"when": {"type": "string", "format": "email"}}}"##, "/properties/when/format"),
        (##"{"$ref": "https://example.com/other.json"}"##, "/$ref"),
        (##"{"$ref": "#/$defs/Missing"}"##, "/$ref"),
        (##"{"items": [{"type": "string"}]}"##, "/items"),
        (##"{"type": "text"}"##, "/type"),
        (##"{"$schema": "http://json-schema.org/draft-07/schema#"}"##, "/$schema"),
        (##"{"minimum": 0, "exclusiveMinimum": true}"##, "/exclusiveMinimum"),
        (##"{"pattern": "("}"##, "/pattern"),
        (##"{"minLength": -1}"##, "/minLength"),
        (##"{"properties": {"a": {"$id": "https://example.com/a"}}}"##, "/properties/a/$id"),
        (##"{"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}}"##, "/$defs/"),
        (##""object""##, ""),
    ]

    @Test(arguments: refused)
    func refusesWhatItDoesNotCheck(_ schema: String, _ pointer: String) {
        do {
            _ = try JSONSchema(parsing: Array(schema.utf8))
            Issue.record("\(schema) should not load")
        } catch {
            #expect(error.pointer.hasPrefix(pointer), "\(error)")
        }
    }
}

/// Instances for the comparison: variants of a valid value, each one
/// change away from it, and random JSON.
enum InstanceGenerator {
    /// Values of every JSON type, including ones near the schemas' limits.
    static let samples: [JSONValue] = [
        .null, true, false, 0, 1, -1, 1.5, 2, 3, 9.5, 10, 99, 100, 0.5, 0.25, 1e300,
        "", "x", "ab", "abc", "abcd", "😀😀", "😀😀😀", "EUR", "eur", "1", "ord_1", "ord_", "AB", "a12b",
        "2026-11-24T21:11:07Z", "2026-11-24T21:11:07.123456789012+01:00", "2026-02-29T10:00:00Z",
        "2026-11-24 21:11:07Z", "2026-11-24T21:11:07", "2026-13-01T00:00:00Z", "2026-06-30T23:59:60Z", "0000-01-01T00:00:00Z",
        [], [1], ["a"], [[1]], [["a"]], [.null], ["sku": "AB", "quantity": 1],
        [:], ["a": 1], ["value": 1], ["a": [1]], ["b": [false], "a": 1],
    ]

    /// The value itself, every sample in its place, and, for each member or
    /// element, the variants of that member or element, plus structural
    /// changes (a member removed or added, an element dropped or repeated).
    static func variants(of value: JSONValue) -> [JSONValue] {
        var found: [JSONValue] = [value] + samples
        switch value {
        case .object(let members):
            for key in members.keys.sorted() {
                var without = members
                without[key] = nil
                found.append(.object(without))
                for variant in variants(of: members[key]!).dropFirst() {
                    var changed = members
                    changed[key] = variant
                    found.append(.object(changed))
                }
            }
            for (key, extra) in [("zzz", JSONValue(1)), ("gift", "yes"), ("note", "ok")] where members[key] == nil {
                var changed = members
                changed[key] = extra
                found.append(.object(changed))
            }
        case .array(let elements):
            found.append(.array([]))
            if let first = elements.first {
                found.append(.array(Array(elements.dropFirst())))
                found.append(.array(elements + [first]))
                found.append(.array(elements + [first, first, first]))
            }
            for index in elements.indices.prefix(2) {
                for variant in variants(of: elements[index]).dropFirst() {
                    var changed = elements
                    changed[index] = variant
                    found.append(.array(changed))
                }
            }
        default:
            break
        }
        return found
    }

    /// Random JSON, small and repeatable (the seed is fixed).
    static func randomValue(_ random: inout SplitMix64, depth: Int) -> JSONValue {
        switch Int.random(in: 0..<(depth > 2 ? 4 : 6), using: &random) {
        case 0: return samples.randomElement(using: &random)!
        case 1: return .number(Double(Int.random(in: -5...120, using: &random)))
        case 2: return .string(["", "a", "ab", "abc", "ord_x", "EUR", "USD", "AB12", "2026-01-01T00:00:00Z"].randomElement(using: &random)!)
        case 3: return [JSONValue.null, true, 0.5].randomElement(using: &random)!
        case 4: return .array((0..<Int.random(in: 0...3, using: &random)).map { _ in randomValue(&random, depth: depth + 1) })
        default:
            let keys = ["value", "children", "a", "b", "sku", "quantity", "orderId", "x"]
            var members: [String: JSONValue] = [:]
            for _ in 0..<Int.random(in: 0...3, using: &random) {
                members[keys.randomElement(using: &random)!] = randomValue(&random, depth: depth + 1)
            }
            return .object(members)
        }
    }
}
