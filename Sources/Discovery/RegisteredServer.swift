import Common
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import ShopServer
import Synchronization

/// Runs a service's HTTP server on the port the system picks (port 0 by
/// default) and registers it in discovery once it listens: callers find it
/// through etcd, never through a port written into their configuration.
public enum RegisteredServer {
    public static func run(
        service: String, router: Router<ShopRequestContext>, host: String, port: Int, registry: ServiceRegistry,
        settings: Settings, services: [any Service] = [], logger: Logger
    ) async throws {
        // The port, once the server listens. Both closures below capture the
        // one mutex (Swift keeps a captured noncopyable value in a shared box).
        let bound = Mutex<Int?>(nil)
        // The last 8 characters of an id are random (the first are its time,
        // the same for replicas started together).
        let id = "\(service)-\(ID.make("i").suffix(8))"
        // Registered under the address others reach it at, which is not
        // the one it listens on when that is a wildcard (a container's
        // 0.0.0.0): `ADVERTISE_HOST`, or the machine's name.
        let advertised = settings.advertisedHost
        let registration = ServiceRegistration(registry: registry, logger: logger) {
            bound.withLock { $0 }.map { ServiceInstance(service: service, id: id, url: "http://\(advertised):\($0)") }
        }
        try await ShopServerRunner.run(
            name: "\(service)-service", router: router, host: host, port: port, settings: settings, services: services + [registration], logger: logger,
            onListening: { port in bound.withLock { $0 = port } })
    }
}
