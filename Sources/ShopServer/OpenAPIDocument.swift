import Foundation
import Hummingbird

/// The stage's own API reference, served by its entry point at
/// `GET /openapi.yaml`, so that a client reads the contract from the thing it
/// talks to. Each stage's document holds exactly what that stage serves:
/// `scripts/openapi-stages` writes them from the one source
/// (docs/openapi.yaml) by its `x-stages` marks, into `Resources/stages`
/// (docs/openapi/stage-N.yaml), and this module bundles them.
public enum OpenAPIDocument {
    /// Stage `stage`'s document.
    public static func yaml(stage: Int) -> String {
        guard let url = Bundle.module.url(forResource: "stage-\(stage)", withExtension: "yaml", subdirectory: "stages"),
              let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "openapi: 3.1.0\n# the API reference of stage \(stage) was not bundled with this build\n" }
        return text
    }

    public static func add(to router: Router<ShopRequestContext>, stage: Int) {
        let yaml = yaml(stage: stage)
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: .init(string: yaml)))
        }
    }
}
