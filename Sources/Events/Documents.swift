import Foundation
import Hummingbird
import ShopServer

/// The event catalogue as documents, bundled with this module so a running
/// stage can read and serve them: the JSON Schemas (`Resources/events`,
/// docs/events) that consumers validate against, shared by every stage, and
/// one AsyncAPI document per stage (`Resources/asyncapi/stage-<N>.yaml`,
/// docs/asyncapi) that lists that stage's channels, producers, consumers and
/// events. A schema, once published, is never changed or removed, so the
/// folder only grows; each stage's document lists what that stage publishes,
/// and a stage's tests check that its code, the schemas and its document
/// name the same events and versions.
extension EventCatalog {
    /// The folder of bundled schemas: `<Name>/v<N>.json`.
    public static var bundledSchemas: URL {
        Bundle.module.url(forResource: "events", withExtension: nil)
            ?? URL(fileURLWithPath: "/nonexistent/events-were-not-bundled")
    }

    /// The folder of bundled AsyncAPI documents: `stage-<N>.yaml`.
    public static var bundledAsyncAPIDocuments: URL {
        Bundle.module.url(forResource: "asyncapi", withExtension: nil)
            ?? URL(fileURLWithPath: "/nonexistent/asyncapi-was-not-bundled")
    }

    /// The text of stage `stage`'s AsyncAPI document. The stage says which:
    /// a shared module does not know which stage it runs in.
    public static func asyncAPIDocument(stage: Int) -> String {
        guard let url = Bundle.module.url(forResource: "stage-\(stage)", withExtension: "yaml", subdirectory: "asyncapi"),
              let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "asyncapi: 3.0.0\n# the event catalogue of stage \(stage) was not bundled with this build\n" }
        return text
    }

    /// `GET /asyncapi.yaml`, stage `stage`'s document, for anyone, like
    /// `GET /openapi.yaml`.
    public static func addDocumentRoute(to router: Router<ShopRequestContext>, stage: Int) {
        let yaml = asyncAPIDocument(stage: stage)
        router.get("/asyncapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: .init(string: yaml)))
        }
    }
}
