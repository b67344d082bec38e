import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP response, read whole.
public struct HTTPResponse: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    /// The first header of that name (names compare case-insensitively).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

public enum HTTPClientError: Error, CustomStringConvertible, Sendable {
    case invalidURL(String)
    case cannotConnect(address: String, reason: String)
    case timedOut(url: String, after: Duration)
    case connectionClosed(address: String)
    /// The response's body is longer than the client's `maximumBodySize`.
    /// The rest of it is not read, and the connection is closed.
    case bodyTooLarge(url: String, limit: Int)

    public var description: String {
        switch self {
        case .invalidURL(let url): "not an http:// URL: \(url)"
        case .cannotConnect(let address, let reason): "cannot connect to \(address): \(reason)"
        case .timedOut(let url, let after): "no answer from \(url) within \(after)"
        case .connectionClosed(let address): "\(address) closed the connection before answering"
        case .bodyTooLarge(let url, let limit): "the response from \(url) is larger than the client's limit of \(limit) bytes"
        }
    }
}

/// A small HTTP/1.1 client over SwiftNIO: keep-alive connections pooled
/// per host, a deadline on every request, a cap on the size of a response,
/// plain HTTP only.
///
/// Why not AsyncHTTPClient: it brings TLS, and with it a copy of BoringSSL
/// that takes minutes to compile; every call this project makes stays on
/// loopback or inside a cluster. The tests, the load generator and the
/// stages' service-to-service calls share this one client.
public final class HTTPClient: Sendable {
    public let timeout: Duration
    /// The longest response body this client reads, in bytes. A response
    /// is held whole in memory, and the gateway relays what a service
    /// answers: without a cap, one broken or hostile upstream that sends
    /// gigabytes would take the gateway's memory with it.
    public let maximumBodySize: Int
    /// 8 MiB: far above anything the shop's API answers (a page of a list
    /// is a few hundred KiB at most), far below what hurts a process.
    public static let defaultMaximumBodySize = 8 << 20
    private let group: any EventLoopGroup
    private let idle = Mutex<[String: [any Channel]]>([:])
    private static let maxIdlePerHost = 512

    public init(
        timeout: Duration = .seconds(30), maximumBodySize: Int = HTTPClient.defaultMaximumBodySize,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        precondition(maximumBodySize >= 0, "maximumBodySize must not be negative")
        self.timeout = timeout
        self.maximumBodySize = maximumBodySize
        self.group = group
    }

    deinit {
        for channel in idle.withLock({ $0.values.flatMap { $0 } }) { channel.close(promise: nil) }
    }

