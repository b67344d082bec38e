import Common
import Foundation
import Hummingbird
import Logging
import NIOCore
import Observability
import ServiceLifecycle

/// Runs an HTTP entry point (and the services beside it) until SIGINT or
/// SIGTERM, then shuts everything down in reverse order. Every stage's
/// processes start through here, so they all behave the same: they print
/// where they listen, honour the parent's lifeline, and stop cleanly.
public enum ShopServerRunner {
    public static func run(
        name: String,
        router: Router<ShopRequestContext>,
        host: String,
        port: Int,
        settings: Settings,
        services: [any Service] = [],
        logger: Logger,
        onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        Observability.installProcessWide()
        Observability.installTracer()
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                // A line for people and for scripts waiting on us.
                Console.line("\(name) listening on http://\(host):\(bound)")
                await onListening(bound)
            },
            logger: logger)

        var configured: [ServiceGroupConfiguration.ServiceConfiguration] =
            services.map { .init(service: $0) } + [.init(service: app)]
        if settings.exitWhenParentExits {
            configured.append(.init(service: Lifeline(logger: logger), successTerminationBehavior: .gracefullyShutdownGroup))
        }
        let group = ServiceGroup(configuration: .init(
            services: configured, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// The router every process starts from: request metrics, contract
    /// errors and request ids, and `GET /metrics`. An entry point (the one
    /// address clients use) also serves its stage's API reference; a
    /// service behind it does not, since it answers only part of the contract.
    public static func makeRouter(apiReferenceOfStage stage: Int? = nil) -> Router<ShopRequestContext> {
        let router = Router(context: ShopRequestContext.self)
        let routes = RouteTable()
        router.add(middleware: HTTPMetricsMiddleware())
        router.add(middleware: ContractMiddleware(routes: routes))
        routes.serve(router)
        router.addMetricsRoute()
        if let stage { OpenAPIDocument.add(to: router, stage: stage) }
        return router
    }
}
