import Auth
import Common
import Discovery
import Foundation
import Hummingbird
import Logging
import ShopClient
import ShopServer

/// Which service answers what, behind the gateway. The gateway is the same
/// program at every stage from 3 on; what changes is this table, as the
/// order side is split into services.
public struct GatewayLayout: Sendable {
    /// Every service behind the gateway: health and `/admin/services` check them.
    public var services: [String]
    /// Who answers `/inventory/…`, `/notifications` and `/admin/dead-letters`.
    public var inventory: String
    public var notifications: String
    public var deadLetters: String?
    /// Stage 3: after the user service created an account, the gateway asks the
    /// order service to write the welcome email. Stage 4: the user service
    /// publishes `user.registered` through its outbox, and sign-up is a
    /// plain forward.
    public var welcomeByCall: Bool

    /// Stage 3: three services; the order service still does all of the order side.
    public static let stage3 = GatewayLayout(
        services: ["user", "product", "order"], inventory: "order", notifications: "order", deadLetters: nil, welcomeByCall: true)

    /// Stage 4: inventory, payment and notification have services of their
    /// own, and the dead-letter office keeps what could not be processed.
    public static let stage4 = GatewayLayout(
        services: ["user", "product", "order", "inventory", "payment", "notification", "deadletter"],
        inventory: "inventory", notifications: "notification", deadLetters: "deadletter", welcomeByCall: false)
}

/// The only entry point from stage 3 on. It owns no data. For each request
/// it checks the caller's token (401 here, before any service is bothered),
/// applies the rate limit, finds an instance of the right service through
/// discovery, and passes the request on. Three answers it composes itself:
/// the customer summary (three services at once), and the two writes that
/// span services (an account and its welcome email, a product and its stock).
public enum Gateway {
    public static func build(
        stage: Int, layout: GatewayLayout, dataDir: URL, etcd: EtcdClient, logger: Logger
    ) async throws -> Router<ShopRequestContext> {
        let settings = try ShopSettings.load(dataDir: dataDir, logger: logger)
        let auth = Authenticator(signer: settings.signer)
        let directory = ServiceDirectory(etcd: etcd)
        // Deadlines shrink inward: the gateway waits longer for a service (5 s)
        // than a service waits for the services it calls (2 s), so that an
        // inner retry can still finish before the outer call gives up.
        let http = HTTPClient(timeout: .seconds(5))
        var services: [String: DiscoveredService] = [:]
        for name in layout.services {
            services[name] = DiscoveredService(name, directory: directory, http: http, timeout: .seconds(5))
        }
        let forward = Forwarder(services: services)
        let compose = Composition(services: services, layout: layout, signer: settings.signer, logger: logger)

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
        router.get("/inventory/:productId") { request, context in try await forward.forward(request, context: context, to: layout.inventory) }
        var signedIn: [(HTTPRequest.Method, RouterPath, String)] = [
            (.post, "/inventory/:productId/restock", layout.inventory), (.post, "/orders", "order"), (.get, "/orders", "order"),
            (.get, "/orders/:id", "order"), (.post, "/orders/:id/cancel", "order"), (.post, "/orders/:id/ship", "order"),
            (.get, "/orders/:id/invoice", "order"), (.get, "/notifications", layout.notifications), (.get, "/reports/sales", "order"),
        ]
        if let office = layout.deadLetters {
            signedIn += [(.get, "/admin/dead-letters", office), (.post, "/admin/dead-letters/:id/replay", office)]
        }
        for (method, path, service) in signedIn {
            router.on(path, method: method) { request, context in
                _ = try auth.principal(request, context: context)
                return try await forward.forward(request, context: context, to: service)
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
            for name in layout.services {
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