    /// Sends a request and reads the whole response.
    public func send(
        _ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration? = nil
    ) async throws -> HTTPResponse {
        guard let target = Target(url) else { throw HTTPClientError.invalidURL(url) }
        let timeout = timeout ?? self.timeout

        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: target.pathAndQuery)
        head.headers.add(name: "Host", value: target.hostHeader)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.count))
            if !head.headers.contains(name: "Content-Type") { head.headers.add(name: "Content-Type", value: "application/json") }
        } else if method != "GET" && method != "HEAD" {
            head.headers.replaceOrAdd(name: "Content-Length", value: "0")
        }
        let exchange = Exchange(head: head, body: body.map { ByteBuffer(bytes: $0) }, url: target.url, maximumBodySize: maximumBodySize)

        // A pooled connection may have been closed by the server while idle.
        // An idempotent request is then sent again on a fresh connection; a
        // POST is not, because the server may have acted on it before the
        // connection died, and sending it twice could place two orders.
        if let channel = takeIdle(target.key) {
            do {
                return try await run(exchange, on: channel, target: target, timeout: timeout)
            } catch HTTPClientError.connectionClosed where ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"].contains(method) {}
        }
        let channel = try await connect(target, timeout: timeout)
        return try await run(exchange, on: channel, target: target, timeout: timeout)
    }

    private func run(_ exchange: Exchange, on channel: any Channel, target: Target, timeout: Duration) async throws -> HTTPResponse {
        let promise = channel.eventLoop.makePromise(of: Collected.self)
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)) {
            promise.fail(HTTPClientError.timedOut(url: target.url, after: timeout))
            channel.close(promise: nil)
        }
        channel.writeAndFlush(ExchangeHandler.Outbound(exchange: exchange, promise: promise), promise: nil)
        let collected: Collected
        do {
            collected = try await promise.futureResult.get()
            deadline.cancel()
        } catch {
            // Whatever went wrong (a timeout, a body over the cap), the
            // connection may still carry the rest of this response: it is
            // closed, never pooled, so the next request cannot read it.
            deadline.cancel()
            channel.close(promise: nil)
            throw error
        }
        if collected.keepAlive {
            putIdle(channel, key: target.key)
        } else {
            channel.close(promise: nil)
        }
        return collected.response
    }

    private func connect(_ target: Target, timeout: Duration) async throws -> any Channel {
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(.seconds(min(5, max(1, timeout.components.seconds))))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler(address: target.key))
                }
            }
        do {
            return try await bootstrap.connect(host: target.host, port: target.port).get()
        } catch {
            throw HTTPClientError.cannotConnect(address: target.key, reason: "\(error)")
        }
    }

    private func takeIdle(_ key: String) -> (any Channel)? {
        idle.withLock { pool in
            while let channel = pool[key]?.popLast() {
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    private func putIdle(_ channel: any Channel, key: String) {
        let kept = idle.withLock { pool in
            guard pool[key, default: []].count < Self.maxIdlePerHost else { return false }
            pool[key, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }
}

/// Where a URL points.
struct Target: Sendable {
    let url: String
    let host: String
    let port: Int
    let pathAndQuery: String
    var key: String { "\(host):\(port)" }
    var hostHeader: String { port == 80 ? host : "\(host):\(port)" }

    init?(_ url: String) {
        guard let components = URLComponents(string: url), components.scheme == "http", let host = components.host else { return nil }
        self.url = url
        self.host = host
        self.port = components.port ?? 80
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        self.pathAndQuery = components.percentEncodedQuery.map { path + "?" + $0 } ?? path
    }
}

struct Exchange: Sendable {
    let head: HTTPRequestHead
    let body: ByteBuffer?
    /// For the error that names the request whose answer was too big.
    let url: String
    let maximumBodySize: Int
}

struct Collected: Sendable {
    let response: HTTPResponse
    let keepAlive: Bool
}

/// Writes one request and collects its response. One exchange at a time
/// per connection (no pipelining), which is all HTTP/1.1 clients rely on.
final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Outbound
    typealias OutboundOut = HTTPClientRequestPart

    struct Outbound {
        let exchange: Exchange
        let promise: EventLoopPromise<Collected>
    }

    let address: String
    private var pending: EventLoopPromise<Collected>?
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []
    /// The exchange being answered: its URL and its cap on the body.
    private var url = ""
    private var maximumBodySize = Int.max
    private var isHead = false

    init(address: String) { self.address = address }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let outbound = unwrapOutboundIn(data)
        // A pooled connection can close between being taken from the pool and
        // this write. Its close has already been handled, so nothing else
        // would ever fail this exchange: fail it now (and the caller retries
        // on a fresh connection or another instance) instead of letting it
        // wait out its deadline.
        guard context.channel.isActive else {
            outbound.promise.fail(HTTPClientError.connectionClosed(address: address))
            return
        }
        pending = outbound.promise
        head = nil
        body.removeAll(keepingCapacity: true)
        url = outbound.exchange.url
        maximumBodySize = outbound.exchange.maximumBodySize
        isHead = outbound.exchange.head.method == .HEAD
        context.write(wrapOutboundOut(.head(outbound.exchange.head)), promise: nil)
        if let body = outbound.exchange.body {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        // A write that fails (the peer reset the connection) fails the exchange.
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.cascadeFailure(to: outbound.promise)
        if let promise { written.futureResult.cascade(to: promise) }
        context.write(wrapOutboundOut(.end(nil)), promise: written)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // After a body over the cap has failed the exchange, the rest of
        // the response is dropped while the connection closes.
        guard pending != nil else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            // A declared length over the cap fails before a byte of the
            // body is read. (Not when no body follows, whatever the length
            // says: the answer to a HEAD, a 204 or a 304.)
            let hasBody = !isHead && head.status != .noContent && head.status != .notModified
            if hasBody, let declared = head.headers.first(name: "Content-Length").flatMap(Int.init), declared > maximumBodySize {
                failTooLarge(context: context)
            }
        case .body(var buffer):
            // Counted as it arrives, so that a body without a length
            // (chunked, or until the connection closes) is stopped too.
            guard body.count + buffer.readableBytes <= maximumBodySize else {
                failTooLarge(context: context)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            guard let head, let promise = pending else { return }
            pending = nil
            let response = HTTPResponse(
                status: Int(head.status.code),
                headers: head.headers.map { (name: $0.name, value: $0.value) },
                body: body)
            promise.succeed(Collected(response: response, keepAlive: head.isKeepAlive))
        }
    }

    /// Fails the exchange with `bodyTooLarge` and closes the connection:
    /// the unread rest of the body is still on its way, so it cannot carry
    /// another request.
    private func failTooLarge(context: ChannelHandlerContext) {
        pending?.fail(HTTPClientError.bodyTooLarge(url: url, limit: maximumBodySize))
        pending = nil
        body.removeAll()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending?.fail(HTTPClientError.connectionClosed(address: address))
        pending = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        pending?.fail(error)
        pending = nil
        context.close(promise: nil)
    }
}
