import Discovery
import Foundation
import ShopServer
import Testing

/// Discovery chosen by configuration: etcd (stage 3's way) or DNS (a
/// Kubernetes headless Service, a Compose service name), and the address a
/// process registers under when it listens on every interface.
@Suite struct DiscoveryTests {
    func settings(_ environment: [String: String]) -> Settings { Settings(environment: environment) }

    @Test func etcdIsTheDefaultAndAnythingElseIsRefused() throws {
        let registry = try ServiceRegistry(settings: settings([:]), namespace: "n")
        #expect(!registry.usesDNS)
        #expect(try ServiceRegistry(settings: settings(["DISCOVERY": "DNS"]), namespace: "n").usesDNS)
        #expect(throws: DiscoveryError.self) { try ServiceRegistry(settings: settings(["DISCOVERY": "consul"]), namespace: "n") }
        // A template without {service} would send every service's calls to one place.
        #expect(throws: DiscoveryError.self) {
            try ServiceRegistry(settings: settings(["DISCOVERY": "dns", "DISCOVERY_DNS_URL": "http://order:8080"]), namespace: "n")
        }
        #expect(throws: DiscoveryError.self) {
            try ServiceRegistry(settings: settings(["DISCOVERY": "dns", "DISCOVERY_DNS_URL": "not a url {service}"]), namespace: "n")
        }
    }

    @Test func aWildcardAddressIsNeverAdvertised() {
        #expect(settings(["HOST": "127.0.0.1"]).advertisedHost == "127.0.0.1")
        #expect(settings(["HOST": "10.1.2.3", "ADVERTISE_HOST": "order"]).advertisedHost == "order")
        let hostName = ProcessInfo.processInfo.hostName
        #expect(settings(["HOST": "0.0.0.0"]).advertisedHost == hostName)
        #expect(settings(["HOST": "::"]).advertisedHost != "::")
        #expect(settings(["HOST": "0.0.0.0", "ADVERTISE_HOST": "fd00::7"]).advertisedHost == "[fd00::7]")
    }

    /// `localhost` is in every machine's /etc/hosts, so the resolver the
    /// directory uses answers it without a DNS server: one instance per
    /// address, on the template's port and path.
    @Test func dnsListsOneInstancePerAddressOfTheName() async throws {
        let registry = try ServiceRegistry(
            settings: settings(["DISCOVERY": "dns", "DISCOVERY_DNS_URL": "http://{service}:9123/base"]), namespace: "n")
        let directory = ServiceDirectory(registry, services: ["localhost"])
        let instances = await directory.instances(of: "localhost")
        #expect(instances.contains { $0.url == "http://127.0.0.1:9123/base" && $0.service == "localhost" })
        #expect(Set(instances.map(\.id)).count == instances.count, "each address once")
        #expect(instances.allSatisfy { $0.url.hasPrefix("http://127.") || $0.url.hasPrefix("http://[::1]") })
        // `all()` answers for the names it was given (DNS cannot list them).
        #expect(await directory.all().map(\.url).sorted() == instances.map(\.url).sorted())
    }

    @Test func aNameThatDoesNotResolveHasNoInstances() async throws {
        let registry = try ServiceRegistry(
            settings: settings(["DISCOVERY": "dns", "DISCOVERY_DNS_URL": "http://{service}.invalid:8080"]), namespace: "n")
        let directory = ServiceDirectory(registry)
        #expect(await directory.instances(of: "no-such-service").isEmpty)
    }
}
