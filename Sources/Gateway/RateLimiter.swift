import Common
import Foundation
import HTTPTypes
import Hummingbird
import Observability
import ShopServer
import Synchronization

/// Per-client rate limiting with a token bucket: each client has a bucket
/// of `burst` tokens, refilled at `perSecond`; a request takes one, and a
/// request that finds the bucket empty gets 429 with `Retry-After`. Every
/// answer says how much is left (`RateLimit-Limit`, `RateLimit-Remaining`),
/// so a well-behaved client can slow down before it is refused.
///
/// A client is its token's user when it sends a valid one, else its IP
/// address: one customer cannot use up another's budget, and anonymous
/// callers share their address's.
struct RateLimiter: RouterMiddleware {
    typealias Context = ShopRequestContext

    struct Bucket { var tokens: Double; var updated: ContinuousClock.Instant }

    /// The buckets of every client, shared by every copy of the middleware.
    /// A `Mutex` cannot be copied, and this struct is (Hummingbird copies
    /// middleware freely), so the mutex lives in a class and the copies
    /// share it.
    final class Buckets: Sendable {
        let table = Mutex<[String: Bucket]>([:])
    }

    let perSecond: Double
    let burst: Double
    let auth: Authenticator
    private let buckets = Buckets()

    static let refused = Observability.counter("shop_rate_limited_requests_total")

    init(perSecond: Double, burst: Double, auth: Authenticator) {
        self.perSecond = perSecond
        self.burst = burst
        self.auth = auth
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let caller = try? auth.bearer(request, context: context)
        context.verified = caller  // the route need not verify the token again
        let client = caller.map { "user:" + $0.principal.userId } ?? "ip:" + (context.remoteAddress ?? "unknown")
        let (allowed, remaining, waitSeconds) = take(client)
        guard allowed else {
            // `shop_rate_limited_requests_total` (stage 3 on): requests the
            // gateway turned away with 429. The route is in
            // `http_requests_total{status="429"}`; this one says why.
            Self.refused.increment()
            var response = Reply.error(ShopError(
                .rateLimited, "too many requests: the limit is \(Int(perSecond)) per second (bursts of \(Int(burst))); retry in \(waitSeconds) s",
                retryAfter: waitSeconds))
            response.headers[HTTPField.Name("RateLimit-Limit")!] = String(Int(burst))
            response.headers[HTTPField.Name("RateLimit-Remaining")!] = "0"
            return response
        }
        var response = try await next(request, context)
        response.headers[HTTPField.Name("RateLimit-Limit")!] = String(Int(burst))
        response.headers[HTTPField.Name("RateLimit-Remaining")!] = String(remaining)
        return response
    }

    private func take(_ client: String) -> (allowed: Bool, remaining: Int, waitSeconds: Int) {
        let now = ContinuousClock.now
        return buckets.table.withLock { buckets in
            // Forget idle clients now and then, so the table cannot grow without bound.
            if buckets.count > 100_000 { buckets = buckets.filter { now - $0.value.updated < .seconds(60) } }
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(burst, bucket.tokens + seconds * perSecond)
            bucket.updated = now
            defer { buckets[client] = bucket }
            guard bucket.tokens >= 1 else {
                return (false, 0, max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up))))
            }
            bucket.tokens -= 1
            return (true, Int(bucket.tokens), 0)
        }
    }
}
