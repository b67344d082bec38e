import Discovery
import Foundation
import Hummingbird
import Logging
import ShopServer
@testable import Stage1
@testable import Stage2
@testable import Stage3
@testable import Stage4
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

    @Test("each stage's entry point serves exactly the operations of its API reference", arguments: [1, 2, 3, 4])
    func servesWhatItDocuments(stage: Int) async throws {
        let served = Self.served(try await Self.entryRouter(stage: stage))
        let documented = try await Self.documented(stage: stage)
        #expect(documented.subtracting(served).sorted() == [], "documented for stage \(stage) but not served")
        #expect(served.subtracting(documented).sorted() == [], "served by stage \(stage) but not documented")
        #expect(served.count >= 20)
    }

    /// The routes each stage adds to the one before, as the contract says.
    @Test("stage 3 adds /admin/services; stage 4 adds the dead-letter operations")
    func stagesAddTheirOperations() async throws {
        let (s2, s3, s4) = (try await Self.documented(stage: 2), try await Self.documented(stage: 3), try await Self.documented(stage: 4))
        #expect(s3.subtracting(s2) == ["GET /admin/services"])
        #expect(s4.subtracting(s3) == ["GET /admin/dead-letters", "POST /admin/dead-letters/{id}/replay"])
        #expect(!s4.contains("GET /admin/jobs") && !s4.contains("GET /orders/{id}/events"))
    }
}
