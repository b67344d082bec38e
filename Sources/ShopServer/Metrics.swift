import HTTPTypes
import Hummingbird
import NIOCore
import Observability

/// Every request counted by the route that served it, its method and its
/// status, and timed: `http_requests_total` and
/// `http_request_duration_seconds` (a histogram). The route is the
/// template (`/orders/{id}`), never the path itself, so an order id never
/// becomes a label; a request no route serves counts under the route
/// `NotFound` (Hummingbird's name for it).
///
/// Added before every other middleware, so it sees the answer the client
/// gets, errors included (the contract middleware inside turns them into
/// responses) and times everything the process did for it.
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = ShopRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let status: Int
        do {
            let response = try await next(request, context)
            status = response.status.code
            record(request, context, status: status, since: started)
            return response
        } catch {
            record(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, since: started)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, status: Int, since started: ContinuousClock.Instant) {
        let labels = [
            ("route", context.endpointPath ?? "NotFound"),
            ("method", Self.knownMethods.contains(request.method) ? request.method.rawValue : "other"),
            ("status", String(status)),
        ]
        Observability.counter("http_requests_total", labels).increment()
        Observability.timer("http_request_duration_seconds", labels).record(since: started)
    }

    /// Any other method (a client may send one of its own) is `other`: a
    /// label takes a bounded set of values.
    static let knownMethods: Set<HTTPRequest.Method> = [.get, .head, .post, .put, .patch, .delete, .options]
}

extension Router where Context == ShopRequestContext {
    /// `GET /metrics`: this process's figures in Prometheus' text format.
    func addMetricsRoute() {
        get("/metrics") { _, _ in
            let body = await Observability.exposition()
            return Response(
                status: .ok, headers: [.contentType: Observability.contentType],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
