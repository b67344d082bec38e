import NIOCore
import NIOHTTP1
import NIOPosix
import ShopClient
import Synchronization
import Testing

/// The HTTP client against a real HTTP server on loopback, started by the
/// test itself (SwiftNIO, a few lines below): no mock, real sockets, real
/// keep-alive, real chunked bodies.
@Suite("HTTP client")
struct HTTPClientTests {
    /// A small cap, so that "too large" takes kilobytes, not megabytes.
    static let limit = 1024

    @Test("a body up to the cap is read whole, on one kept-alive connection")
    func bodyUnderTheCapPasses() async throws {
        let server = try await TestServer.start()
        let client = HTTPClient(timeout: .seconds(10), maximumBodySize: Self.limit)
        let exactly = try await client.send("GET", server.url("/bytes/\(Self.limit)"))
        #expect(exactly.status == 200)
        #expect(exactly.body == [UInt8](repeating: UInt8(ascii: "a"), count: Self.limit))
        let chunked = try await client.send("GET", server.url("/chunked/1000"))
        #expect(chunked.body.count == 1000)
        #expect(server.connections == 1, "both requests went over the one kept-alive connection")
        try await server.stop()
    }

    @Test("a body over the cap fails with bodyTooLarge naming the limit and the URL, declared or not")
    func bodyOverTheCapFails() async throws {
        let server = try await TestServer.start()
        let client = HTTPClient(timeout: .seconds(10), maximumBodySize: Self.limit)
        // With a Content-Length: refused from the head. Without one
        // (chunked): counted as it arrives.
        for path in ["/bytes/\(Self.limit + 1)", "/chunked/\(64 * Self.limit)"] {
            let url = server.url(path)
            do {
                let response = try await client.send("GET", url)
                Issue.record("\(path) answered \(response.body.count) bytes, over the cap of \(Self.limit)")
            } catch let error as HTTPClientError {
                guard case .bodyTooLarge(let failedURL, let limit) = error else {
                    Issue.record("expected bodyTooLarge, got \(error)")
                    continue
                }
                #expect(failedURL == url)
                #expect(limit == Self.limit)
                #expect(error.description.contains(url) && error.description.contains("\(Self.limit) bytes"), "\(error)")
            }
        }
        try await server.stop()
    }

    @Test("a HEAD whose Content-Length is over the cap is no body over the cap")
    func headIsNotCapped() async throws {
        let server = try await TestServer.start()
        let client = HTTPClient(timeout: .seconds(10), maximumBodySize: Self.limit)
        let head = try await client.send("HEAD", server.url("/bytes/\(64 * Self.limit)"))
        #expect(head.status == 200 && head.body.isEmpty)
        #expect(head.header("Content-Length") == "\(64 * Self.limit)")
        #expect(try await client.send("GET", server.url("/bytes/3")).body.count == 3)
        try await server.stop()
    }

    @Test("after a body over the cap the client still works, on a new connection")
    func connectionIsNotReusedAfterABodyOverTheCap() async throws {
        let server = try await TestServer.start()
        let client = HTTPClient(timeout: .seconds(10), maximumBodySize: Self.limit)
        #expect(try await client.send("GET", server.url("/bytes/10")).body.count == 10)
        #expect(server.connections == 1)

        // Reuses the pooled connection, which then carries the unread rest
        // of a big body: it must be closed, not pooled again.
        await #expect(throws: HTTPClientError.self) {
            try await client.send("GET", server.url("/chunked/\(64 * Self.limit)"))
        }
        let next = try await client.send("GET", server.url("/bytes/20"))
        #expect(next.status == 200)
        #expect(next.body == [UInt8](repeating: UInt8(ascii: "a"), count: 20), "no leftover of the big body")
        #expect(server.connections == 2, "the next request opened a fresh connection")
        try await server.stop()
    }

    @Test("a server that never answers fails at the request's deadline; the client goes on")
    func silentServerTimesOut() async throws {
        let server = try await TestServer.start()
        let client = HTTPClient(timeout: .seconds(10), maximumBodySize: Self.limit)
        let url = server.url("/silent")
        let clock = ContinuousClock()
        let start = clock.now
        do {
            _ = try await client.send("GET", url, timeout: .milliseconds(300))
            Issue.record("the server never answers")
        } catch let error as HTTPClientError {
            guard case .timedOut(let failedURL, let after) = error else {
                Issue.record("expected timedOut, got \(error)")
                return
            }
            #expect(failedURL == url && after == .milliseconds(300))
        }
        // At about the deadline: not before it, and far from the client's
        // default of 10 s.
        let took = clock.now - start
        #expect(took >= .milliseconds(290) && took < .seconds(5), "took \(took)")
        #expect(try await client.send("GET", server.url("/bytes/5")).body.count == 5)
        try await server.stop()
    }
}

/// An HTTP/1.1 server on 127.0.0.1 and a port the kernel picks:
/// - `/bytes/N`: N bytes of "a" with a Content-Length (HEAD: the length only);
/// - `/chunked/N`: N bytes of "a" in 1 KiB chunks, no length announced;
/// - `/silent`: reads the request and never answers.
final class TestServer: Sendable {
    private let channel: any Channel
    private let accepted: Accepted
    let port: Int

    /// Connections accepted so far: how the tests see keep-alive and reuse.
    var connections: Int { accepted.count.load(ordering: .relaxed) }

    private init(channel: any Channel, accepted: Accepted, port: Int) {
        self.channel = channel
        self.accepted = accepted
        self.port = port
    }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    static func start() async throws -> TestServer {
        let accepted = Accepted()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                accepted.count.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw TestServerError.noPort }
        return TestServer(channel: channel, accepted: accepted, port: port)
    }

    func stop() async throws {
        try await channel.close()
    }

    private final class Accepted: Sendable {
        let count = Atomic<Int>(0)
    }

    enum TestServerError: Error { case noPort }
}

/// Answers each request once its end has arrived.
private final class Responder: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var request: HTTPRequestHead?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let request else { return }
            respond(to: request, context: context)
        }
    }

    private func respond(to request: HTTPRequestHead, context: ChannelHandlerContext) {
        let parts = request.uri.split(separator: "/")
        let count = parts.count == 2 ? Int(parts[1]) : nil
        var headers = HTTPHeaders()
        switch (parts.first, count) {
        case ("bytes", let count?):
            headers.add(name: "Content-Length", value: String(count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
            // A HEAD gets the headers a GET would, and no body.
            if request.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(body(count)))), promise: nil)
            }
        case ("chunked", let count?):
            // No Content-Length: NIO's encoder sends the body chunked.
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .ok, headers: headers))), promise: nil)
            var left = count
            while left > 0 {
                let piece = min(left, 1024)
                context.write(wrapOutboundOut(.body(.byteBuffer(body(piece)))), promise: nil)
                left -= piece
            }
        case ("silent", nil):
            return
        default:
            headers.add(name: "Content-Length", value: "0")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: .notFound, headers: headers))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func body(_ count: Int) -> ByteBuffer {
        ByteBuffer(repeating: UInt8(ascii: "a"), count: count)
    }
}
