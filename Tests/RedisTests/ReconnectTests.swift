import Redis
import RedisTestSupport
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Killing redis-server mid-use and bringing it back. Each test starts a
/// server of its own (whatever REDIS_URL says), since it kills it.
@Suite(.serialized)
struct ReconnectTests {
    let clock = ContinuousClock()

    @Test func clientGivesClearErrorsWhileDownAndRecovers() async throws {
        try await RedisTestServer.withPrivateServer { server in
            let client = RedisClient(
                address: server.address,
                // Timeouts far longer than the bounds below: while the server
                // is down every call must fail because the connection is
                // refused or the client is backing off, never by running
                // into a timeout, and 5 s against bounds of 2.5 s tells the
                // two apart even on a busy machine.
                configuration: RedisConfiguration(connectTimeout: .seconds(5), commandTimeout: .seconds(5)),
                reconnectPolicy: ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .milliseconds(400))
            )
            try await client.set("before", to: "1")
            #expect(try await client.get("before") == "1")

            await server.stop(signal: SIGKILL)

            // 1. The call that finds the connection dead: the server hung up.
            let start = clock.now
            await #expect(throws: RedisError.self) { try await client.get("before") }
            do throws(RedisError) {
                _ = try await client.ping()
                Issue.record("server is down")
            } catch {
                // 2. The next call reconnects at once; nothing listens.
                #expect(error == .connectionRefused(address: server.address.description))
            }
            // 3. Calls within the back-off window fail at once, saying why.
            do throws(RedisError) {
                _ = try await client.ping()
                Issue.record("server is down")
            } catch {
                guard case .unavailable(let address, let retryIn, let lastError) = error else {
                    Issue.record("expected .unavailable, got \(error)")
                    return
                }
                #expect(address == server.address.description)
                #expect(retryIn <= .milliseconds(400))
                #expect(lastError == .connectionRefused(address: server.address.description))
                #expect(error.description.contains(server.address.description))
            }
            #expect(clock.now - start < .milliseconds(2500), "errors while down come fast, no hang")

            // Keep calling for a while with the server down: every call fails
            // quickly, none hangs.
            for _ in 0..<10 {
                let callStart = clock.now
                await #expect(throws: RedisError.self) { try await client.ping() }
                #expect(clock.now - callStart < .milliseconds(2500))
                try await Task.sleep(for: .milliseconds(50))
            }

            // Bring it back on the same port: the client recovers by itself
            // within a back-off period or two.
            try await server.launch()
            let recovered = try? await Poll.until("the client reconnects", within: .seconds(5), every: .milliseconds(50)) {
                try await client.ping() == "PONG" ? true : nil
            }
            #expect(recovered == true, "client reconnected after the server came back")
            // A new, empty server (--save ''), fully usable.
            #expect(try await client.get("before") == nil)
            try await client.set("after", to: "2")
            #expect(try await client.increment("counter") == 1)
            #expect(try await client.get("after") == "2")
            await client.close()
        }
    }

    @Test func blockedConsumerNoticesTheServerDying() async throws {
        try await RedisTestServer.withPrivateServer { server in
            let consumer = try await RedisConnection.connect(to: server.address)
            let waiter = Task { () -> RedisError? in
                do throws(RedisError) {
                    _ = try await consumer.blockingPopMin(["queue"], timeout: .seconds(30))
                    return nil
                } catch {
                    return error
                }
            }
            // Kill the server only once the pop is blocked there.
            let observer = try await RedisConnection.connect(to: server.address)
            try await Poll.until("the server lists the blocked BZPOPMIN", within: .seconds(10)) {
                try await observer.send(["CLIENT", "LIST", "TYPE", "normal"]).string.contains("cmd=bzpopmin") ? true : nil
            }
            observer.close()
            let start = clock.now
            await server.stop(signal: SIGKILL)
            let error = await waiter.value
            // Well under the 30 s the pop would otherwise wait, with room
            // for a busy machine.
            #expect(clock.now - start < .seconds(10), "EOF is seen at once, not after the 30 s wait")
            guard let error, case .connectionLost(let address, _) = error else {
                Issue.record("expected .connectionLost, got \(String(describing: error))")
                return
            }
            #expect(address == server.address.description)
            // A plain connection stays broken and keeps saying so.
            await #expect(throws: error) { try await consumer.ping() }
        }
    }
}
