import Discovery
import Foundation
import Hummingbird
import Logging
import ShopServer
@testable import Stage1
@testable import Stage2
@testable import Stage3
@testable import Stage4
@testable import Stage5
@testable import Stage6
@testable import Stage7
@testable import Stage8
import Testing
import TestSupport

/// Each stage serves exactly what its API reference documents: every
/// operation of docs/openapi/stage-N.yaml has a route at the stage's entry
/// point, and every route there is an operation of that document. The
/// routes come from the entry point's router itself (built as the stage
/// builds it, in a scratch folder); the operations from the YAML.
@Suite struct ServedRoutesTests {
    static let logger = Logger(label: "contract-tests")

    /// The entry point's router of stage `stage`, as its `Command` builds it.
    static func entryRouter(stage: Int) async throws -> Router<ShopRequestContext> {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("routes-\(stage)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // A secret so no development one is written; a cheap bcrypt cost.
        let settings = Settings(environment: ["JWT_SECRET": String(repeating: "k", count: 32), "BCRYPT_COST": "4"])
        // Nothing is asked of etcd while a gateway is being built.
        let registry = ServiceRegistry(etcd: EtcdClient(url: "http://127.0.0.1:1"), namespace: "routes-test")
        switch stage {
        case 1: return try await Stage1.Monolith.build(settings: settings, dataDir: dir, logger: logger)
        case 2: return try await Stage2.Monolith.build(
            settings: settings, dataDir: dir, userURL: "http://127.0.0.1:1", productURL: "http://127.0.0.1:1", logger: logger)
        case 3: return try await Stage3.APIGateway.build(settings: settings, dataDir: dir, registry: registry, logger: logger)
        case 4: return try await Stage4.APIGateway.build(settings: settings, dataDir: dir, registry: registry, logger: logger)
        case 5: return try await Stage5.APIGateway.build(settings: settings, dataDir: dir, registry: registry, logger: logger)
        case 6: return try await Stage6.APIGateway.build(settings: settings, dataDir: dir, registry: registry, logger: logger)
        case 7: return try await Stage7.APIGateway.build(settings: settings, dataDir: dir, registry: registry, logger: logger)
        case 8: return try await Stage8.APIGateway.build(settings: settings, dataDir: dir, registry: registry, logger: logger)
        default: throw ProcessFailure(description: "no stage \(stage) yet")
        }
    }

    /// `METHOD /path/{param}` for every operation of a document.
    static func documented(stage: Int) async throws -> Set<String> {
        let root = try #require(Repository.root, "the repository was not found above the tests")
        let file = root + "/docs/openapi/stage-\(stage).yaml"
        try #require(FileManager.default.fileExists(atPath: file), "\(file) is missing: run scripts/openapi-stages")
        let out = try await PythonPeer.run("""
            import sys, yaml
            doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
            for path, item in doc["paths"].items():
                for method in item:
                    if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                        print(method.upper(), path)
            """, arguments: [file])
        return Set(out.split(separator: "\n").map(String.init).filter { !$0.isEmpty })
    }

    /// The router's routes in the document's spelling (`{name}` for a capture).
    static func served(_ router: Router<ShopRequestContext>) -> Set<String> {
        Set(router.routes.map { "\($0.method.rawValue) \($0.path)" })
    }

    @Test("each stage's entry point serves exactly the operations of its API reference", arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func servesWhatItDocuments(stage: Int) async throws {
        let served = Self.served(try await Self.entryRouter(stage: stage))
        let documented = try await Self.documented(stage: stage)
        #expect(documented.subtracting(served).sorted() == [], "documented for stage \(stage) but not served")
        #expect(served.subtracting(documented).sorted() == [], "served by stage \(stage) but not documented")
        #expect(served.count >= 20)
    }

    /// The routes each stage adds to the one before, as the contract says.
    @Test("stage 3 adds /admin/services; stage 4 the dead-letter operations; stage 5 the job operations; stage 6 the flow and the event catalogue; stage 7 the stream reports and a group's replay; stage 8 an order's events and the projections")
    func stagesAddTheirOperations() async throws {
        let (s2, s3, s4) = (try await Self.documented(stage: 2), try await Self.documented(stage: 3), try await Self.documented(stage: 4))
        let s5 = try await Self.documented(stage: 5)
        #expect(s3.subtracting(s2) == ["GET /admin/services"])
        #expect(s4.subtracting(s3) == ["GET /admin/dead-letters", "POST /admin/dead-letters/{id}/replay"])
        #expect(!s4.contains("GET /admin/jobs") && !s4.contains("GET /orders/{id}/events"))
        #expect(s5.subtracting(s4) == [
            "GET /admin/jobs", "GET /admin/jobs/{queue}", "GET /admin/jobs/{queue}/{jobId}", "POST /admin/jobs/{queue}/{jobId}/retry",
        ])
        #expect(s4.isSubset(of: s5), "a stage never drops an operation")
        #expect(!s5.contains("GET /orders/{id}/events") && !s5.contains("GET /admin/orders/{id}/flow"))
        let s6 = try await Self.documented(stage: 6)
        #expect(s6.subtracting(s5) == ["GET /admin/orders/{id}/flow", "GET /asyncapi.yaml"])
        #expect(s5.isSubset(of: s6), "a stage never drops an operation")
        #expect(!s6.contains("GET /reports/stream") && !s6.contains("GET /reports/analytics"))
        let s7 = try await Self.documented(stage: 7)
        #expect(s7.subtracting(s6) == ["GET /reports/analytics", "GET /reports/stream", "POST /reports/stream/{group}/replay"])
        #expect(s6.isSubset(of: s7), "a stage never drops an operation")
        let s8 = try await Self.documented(stage: 8)
        #expect(s8.subtracting(s7) == ["GET /orders/{id}/events", "GET /admin/projections", "POST /admin/projections/rebuild"])
        #expect(s7.isSubset(of: s8), "a stage never drops an operation")
    }
}
