import Auth
import Common
import Discovery
import Foundation
import Hummingbird
import Logging
import ShopClient
import ShopServer

/// The only entry point from stage 3 on. It owns no data. For each request
/// it checks the caller's token (401 here, before any service is bothered),
/// applies the rate limit, finds an instance of the right service through
/// discovery, and passes the request on. Three answers it composes itself:
/// the customer summary (three services at once), and the two writes that
/// span services (an account and its welcome email, a product and its stock).
enum Gateway {
    static func build(stage: Int, dataDir: URL, etcd: EtcdClient, logger: Logger) async throws -> Router<ShopRequestContext> {
        let settings = try ShopSettings.load(dataDir: dataDir, logger: logger)
        let auth = Authenticator(signer: settings.signer)
        let directory = ServiceDirectory(etcd: etcd)
        // Deadlines shrink inward: the gateway waits longer for a service (5 s)
        // than a service waits for the services it calls (2 s), so that an
        // inner retry can still finish before the outer call gives up.
        let http = HTTPClient(timeout: .seconds(5))
        let users = DiscoveredService("user", directory: directory, http: http, timeout: .seconds(5))
        let products = DiscoveredService("product", directory: directory, http: http, timeout: .seconds(5))
        let orders = DiscoveredService("order", directory: directory, http: http, timeout: .seconds(5))
        let forward = Forwarder(services: ["user": users, "product": products, "order": orders])
        let compose = Composition(users: users, products: products, orders: orders, signer: settings.signer, logger: logger)

        let router = Router(context: ShopRequestContext.self)
        router.add(middleware: ContractMiddleware())
        router.add(middleware: RateLimiter.fromEnvironment(auth: auth))
        OpenAPIDocument.add(to: router)

        // Accounts: the user service.
        router.post("/users") { request, context in try await compose.signUp(request, context: context) }
        router.post("/auth/login") { request, context in try await forward.forward(request, context: context, to: "user") }
        router.get("/users/me") { request, context in
            _ = try auth.principal(request, context: context)
            return try await forward.forward(request, context: context, to: "user")
        }
        router.get("/users/me/summary") { request, context in
            try await compose.summary(token: auth.bearer(request, context: context).token, context: context)
        }

        // Catalogue: the product service.
        router.get("/products") { request, context in try await forward.forward(request, context: context, to: "product") }
        router.get("/products/:id") { request, context in try await forward.forward(request, context: context, to: "product") }
        router.post("/products") { request, context in
            let token = try auth.bearer(request, context: context).token
            _ = try auth.admin(request, context: context)
            return try await compose.createProduct(request, token: token, context: context)
        }
        router.patch("/products/:id") { request, context in
            _ = try auth.admin(request, context: context)
            return try await forward.forward(request, context: context, to: "product")
        }

        // The order side: the order service. Reading stock needs no token.
        router.get("/inventory/:productId") { request, context in try await forward.forward(request, context: context, to: "order") }
        let signedIn: [(HTTPRequest.Method, RouterPath)] = [
            (.post, "/inventory/:productId/restock"), (.post, "/orders"), (.get, "/orders"), (.get, "/orders/:id"),
            (.post, "/orders/:id/cancel"), (.post, "/orders/:id/ship"), (.get, "/orders/:id/invoice"),
            (.get, "/notifications"), (.get, "/reports/sales"),
        ]
        for (method, path) in signedIn {
            router.on(path, method: method) { request, context in
                _ = try auth.principal(request, context: context)
                return try await forward.forward(request, context: context, to: "order")
            }
        }

        // What discovery knows, and whether each instance answers.
        router.get("/admin/services") { request, context in
            _ = try auth.admin(request, context: context)
            return Reply.json(API.ItemList(items: await Self.instances(directory, http: http)))
        }
        router.get("/health") { _, _ in
            let instances = await Self.instances(directory, http: http)
            var services: [String: API.ServiceState] = ["gateway": .up, "etcd": await etcd.isHealthy() ? .up : .down]
            for name in ["user", "product", "order"] {
                services[name] = instances.contains { $0.service == name && $0.status == .up } ? .up : .down
            }
            let health = API.Health(stage: stage, services: services)
            return Reply.json(health, status: health.isHealthy ? .ok : .serviceUnavailable)
        }
        return router
    }

    struct InstanceStatus: Codable, Sendable {
        var service: String
        var id: String
        var address: String
        var status: API.ServiceState
        var checkedAt: Date
    }

    static func instances(_ directory: ServiceDirectory, http: HTTPClient) async -> [InstanceStatus] {
        await withTaskGroup(of: InstanceStatus.self) { group in
            for instance in await directory.all() {
                group.addTask {
                    let healthy = (try? await http.send("GET", instance.url + "/health", timeout: .seconds(1)).status) == 200
                    return InstanceStatus(
                        service: instance.service, id: instance.id,
                        address: instance.url.replacingOccurrences(of: "http://", with: ""),
                        status: healthy ? .up : .down, checkedAt: Timestamp.now())
                }
            }
            return await group.reduce(into: []) { $0.append($1) }.sorted { ($0.service, $0.id) < ($1.service, $1.id) }
        }
    }
}
