import Common
import Foundation
import Observability
import ShopClient
import Synchronization

/// What discovery knows: the instances of each service, read from etcd and
/// cached for a second, so that a request does not cost a round trip to
/// etcd. If etcd cannot be reached, the last list is kept: a discovery
/// outage should not become a shop outage.
public actor ServiceDirectory {
    let registry: ServiceRegistry
    private var cache: [ServiceInstance] = []
    private var fetchedAt: ContinuousClock.Instant?
    private var next: [String: Int] = [:]
    /// Instances that just failed a call are skipped for a moment: etcd will
    /// drop a dead one when its lease expires, but until then nobody should
    /// be sent to it again.
    private var failedUntil: [String: ContinuousClock.Instant] = [:]
    public let refreshEvery: Duration

    public init(_ registry: ServiceRegistry, refreshEvery: Duration = .seconds(1)) {
        self.registry = registry
        self.refreshEvery = refreshEvery
        Self.watch(self)
    }

    /// `shop_discovery_instances{service}` (stage 3 on): the instances of
    /// each service this process finds registered, at each scrape. A
    /// service that has none left shows 0, not nothing: "no payment
    /// service" is worth an alert.
    private static func watch(_ directory: ServiceDirectory) {
        let seen = Mutex<Set<String>>([])
        Observability.beforeEachScrape { [weak directory] in
            guard let directory else { return }
            let counts = Dictionary(grouping: await directory.all(), by: \.service).mapValues(\.count)
            let names = seen.withLock { $0.formUnion(counts.keys); return $0 }
            for name in names {
                Observability.gauge("shop_discovery_instances", [("service", name)]).record(counts[name] ?? 0)
            }
        }
    }

    public func all() async -> [ServiceInstance] {
        await refreshIfStale()
        return cache
    }

    /// The instances of one service, in round-robin order starting with the
    /// next one to use, healthy ones first.
    public func instances(of service: String) async -> [ServiceInstance] {
        await refreshIfStale()
        let now = ContinuousClock.now
        let all = cache.filter { $0.service == service }.sorted { $0.id < $1.id }
        guard !all.isEmpty else { return [] }
        let start = next[service, default: 0] % all.count
        next[service] = start + 1
        let rotated = Array(all[start...] + all[..<start])
        return rotated.filter { (failedUntil[$0.id] ?? now) <= now } + rotated.filter { (failedUntil[$0.id] ?? now) > now }
    }

    public func markFailed(_ instance: ServiceInstance) {
        failedUntil[instance.id] = .now + .seconds(registry.leaseTTL)
    }

    private func refreshIfStale() async {
        if let fetchedAt, ContinuousClock.now - fetchedAt < refreshEvery { return }
        if let entries = try? await registry.etcd.range(prefix: registry.prefix) {
            cache = entries.compactMap { try? JSONDecoder().decode(ServiceInstance.self, from: Data($0.value)) }
        }
        fetchedAt = .now
    }
}

/// A service reached through discovery: each call goes to the next instance
/// (round robin). A call that could not even connect is tried on the next
/// instance, whatever its method, because nothing was sent; a call that
/// failed after sending is tried again only when it is idempotent (GET).
/// When no instance answers, the caller gets the contract's 503.
public struct DiscoveredService: Sendable {
    public let service: String
    public let directory: ServiceDirectory
    let http: HTTPClient
    let timeout: Duration

    public init(_ service: String, directory: ServiceDirectory, http: HTTPClient, timeout: Duration = .seconds(2)) {
        self.service = service
        self.directory = directory
        self.http = http
        self.timeout = timeout
    }

    var displayName: String { "the \(service) service" }

    /// The raw response from the first instance that answers.
    public func send(
        _ method: String, _ path: String, body: [UInt8]? = nil, token: String? = nil, requestId: String? = nil,
        headers: [(String, String)] = []
    ) async throws -> HTTPResponse {
        let candidates = await directory.instances(of: service)
        for instance in candidates {
            let client = ServiceClient(name: displayName, baseURL: instance.url, timeout: timeout, http: http)
            do {
                return try await client.sendRaw(method, path, body: body, token: token, requestId: requestId, headers: headers)
            } catch {
                await directory.markFailed(instance)
                let nothingSent: Bool
                if case HTTPClientError.cannotConnect = error { nothingSent = true } else { nothingSent = false }
                guard nothingSent || method == "GET" || method == "HEAD" else { throw ShopError.unavailable(displayName) }
            }
        }
        throw ShopError.unavailable(displayName)
    }

    public func get<T: Decodable>(_ path: String, token: String? = nil, requestId: String? = nil, headers: [(String, String)] = []) async throws -> T {
        try decode(await send("GET", path, token: token, requestId: requestId, headers: headers))
    }

    public func send<T: Decodable>(
        _ method: String, _ path: String, json: some Encodable, token: String? = nil, requestId: String? = nil
    ) async throws -> T {
        try decode(await send(method, path, body: Array(try JSON.encoder().encode(json)), token: token, requestId: requestId))
    }

    func decode<T: Decodable>(_ response: HTTPResponse) throws -> T {
        try ServiceClient(name: displayName, baseURL: "", http: http).decode(response)
    }
}
