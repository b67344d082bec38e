import Foundation
import Hummingbird

/// The project's API reference (docs/openapi.yaml), served by every entry
/// point at `GET /openapi.yaml` so a client can read the contract from the
/// thing it talks to.
public enum OpenAPIDocument {
    public static let yaml: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "openapi: 3.1.0\n# the API reference was not bundled with this build\n" }
        return text
    }()

    public static func add(to router: Router<ShopRequestContext>) {
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: .init(string: yaml)))
        }
    }
}
