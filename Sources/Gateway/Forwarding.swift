import Common
import Discovery
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ShopClient
import ShopServer

/// Passes a request on to an instance of a service, as it came: method,
/// path, query, body, and the headers that mean something to the service
/// (the caller's token, the idempotency key, the request id, a `Prefer`).
/// The answer comes back as it went: status, body, content type,
/// `Retry-After`, `Preference-Applied`.
struct Forwarder: Sendable {
    let services: [String: DiscoveredService]

    func forward(_ request: Request, context: ShopRequestContext, to service: String, headers extra: [(String, String)] = []) async throws -> Response {
        try await forward(request, context: context, via: services[service]!, headers: extra)
    }

    func forward(_ request: Request, context: ShopRequestContext, via service: DiscoveredService, headers extra: [(String, String)] = []) async throws -> Response {
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Limits.maxBodyBytes)
        } catch is NIOTooManyBytesError {
            throw ShopError.payloadTooLarge
        }
        var headers: [(String, String)] = extra
        for name in [HTTPField.Name.authorization, .contentType, .idempotencyKey, .prefer] {
            for value in request.headers[values: name] { headers.append((name.rawName, value)) }
        }
        let path = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        // A request that may be held for news (`Prefer: wait=N`) is given
        // N seconds more than the usual deadline. The gateway holds no
        // thread meanwhile: the call is a suspended task on an idle socket.
        let timeout = PreferredWait(request.headers).map { service.timeout + $0.duration }
        let answer = try await service.send(
            request.method.rawValue, path, body: body.readableBytes > 0 || request.method != .get ? Array(body.readableBytesView) : nil,
            requestId: context.requestId, headers: headers, timeout: timeout)
        return Self.relay(answer)
    }

    static func relay(_ answer: ShopClient.HTTPResponse) -> Response {
        var response = Response(status: HTTPTypes.HTTPResponse.Status(code: answer.status), body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
        if let type = answer.header("Content-Type") { response.headers[.contentType] = type }
        if let retry = answer.header("Retry-After") { response.headers[.retryAfter] = retry }
        if let applied = answer.header("Preference-Applied") { response.headers[.preferenceApplied] = applied }
        // Stage 8's consistency token (the store position a command reached),
        // passed to the client as the service said it.
        if let position = answer.header("Shop-Position") { response.headers[HTTPField.Name("Shop-Position")!] = position }
        return response
    }
}
