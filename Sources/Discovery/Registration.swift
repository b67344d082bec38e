import Foundation
import Logging
import ServiceLifecycle
import ShopServer

/// One running instance of a service, as discovery knows it.
public struct ServiceInstance: Codable, Sendable, Hashable {
    public let service: String
    public let id: String
    public let url: String
    public let registeredAt: Date

    public init(service: String, id: String, url: String, registeredAt: Date = Date()) {
        self.service = service; self.id = id; self.url = url; self.registeredAt = registeredAt
    }

}

/// Where a deployment's instances are listed: one etcd, one namespace; or,
/// with `DISCOVERY=dns`, nowhere: each caller asks DNS for a service's
/// name, and every address the name has is an instance (a Kubernetes
/// headless Service, a Compose service name).
public struct ServiceRegistry: Sendable {
    public let etcd: EtcdClient
    /// Keeps deployments that share one etcd apart (two copies of a stage,
    /// parallel test runs); a stage's supervisor derives it from its data
    /// folder unless `SHOP_NAMESPACE` names one.
    public let namespace: String
    /// Seconds a silent instance stays listed. Keep-alives go every third of it.
    public let leaseTTL: Int
    /// With DNS discovery, a service's URL with `{service}` for its name;
    /// nil: etcd.
    public let dnsURL: String?

    public init(etcd: EtcdClient, namespace: String, leaseTTL: Int = 5, dnsURL: String? = nil) {
        self.etcd = etcd
        self.namespace = namespace
        self.leaseTTL = leaseTTL
        self.dnsURL = dnsURL
    }

    /// The registry the settings choose (`DISCOVERY`, `ETCD_URL`,
    /// `DISCOVERY_TTL`, `DISCOVERY_DNS_URL`).
    public init(settings: Settings, namespace: String) throws {
        switch settings.discovery {
        case "etcd":
            self.init(etcd: EtcdClient(url: settings.etcdURL), namespace: namespace, leaseTTL: settings.discoveryTTLSeconds)
        case "dns":
            let sample = settings.discoveryDNSURL.replacingOccurrences(of: "{service}", with: "order")
            guard settings.discoveryDNSURL.contains("{service}"), let host = URLComponents(string: sample)?.host, !host.isEmpty else {
                throw DiscoveryError.badSetting("DISCOVERY_DNS_URL must be a URL with {service} for the service's name, like http://{service}:8080; got \(settings.discoveryDNSURL)")
            }
            self.init(
                etcd: EtcdClient(url: settings.etcdURL), namespace: namespace, leaseTTL: settings.discoveryTTLSeconds,
                dnsURL: settings.discoveryDNSURL)
        default:
            throw DiscoveryError.badSetting("DISCOVERY must be etcd or dns; got \(settings.discovery)")
        }
    }

    /// True when instances are found by DNS, not in etcd.
    public var usesDNS: Bool { dnsURL != nil }

    /// `/shop/<namespace>/services/`.
    public var prefix: String { "/shop/\(namespace)/services/" }

    /// Where an instance is kept: `/shop/<namespace>/services/<service>/<id>`.
    public func key(of instance: ServiceInstance) -> String { prefix + instance.service + "/" + instance.id }
}

/// Registers this process in etcd for as long as it runs: a key under a
/// lease, and a keep-alive every third of the lease's TTL. If the process
/// dies (kill -9, a crash, a cut cable), the keep-alives stop and etcd
/// deletes the key when the lease expires: the instance leaves the list by
/// itself. On a graceful shutdown it revokes the lease, and leaves at once.
public struct ServiceRegistration: Service {
    let registry: ServiceRegistry
    let instance: @Sendable () async -> ServiceInstance?
    let logger: Logger

    /// `instance` answers nil until the server knows its port.
    public init(registry: ServiceRegistry, logger: Logger, instance: @escaping @Sendable () async -> ServiceInstance?) {
        self.registry = registry
        self.instance = instance
        self.logger = logger
    }

    public func run() async throws {
        if registry.usesDNS {
            // Nothing to register: callers find this process by its name
            // in DNS, which the platform keeps (Kubernetes lists a pod once
            // its readiness probe passes).
            logger.notice("discovery by DNS: not registering in etcd")
            try? await gracefulShutdown()
            return
        }
        var me: ServiceInstance?
        while me == nil {
            me = await instance()
            if me == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        let instance = me!
        let (etcd, ttl) = (registry.etcd, registry.leaseTTL)
        var lease: Int64?
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    if let current = lease, try await etcd.keepAlive(lease: current) > 0 {
                        // Renewed.
                    } else {
                        // First time, or the lease expired (etcd was away for
                        // longer than the TTL): register again.
                        let fresh = try await etcd.grantLease(ttl: ttl)
                        try await etcd.put(registry.key(of: instance), Array(try JSONEncoder().encode(instance)), lease: fresh)
                        if lease == nil {
                            logger.notice("registered in discovery", metadata: ["service": .string(instance.service), "url": .string(instance.url), "ttl": .stringConvertible(ttl)])
                        } else {
                            logger.warning("lease lost; registered again", metadata: ["service": .string(instance.service)])
                        }
                        lease = fresh
                    }
                } catch {
                    logger.warning("cannot reach etcd; retrying", metadata: ["etcd": .string(etcd.url), "error": .string("\(error)")])
                }
                try? await Task.sleep(for: .milliseconds(ttl * 1000 / 3))
            }
        } onGracefulShutdown: {}
        if let lease {
            try? await etcd.revoke(lease: lease)
            logger.notice("deregistered from discovery", metadata: ["service": .string(instance.service)])
        }
    }
}

public enum DiscoveryError: Error, CustomStringConvertible {
    case badSetting(String)

    public var description: String {
        switch self {
        case .badSetting(let why): why
        }
    }
}
