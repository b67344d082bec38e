import Auth
import Common
import Discovery
import Events
import Foundation
import Gateway
import Hummingbird
import Logging
import ShopServer

/// The only entry point from stage 3 on, and this stage's routing table:
/// which service answers what. The gateway's mechanics (the token checked
/// at the edge, the rate limit, finding an instance, passing the request
/// on) are the same at every stage (Sources/Gateway); this table changes as
/// the order side is split into services.
enum APIGateway {
    /// Every service behind the gateway: the supervisor starts them, and
    /// `/health` and `/admin/services` check them.
    static let services = ["user", "product", "order", "inventory", "payment", "notification", "reporting", "analytics", "deadletter"]

    static func build(settings: Settings, dataDir: URL, registry: ServiceRegistry, logger: Logger) async throws -> Router<ShopRequestContext> {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let edge = GatewayEdge(stage: ThisStage.number, services: services, registry: registry, signer: credentials.signer)
        let auth = edge.auth
        let compose = Composition(edge: edge, signer: credentials.signer, logger: logger)
        let router = edge.makeRouter(settings: settings)

        // Accounts: the user service. Sign-up is a plain forward now: the
        // welcome email follows from the user service's `user.registered`.
        router.post("/users") { request, context in try await edge.forward(request, context: context, to: "user") }
        router.post("/auth/login") { request, context in try await edge.forward(request, context: context, to: "user") }
        router.get("/users/me") { request, context in
            _ = try auth.principal(request, context: context)
            return try await edge.forward(request, context: context, to: "user")
        }
        router.get("/users/me/summary") { request, context in
            try await compose.summary(token: auth.bearer(request, context: context).token, context: context)
        }

        // Catalogue: the product service. Creating a product is composed: the
        // product, then its stock row in the inventory service.
        router.get("/products") { request, context in try await edge.forward(request, context: context, to: "product") }
        router.get("/products/:id") { request, context in try await edge.forward(request, context: context, to: "product") }
        router.post("/products") { request, context in
            let token = try auth.bearer(request, context: context).token
            _ = try auth.admin(request, context: context)
            return try await compose.createProduct(request, token: token, context: context)
        }
        router.patch("/products/:id") { request, context in
            _ = try auth.admin(request, context: context)
            return try await edge.forward(request, context: context, to: "product")
        }

        // The order side, split: stock is the inventory service's, emails the
        // notification service's, and what could not be processed, or is
        // waiting as a job, the operations desk's (deadletter). Reading stock
        // needs no token.
        router.get("/inventory/:productId") { request, context in try await edge.forward(request, context: context, to: "inventory") }
        edge.forwardSignedIn([
            (.post, "/inventory/:productId/restock", "inventory"),
            (.post, "/orders", "order"), (.get, "/orders", "order"), (.get, "/orders/:id", "order"),
            (.post, "/orders/:id/cancel", "order"), (.post, "/orders/:id/ship", "order"), (.get, "/orders/:id/invoice", "order"),
            (.get, "/notifications", "notification"),
            (.get, "/reports/sales", "reporting"), (.get, "/reports/analytics", "analytics"), (.get, "/reports/stream", "deadletter"),
            (.get, "/admin/dead-letters", "deadletter"), (.post, "/admin/dead-letters/:id/replay", "deadletter"),
            (.get, "/admin/jobs", "deadletter"), (.get, "/admin/jobs/:queue", "deadletter"),
            (.get, "/admin/jobs/:queue/:jobId", "deadletter"), (.post, "/admin/jobs/:queue/:jobId/retry", "deadletter"),
            (.get, "/admin/orders/:id/flow", "deadletter"),
        ], on: router)

        // A read model's replay goes to the service that keeps it (reporting,
        // analytics); the desk answers for every other group (409) and for
        // names that are no group (404).
        router.post("/reports/stream/:group/replay") { request, context in
            _ = try auth.principal(request, context: context)
            let name = context.parameters.get("group") ?? ""
            return try await edge.forward(request, context: context, to: StageTopology.group(name)?.replayable == true ? name : "deadletter")
        }

        // The event catalogue (AsyncAPI), as the API reference: for anyone.
        EventCatalog.addDocumentRoute(to: router, stage: ThisStage.number)

        // What discovery knows, and whether each service has an instance that answers.
        edge.addDiscoveryRoutes(to: router)
        return router
    }
}
