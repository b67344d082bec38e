import Foundation
import ShopClient

/// etcd through its HTTP/JSON gateway (`/v3/...`): keys and values travel
/// base64-encoded, numbers as strings. Enough of the API for discovery:
/// leases, put, range over a prefix, revoke. No gRPC client needed.
public struct EtcdClient: Sendable {
    public let url: String
    let http: HTTPClient

    public init(url: String, http: HTTPClient = HTTPClient(timeout: .seconds(2))) {
        self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
        self.http = http
    }

    public struct KeyValue: Sendable {
        public let key: String
        public let value: [UInt8]
        public let lease: Int64
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// A lease that expires `ttl` seconds after its last keep-alive.
    public func grantLease(ttl: Int) async throws -> Int64 {
        let answer = try await call("/v3/lease/grant", ["TTL": String(ttl)])
        guard let id = (answer["ID"] as? String).flatMap(Int64.init) else { throw Failure(description: "etcd granted no lease: \(answer)") }
        return id
    }

    /// Renews a lease; answers its remaining TTL, 0 when it has expired.
    public func keepAlive(lease: Int64) async throws -> Int {
        let answer = try await call("/v3/lease/keepalive", ["ID": String(lease)])
        let result = answer["result"] as? [String: Any] ?? answer
        return (result["TTL"] as? String).flatMap(Int.init) ?? 0
    }

    public func revoke(lease: Int64) async throws {
        _ = try await call("/v3/lease/revoke", ["ID": String(lease)])
    }

    public func put(_ key: String, _ value: [UInt8], lease: Int64? = nil) async throws {
        var body = ["key": Self.b64(Array(key.utf8)), "value": Self.b64(value)]
        if let lease { body["lease"] = String(lease) }
        _ = try await call("/v3/kv/put", body)
    }

    /// Every key that starts with `prefix`.
    public func range(prefix: String) async throws -> [KeyValue] {
        var end = Array(prefix.utf8)
        end[end.count - 1] += 1  // the first key after every key with this prefix
        let answer = try await call("/v3/kv/range", ["key": Self.b64(Array(prefix.utf8)), "range_end": Self.b64(end)])
        let kvs = answer["kvs"] as? [[String: Any]] ?? []
        return kvs.compactMap { kv in
            guard let key = (kv["key"] as? String).flatMap(Self.unb64), let value = (kv["value"] as? String).flatMap(Self.unb64) else { return nil }
            return KeyValue(key: String(decoding: key, as: UTF8.self), value: value, lease: (kv["lease"] as? String).flatMap(Int64.init) ?? 0)
        }
    }

    public func isHealthy() async -> Bool {
        (try? await http.send("GET", url + "/health", timeout: .seconds(1)))?.text.contains("\"health\":\"true\"") == true
    }

    private func call(_ path: String, _ body: [String: String]) async throws -> [String: Any] {
        let response = try await http.send("POST", url + path, body: Array(try JSONSerialization.data(withJSONObject: body)))
        guard response.status == 200, let object = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any] else {
            throw Failure(description: "etcd at \(url) answered \(response.status) to \(path): \(response.text.prefix(200))")
        }
        if let error = object["error"] { throw Failure(description: "etcd at \(url): \(error)") }
        return object
    }

    static func b64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }
    static func unb64(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map(Array.init) }
}
