import Auth
import Common
import Discovery
import Foundation
import Hummingbird
import Logging
import NIOCore
import ShopClient
import ShopServer

/// What every API gateway of the shop does, whatever its routing table:
/// it owns no data; it checks the caller's token at the edge (401 here,
/// before any service is bothered), applies the rate limit, finds an
/// instance of the right service through discovery, and passes the request
/// on. Which service answers which route, and which answers the gateway
/// composes itself, is each stage's policy (`Stages/stage-N/Gateway.swift`).
public struct GatewayEdge: Sendable {
    public let auth: Authenticator
    public let directory: ServiceDirectory
    /// Every service behind the gateway, found through discovery.
    public let services: [String: DiscoveredService]
    let forwarder: Forwarder
    let http: HTTPClient
    let stage: Int
    let registry: ServiceRegistry

    public init(stage: Int, services names: [String], registry: ServiceRegistry, signer: TokenSigner) {
        self.stage = stage
        self.registry = registry
        auth = Authenticator(signer: signer)
        directory = ServiceDirectory(registry, services: names)
        // Deadlines shrink inward: the gateway waits longer for a service (5 s)
        // than a service waits for the services it calls (2 s), so that an
        // inner retry can still finish before the outer call gives up.
        http = HTTPClient(timeout: .seconds(5))
        var services: [String: DiscoveredService] = [:]
        for name in names {
            services[name] = DiscoveredService(name, directory: directory, http: http, timeout: .seconds(5))
        }
        self.services = services
        forwarder = Forwarder(services: services)
    }

    /// The gateway's router: every process's (request metrics, contract
    /// errors and request ids, `/metrics`), then the rate limit (which also
    /// verifies a token once for the routes after it), the API reference.
    public func makeRouter(settings: Settings) -> Router<ShopRequestContext> {
        let router = ShopServerRunner.makeRouter()
        router.add(middleware: RateLimiter(perSecond: settings.rateLimitPerSecond, burst: settings.rateLimitBurst, auth: auth))
        OpenAPIDocument.add(to: router, stage: stage)
        return router
    }

    /// Passes the request on, as it came, to an instance of `service`.
    /// The same service, asked with another deadline (a call that is meant
    /// to take long: stage 8's rebuild).
    public func service(_ name: String, timeout: Duration) -> DiscoveredService {
        DiscoveredService(name, directory: directory, http: HTTPClient(timeout: timeout), timeout: timeout)
    }

    /// Passes the request on through `service` (see `service(_:timeout:)`).
    public func forward(_ request: Request, context: ShopRequestContext, via service: DiscoveredService) async throws -> Response {
        try await forwarder.forward(request, context: context, via: service)
    }

    /// The request with its body read into memory, so that it can be
    /// passed on more than once (a body streams only once).
    public func buffered(_ request: Request) async throws -> Request {
        var request = request
        do {
            _ = try await request.collectBody(upTo: Limits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw ShopError.payloadTooLarge
        }
        return request
    }

    /// `headers` are added to the ones passed on.
    public func forward(_ request: Request, context: ShopRequestContext, to service: String, headers: [(String, String)] = []) async throws -> Response {
        try await forwarder.forward(request, context: context, to: service, headers: headers)
    }

    /// The routes for anyone signed in: the token is checked here, and the
    /// service checks again what the caller may see.
    public func forwardSignedIn(_ routes: [(HTTPRequest.Method, RouterPath, String)], on router: Router<ShopRequestContext>) {
        for (method, path, service) in routes {
            router.on(path, method: method) { request, context in
                _ = try auth.principal(request, context: context)
                return try await forward(request, context: context, to: service)
            }
        }
    }

    /// `GET /admin/services` (what discovery knows, and whether each
    /// instance answers) and `GET /health` (etcd, and an instance that
    /// answers for every service; etcd only when discovery uses it).
    public func addDiscoveryRoutes(to router: Router<ShopRequestContext>) {
        router.get("/admin/services") { request, context in
            _ = try auth.admin(request, context: context)
            return Reply.json(API.ItemList(items: await instances()))
        }
        router.get("/health") { _, _ in
            let instances = await instances()
            var health: [String: API.ServiceState] = ["gateway": .up]
            // With DNS discovery etcd is not the gateway's to watch.
            if !registry.usesDNS { health["etcd"] = await registry.etcd.isHealthy() ? .up : .down }
            for name in services.keys {
                health[name] = instances.contains { $0.service == name && $0.status == .up } ? .up : .down
            }
            let answer = API.Health(stage: stage, services: health)
            return Reply.json(answer, status: answer.isHealthy ? .ok : .serviceUnavailable)
        }
    }

    struct InstanceStatus: Codable, Sendable {
        var service: String
        var id: String
        var address: String
        var status: API.ServiceState
        var checkedAt: Date
    }

    func instances() async -> [InstanceStatus] {
        await withTaskGroup(of: InstanceStatus.self) { group in
            for instance in await directory.all() {
                group.addTask { [http] in
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
