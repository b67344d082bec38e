import Common
import Foundation
import Observability
import ShopClient
import Synchronization

/// What discovery knows: the instances of each service, read from etcd and
/// cached for a second, so that a request does not cost a round trip to
/// etcd. If etcd cannot be reached, the last list is kept: a discovery
/// outage should not become a shop outage.
///
/// With DNS discovery the same list comes from resolving each service's
/// name (one instance per address), cached for the same second. DNS cannot
/// list every service, so `all()` answers for the services named at
/// `init` and those asked for since.
public actor ServiceDirectory {
    let registry: ServiceRegistry
    private var cache: [ServiceInstance] = []
    private var fetchedAt: ContinuousClock.Instant?
    /// DNS only: the services to resolve, and each one's last answer.
    private var names: Set<String>
    private var resolved: [String: (instances: [ServiceInstance], at: ContinuousClock.Instant)] = [:]
    private var lookups: [String: Task<[ServiceInstance], Never>] = [:]
    private var next: [String: Int] = [:]
    /// Instances that just failed a call are skipped for a moment: etcd will
    /// drop a dead one when its lease expires, but until then nobody should
    /// be sent to it again.
    private var failedUntil: [String: ContinuousClock.Instant] = [:]
    public let refreshEvery: Duration

    /// `services`: with DNS discovery, the names `all()` answers for.
    public init(_ registry: ServiceRegistry, services: [String] = [], refreshEvery: Duration = .seconds(1)) {
        self.registry = registry
        self.refreshEvery = refreshEvery
        names = Set(services)
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
        if registry.usesDNS {
            // Side by side: one slow name must not hold up the others.
            return await withTaskGroup(of: [ServiceInstance].self) { group in
                for name in names { group.addTask { await self.resolve(name) } }
                var all: [ServiceInstance] = []
                for await some in group { all += some }
                return all.sorted { ($0.service, $0.id) < ($1.service, $1.id) }
            }
        }
        await refreshIfStale()
        return cache
    }

    /// The instances of one service, in round-robin order starting with the
    /// next one to use, healthy ones first.
    public func instances(of service: String) async -> [ServiceInstance] {
        let listed: [ServiceInstance]
        if registry.usesDNS {
            names.insert(service)
            listed = await resolve(service)
        } else {
            await refreshIfStale()
            listed = cache.filter { $0.service == service }
        }
        let now = ContinuousClock.now
        let all = listed.sorted { $0.id < $1.id }
        guard !all.isEmpty else { return [] }
        let start = next[service, default: 0] % all.count
        next[service] = start + 1
        let rotated = Array(all[start...] + all[..<start])
        return rotated.filter { (failedUntil[$0.id] ?? now) <= now } + rotated.filter { (failedUntil[$0.id] ?? now) > now }
    }

    public func markFailed(_ instance: ServiceInstance) {
        failedUntil[instance.id] = .now + .seconds(registry.leaseTTL)
    }

    /// A service's instances by DNS: its URL's host resolved, one instance
    /// per address. A name that does not resolve has none (Kubernetes
    /// lists no pod that is not ready); a lookup that fails otherwise
    /// keeps the last answer, as an etcd outage does.
    ///
    /// One lookup per name at a time: the callers that arrive while it runs
    /// (every request at the gateway, when the second is up) wait for its
    /// answer instead of each taking a thread for one of their own.
    private func resolve(_ service: String) async -> [ServiceInstance] {
        if let last = resolved[service], ContinuousClock.now - last.at < refreshEvery { return last.instances }
        if let running = lookups[service] { return await running.value }
        let (template, previous) = (registry.dnsURL, resolved[service]?.instances ?? [])
        let lookup = Task { await Self.lookUp(service, template: template, previous: previous) }
        lookups[service] = lookup
        let instances = await lookup.value
        lookups[service] = nil
        resolved[service] = (instances, .now)
        return instances
    }

    private static func lookUp(_ service: String, template: String?, previous: [ServiceInstance]) async -> [ServiceInstance] {
        guard let template, let url = URLComponents(string: template.replacingOccurrences(of: "{service}", with: service)),
            let host = url.host
        else { return [] }
        switch await NameLookup.addresses(of: host) {
        case .success(let addresses):
            return addresses.map { address in
                let literal = address.contains(":") ? "[\(address)]" : address
                let base = "\(url.scheme ?? "http")://\(literal)" + (url.port.map { ":\($0)" } ?? "") + url.path
                return ServiceInstance(service: service, id: "\(service)@\(address)", url: base)
            }
        case .failure:
            return previous
        }
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
    public let timeout: Duration

    public init(_ service: String, directory: ServiceDirectory, http: HTTPClient, timeout: Duration = .seconds(2)) {
        self.service = service
        self.directory = directory
        self.http = http
        self.timeout = timeout
    }

    var displayName: String { "the \(service) service" }

    /// The raw response from the first instance that answers. `timeout`
    /// replaces the service's deadline for this call.
    public func send(
        _ method: String, _ path: String, body: [UInt8]? = nil, token: String? = nil, requestId: String? = nil,
        headers: [(String, String)] = [], timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        let candidates = await directory.instances(of: service)
        for instance in candidates {
            let client = ServiceClient(name: displayName, baseURL: instance.url, timeout: self.timeout, http: http)
            do {
                return try await client.sendRaw(method, path, body: body, token: token, requestId: requestId, headers: headers, timeout: timeout)
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

/// Name lookups by the system's resolver (`getaddrinfo`: /etc/hosts, then
/// DNS, as every other program on the machine). It blocks, so it runs on
/// a Dispatch thread, never on one of the cooperative pool's few threads
/// (one per core), where it would stall every task beside it.
enum NameLookup {
    struct Failed: Error { let code: Int32 }

    /// Every address of `host` (IPv4 and IPv6, each once, in the
    /// resolver's order). `.success([])` when the name does not exist.
    static func addresses(of host: String) async -> Result<[String], Failed> {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: lookup(host))
            }
        }
    }

    private static func lookup(_ host: String) -> Result<[String], Failed> {
        var hints = addrinfo()
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, nil, &hints, &list)
        // No such name, or a name without addresses (glibc's EAI_NODATA, -5,
        // which Swift's Glibc module does not export).
        if code == EAI_NONAME || code == -5 { return .success([]) }
        guard code == 0 else { return .failure(Failed(code: code)) }
        defer { freeaddrinfo(list) }
        var addresses: [String] = []
        var next = list
        while let entry = next {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(entry.pointee.ai_addr, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0 {
                let address = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !addresses.contains(address) { addresses.append(address) }
            }
            next = entry.pointee.ai_next
        }
        return .success(addresses)
    }
}
