import Common
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Observability
import Tracing

extension HTTPField.Name {
    public static let requestId = HTTPField.Name("X-Request-Id")!
    public static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
}

/// The one place where anything thrown by a handler becomes the contract's
/// error body. Handlers throw `ShopError`; the framework's own errors (no
/// route, body too large) and anything unexpected are mapped here too, so no
/// request ever gets an answer outside the contract.
///
/// It also gives each request its id, starts the request's span (continuing
/// the caller's trace when it sent a W3C `traceparent`), and writes one
/// access-log line.
public struct ContractMiddleware: RouterMiddleware {
    public typealias Context = ShopRequestContext

    /// What the process serves, for 405 answers; none: every unknown
    /// method-and-path is a 404.
    let routes: RouteTable?

    public init(routes: RouteTable? = nil) { self.routes = routes }

    public func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        // Everything below runs inside the span: its log lines carry the
        // trace id, and the calls and messages it causes carry the trace on.
        let trace = Observability.context(extracting: request.headers, using: HTTPFieldsExtractor())
        return try await Observability.withSpan(request.method.rawValue, ofKind: .server, context: trace) { span in
            let response = try await serve(request, context: context, next: next)
            // Named by the route's template, as the metrics are, once routing
            // has found it (never by the path: it holds ids).
            span?.operationName = "\(request.method.rawValue) \(context.endpointPath ?? "(no route)")"
            return response
        }
    }

    func serve(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var context = context
        let requestId = request.headers[.requestId].flatMap(Self.acceptableRequestId) ?? ID.make("req")
        context.requestId = requestId
        context.logger[metadataKey: "request_id"] = .string(requestId)
        let started = ContinuousClock.now

        var response: Response
        do {
            // Refuse an announced oversized body before reading any of it.
            if let length = request.headers[.contentLength].flatMap(Int.init), length > Limits.maxBodyBytes {
                throw ShopError.payloadTooLarge
            }
            response = try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && !(routes?.methods(for: request.uri.path).isEmpty ?? true) {
            // The path is served, with other methods: say which.
            let allowed = routes?.methods(for: request.uri.path) ?? []
            response = Reply.error(ShopError(
                .methodNotAllowed, "\(request.method.rawValue) is not served at \(request.uri.path); it answers \(allowed.joined(separator: ", "))"))
            response.headers[.allow] = allowed.joined(separator: ", ")
        } catch {
            response = Self.response(for: error, request: request, logger: context.logger)
        }
        response.headers[.requestId] = requestId

        let elapsed = ContinuousClock.now - started
        context.logger.info("request", metadata: [
            "method": .string(request.method.rawValue),
            "path": .string(request.uri.path),
            "status": .stringConvertible(response.status.code),
            "ms": .string(String(format: "%.2f", Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)),
        ])
        return response
    }

    /// Maps any error to a contract response.
    public static func response(for error: any Error, request: Request, logger: Logger) -> Response {
        let shopError: ShopError
        switch error {
        case let error as ShopError:
            shopError = error
        case is NIOTooManyBytesError:
            shopError = .payloadTooLarge
        case let error as HTTPError where error.status == .notFound:
            shopError = ShopError(.notFound, "no resource at \(request.method.rawValue) \(request.uri.path)")
        case let error as HTTPError where error.status == .contentTooLarge:
            shopError = .payloadTooLarge
        case let error as HTTPError where (400..<500).contains(error.status.code):
            shopError = ShopError(.invalidRequest, error.body ?? "the request could not be understood")
        default:
            // A bug or a failed dependency, never bad input: log everything,
            // tell the client only what it can use.
            logger.error("unhandled error", metadata: ["error": .string(String(reflecting: error))])
            shopError = ShopError(.internalError, "something went wrong on our side; quote the X-Request-Id header when reporting it")
        }
        return Reply.error(shopError)
    }

    /// Reads `traceparent` and `tracestate` from a request.
    struct HTTPFieldsExtractor: Extractor {
        // Made once: a name is checked when made, and every request asks.
        static let names = [TraceHeader.traceparent, TraceHeader.tracestate].reduce(into: [String: HTTPField.Name]()) {
            $0[$1] = HTTPField.Name($1)
        }

        func extract(key: String, from carrier: HTTPFields) -> String? {
            (Self.names[key] ?? HTTPField.Name(key)).flatMap { carrier[$0] }
        }
    }

    /// Caller-supplied ids are logged, so keep them short and printable.
    static func acceptableRequestId(_ raw: String) -> String? {
        guard !raw.isEmpty, raw.count <= 128,
              raw.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else { return nil }
        return raw
    }
}
