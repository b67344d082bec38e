import Events
import Foundation
@testable import Stage7
import TestSupport
import Testing

/// The code, the schemas and the stage's AsyncAPI document name the same
/// events: a test that fails when one of the three has an event, or a
/// version, that another lacks, so the documents cannot drift from what is
/// published.
///
/// Why it no longer asks that the schema files and the catalogue list
/// exactly the same versions: from stage 7 on, every stage shares one folder
/// of schemas, which only grows (a published schema is never changed or
/// removed: events of it stay in queues, dead letters and logs), while each
/// stage has a document of its own (docs/asyncapi/stage-<N>.yaml) listing
/// what that stage publishes. So the stage's code is held to its own
/// document, and the folder of schemas to all the documents together.
///
/// Each stage with events has a copy of this file: only the import and the
/// suite's name say which stage, everything else reads `ThisStage.number`.
@Suite("Stage 7: the event catalogue")
struct CatalogueTests {
    static let stage = ThisStage.number

    struct Malformed: Error, CustomStringConvertible { var description: String }

    /// `OrderCreated v2` → its key.
    static func key(_ text: String) throws -> EventSchemaKey {
        let parts = text.split(separator: " ")
        guard parts.count == 2, parts[1].hasPrefix("v"), let version = Int(parts[1].dropFirst()) else {
            throw Malformed(description: "'\(text)' is not '<Name> v<N>'")
        }
        return EventSchemaKey(String(parts[0]), version: version)
    }

    /// (name, version) of every schema file under docs/events, every stage's.
    static func schemaFiles() throws -> Set<EventSchemaKey> {
        let root = EventCatalog.bundledSchemas
        var found = Set<EventSchemaKey>()
        for name in try FileManager.default.contentsOfDirectory(atPath: root.path) {
            for file in try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(name).path) where file.hasSuffix(".json") {
                found.insert(try key("\(name) \(file.dropLast(".json".count))"))
            }
        }
        return found
    }

    /// (name, version) of every event in each stage's AsyncAPI document
    /// (docs/asyncapi/stage-<N>.yaml), by stage, read with PyYAML (a real YAML
    /// parser, not ours). A message without `x-version` is not an event (the
    /// dead-letter topic's, from stage 7 on) and is left out.
    static func catalogues() async throws -> [Int: Set<EventSchemaKey>] {
        let parsed = try await PythonPeer.runJSON("""
            import json, os, sys, yaml
            folder = sys.argv[1]
            stages = {}
            for file in sorted(os.listdir(folder)):
                if not (file.startswith("stage-") and file.endswith(".yaml")):
                    continue
                with open(os.path.join(folder, file)) as f:
                    doc = yaml.safe_load(f)
                assert doc.get("asyncapi", "").startswith("3."), file + " is not an AsyncAPI 3 document"
                messages = doc["components"]["messages"].values()
                stages[file[len("stage-"):-len(".yaml")]] = ["%s v%s" % (m["name"], m["x-version"]) for m in messages if "x-version" in m]
            print(json.dumps({"stages": stages}))
            """, arguments: [EventCatalog.bundledAsyncAPIDocuments.path])
        var catalogues: [Int: Set<EventSchemaKey>] = [:]
        for (number, entries) in parsed["stages"] as? [String: [String]] ?? [:] {
            guard let stage = Int(number) else { throw Malformed(description: "docs/asyncapi/stage-\(number).yaml: not a stage number") }
            catalogues[stage] = Set(try entries.map(key))
        }
        return catalogues
    }

    @Test("every event the stage publishes, at its version and every older one, has a schema and is in the stage's AsyncAPI catalogue")
    func publishedEventsAreCatalogued() async throws {
        let files = try Self.schemaFiles()
        let catalogue = try await Self.catalogues()[Self.stage] ?? []
        for (_, event) in EventLog.published {
            for version in 1...event.version {
                let key = EventSchemaKey(event.name, version: version)
                #expect(files.contains(key), "docs/events/\(event.name)/v\(version).json")
                #expect(catalogue.contains(key), "\(key) in docs/asyncapi/stage-\(Self.stage).yaml")
            }
        }
    }

    @Test("the stage's catalogue lists nothing the stage does not publish, each with a schema; every schema is in some stage's catalogue")
    func noDrift() async throws {
        let files = try Self.schemaFiles()
        let catalogues = try await Self.catalogues()
        let catalogue = catalogues[Self.stage] ?? []
        #expect(!catalogue.isEmpty, "docs/asyncapi/stage-\(Self.stage).yaml lists events")
        let published = Dictionary(uniqueKeysWithValues: EventLog.published.map { ($0.1.name, $0.1.version) })
        for key in catalogue.sorted() {
            #expect(files.contains(key), "\(key) is in the catalogue but has no schema (docs/events/\(key.name)/v\(key.version).json)")
            let newest = published[key.name]
            #expect(newest != nil, "the catalogue lists \(key.name), which stage \(Self.stage) does not publish")
            if let newest {
                #expect(key.version <= newest, "the catalogue lists \(key), newer than the v\(newest) stage \(Self.stage) publishes")
            }
        }
        // A schema nobody lists is one nobody publishes: a typo, or a version
        // that was never wired.
        let listed = catalogues.values.reduce(into: Set<EventSchemaKey>()) { $0.formUnion($1) }
        #expect(files.isSubset(of: listed), "schemas no stage's catalogue lists: \(files.subtracting(listed).sorted())")
        // Every older version can be read as today's: an upcaster per step.
        for (_, event) in EventLog.published {
            for version in EventLog.catalog.versions(of: event.name) where version < event.version {
                #expect(EventLog.catalog.canUpcast(event.name, from: version, to: event.version), "\(event.name) v\(version) → v\(event.version)")
            }
        }
    }

    @Test("GET /asyncapi.yaml answers the stage's own document")
    func servedDocumentIsTheStages() throws {
        let file = EventCatalog.bundledAsyncAPIDocuments.appendingPathComponent("stage-\(Self.stage).yaml")
        let text = try String(contentsOf: file, encoding: .utf8)
        #expect(EventCatalog.asyncAPIDocument(stage: Self.stage) == text, "GET /asyncapi.yaml answers docs/asyncapi/stage-\(Self.stage).yaml")
    }

    @Test("the catalogue loads every schema (only the keywords the validator knows)")
    func schemasLoad() throws {
        let catalog = try EventCatalog(schemaRoot: EventCatalog.bundledSchemas)
        #expect(catalog.schemas.count == (try Self.schemaFiles()).count)
    }
}
