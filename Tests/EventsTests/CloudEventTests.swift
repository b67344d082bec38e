import Common
import Foundation
import Messaging
import Testing

@testable import Events

/// The envelope: what it writes, what it reads back, and what it refuses.
@Suite struct CloudEventTests {
    static let time = Timestamp.parse("2026-11-24T21:11:07.123Z")!

    static var sample: CloudEvent {
        CloudEvent(
            id: "evt_1", source: "/shop/order", type: "shop.OrderCreated", time: time, subject: "ord_1",
            dataschema: "https://shop.local/schemas/events/OrderCreated/v2.json",
            correlationid: "cor_1", causationid: "evt_0", data: ["orderId": "ord_1", "totalCents": 1250, "lines": [["sku": "A", "quantity": 2]]],
            extensions: ["traceparent": "00-abc-def-01", "priority": 3])
    }

    /// A valid event as JSON, to break one attribute at a time.
    static var sampleJSON: [String: JSONValue] { try! JSONValue(parsing: sample.encoded()).objectValue! }

    func read(_ members: [String: JSONValue]) -> Result<CloudEvent, CloudEventError> {
        Result { () throws(CloudEventError) in try CloudEvent(parsing: JSONValue.object(members).encoded()) }
    }

    @Test func roundTripKeepsEveryAttribute() throws {
        let event = Self.sample
        let back = try CloudEvent(parsing: event.encoded())
        #expect(back == event)
        // Also through Codable, as a consumer using JSONDecoder would.
        #expect(try JSON.decoder().decode(CloudEvent.self, from: Data(event.encoded())) == event)
    }

    @Test func writesExactlyTheAttributeNames() throws {
        let json = Self.sampleJSON
        #expect(Set(json.keys) == [
            "specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema",
            "correlationid", "causationid", "data", "traceparent", "priority",
        ])
        #expect(json["specversion"] == "1.0")
        #expect(json["time"] == "2026-11-24T21:11:07.123Z")
        #expect(json["datacontenttype"] == "application/json")
        // Absent optionals are left out, not written as null.
        #expect(json["requestid"] == nil)
        // Whole numbers stay whole in data.
        #expect(String(decoding: Self.sample.encoded(), as: UTF8.self).contains("\"totalCents\":1250}"))
    }

    @Test func readsTimesInAnyRFC3339Form() throws {
        for (text, expected) in [
            ("2026-11-24T22:11:07.123+01:00", "2026-11-24T21:11:07.123Z"),
            ("2026-11-24t21:11:07.1234567z", "2026-11-24T21:11:07.123Z"),
            ("2026-11-24T16:41:07-04:30", "2026-11-24T21:11:07.000Z"),
            ("2026-11-24T21:11:07.123Z", "2026-11-24T21:11:07.123Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"),
        ] {
            var json = Self.sampleJSON
            json["time"] = .string(text)
            let event = try read(json).get()
            #expect(Timestamp.format(event.time) == expected, "\(text)")
        }
    }

    @Test func nullStandsForAnAbsentOptionalAttribute() throws {
        var json = Self.sampleJSON
        json["subject"] = .null
        json["correlationid"] = .null
        let event = try read(json).get()
        #expect(event.subject == nil && event.correlationid == nil)
    }

    @Test(arguments: ["specversion", "id", "source", "type", "time", "dataschema"])
    func rejectsAMissingRequiredAttribute(_ attribute: String) {
        var json = Self.sampleJSON
        json[attribute] = nil
        let error = read(json).failure
        #expect(error?.code == .missingAttribute)
        #expect(error?.attribute == attribute)
        #expect(error?.description.contains("'\(attribute)' is missing") == true)
    }

    @Test(arguments: ["specversion", "id", "source", "type", "time", "dataschema", "subject", "correlationid"])
    func rejectsAnEmptyAttribute(_ attribute: String) {
        var json = Self.sampleJSON
        json[attribute] = ""
        let error = read(json).failure
        #expect(error?.code == .emptyAttribute)
        #expect(error?.attribute == attribute)
    }

    @Test(arguments: ["id", "source", "type", "subject", "causationid"])
    func rejectsANonStringAttribute(_ attribute: String) {
        var json = Self.sampleJSON
        json[attribute] = 42
        let error = read(json).failure
        #expect(error?.code == .wrongType)
        #expect(error?.description == "attribute '\(attribute)' must be a string, not a number")
    }

    @Test func rejectsMissingData() {
        var json = Self.sampleJSON
        json["data"] = nil
        #expect(read(json).failure?.code == .missingData)
    }

    @Test(arguments: ["0.3", "1", "1.0.2", "2.0"])
    func rejectsAnotherSpecVersion(_ version: String) {
        var json = Self.sampleJSON
        json["specversion"] = .string(version)
        let error = read(json).failure
        #expect(error?.code == .unsupportedSpecVersion)
        #expect(error?.description == "specversion is '\(version)', and only CloudEvents 1.0 is understood here")
    }

    @Test(arguments: ["correlationId", "x-trace", "trace_id", "Priority", "tenant.id", "ünicode"])
    func rejectsAnExtensionNameThatIsNotLowerCaseAlphanumeric(_ name: String) {
        var json = Self.sampleJSON
        json[name] = "value"
        let error = read(json).failure
        #expect(error?.code == .invalidAttributeName)
        #expect(error?.attribute == name)
        #expect(error?.description.contains("lower-case letters and digits only") == true)
    }

    @Test func rejectsAnExtensionThatIsNotAScalar() {
        var json = Self.sampleJSON
        json["trace"] = ["a": 1]
        #expect(read(json).failure?.code == .wrongType)
    }

    @Test(arguments: ["2026-11-24 21:11:07Z", "2026-11-24T21:11:07", "2026-02-29T00:00:00Z", "2026-11-24T25:00:00Z", "2026-06-30T23:59:60Z", "yesterday", "2026-11-24T21:11:07.Z"])
    func rejectsATimeThatIsNotRFC3339(_ time: String) {
        var json = Self.sampleJSON
        json["time"] = .string(time)
        #expect(read(json).failure?.code == .invalidTime)
    }

    @Test func rejectsWhatIsNotAStructuredJSONEvent() {
        var json = Self.sampleJSON
        json["datacontenttype"] = "text/plain"
        #expect(read(json).failure?.code == .unsupportedContentType)
        json["datacontenttype"] = "application/vnd.shop+json; charset=utf-8"
        #expect(read(json).failure == nil)

        json = Self.sampleJSON
        json["data"] = nil
        json["data_base64"] = "AAEC"
        #expect(read(json).failure?.code == .binaryData)

        json = Self.sampleJSON
        json["dataschema"] = "OrderCreated/v2.json"
        #expect(read(json).failure?.code == .invalidAttribute)

        #expect(throws: CloudEventError.self) { try CloudEvent(parsing: Array("not json".utf8)) }
        #expect((try? CloudEvent(parsing: Array("[1, 2]".utf8))) == nil)
        do {
            _ = try CloudEvent(parsing: Array("\"text\"".utf8))
            Issue.record("a JSON string is not an event")
        } catch {
            #expect(error.code == .notAnObject)
        }
    }
}

extension Result {
    var failure: Failure? { if case .failure(let error) = self { error } else { nil } }
}
