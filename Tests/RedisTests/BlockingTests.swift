import Redis
import RedisTestSupport
import TestSupport
import Testing

/// Blocking pops wait on the server, each on a connection of its own.
@Suite(.serialized, .redisServer)
struct BlockingTests {
    @Test func bzpopminWakesWhenAnotherConnectionAdds() async throws {
        let address = try currentServer().address
        let consumer = try await RedisConnection.connect(to: address)
        let producer = try await RedisConnection.connect(to: address)
        let key = uniqueKey()

        let clock = ContinuousClock()
        let start = clock.now
        // A server-side wait far longer than the bound below, so that
        // "woke on ZADD" cannot be mistaken for "timed out", however slow
        // the machine.
        let waiter = Task { try await consumer.blockingPopMin([key], timeout: .seconds(30)) }
        // The ZADD must come after the BZPOPMIN blocks on the server: wait
        // until the server lists it.
        try await Poll.until("the server lists the blocked BZPOPMIN", within: .seconds(10)) {
            try await producer.send(["CLIENT", "LIST", "TYPE", "normal"]).string.contains("cmd=bzpopmin") ? true : nil
        }
        try await producer.sortedSetAdd(key, member: "job-1", score: 12.5)

        let popped = try await waiter.value
        let waited = clock.now - start
        #expect(popped == PoppedMember(key: key, member: Array("job-1".utf8), score: 12.5))
        #expect(waited < .seconds(10), "woke on ZADD, not on its 30 s timeout (took \(waited))")
    }

    @Test func blockingPopTimesOutWithNilEvenWhenLongerThanTheCommandTimeout() async throws {
        // Command timeout 200 ms, server-side wait 700 ms: the socket must
        // wait for the server's nil reply, not give up at 200 ms.
        let configuration = RedisConfiguration(commandTimeout: .milliseconds(200))
        let redis = try await RedisConnection.connect(to: try currentServer().address, configuration: configuration)
        let clock = ContinuousClock()
        let start = clock.now
        let popped = try await redis.blockingPopMin([uniqueKey()], timeout: .milliseconds(700))
        let waited = clock.now - start
        #expect(popped == nil)
        #expect(waited >= .milliseconds(650) && waited < .seconds(3))
        // And the command timeout is back in force afterwards.
        #expect(try await redis.ping() == "PONG")
    }

    @Test func blpopAndBrpoplpush() async throws {
        let address = try currentServer().address
        let redis = try await RedisConnection.connect(to: address)
        let source = uniqueKey() + ":wait"
        let destination = uniqueKey() + ":active"

        try await redis.leftPush(source, "a", "b")  // list: b, a
        #expect(try await redis.blockingLeftPop([source], timeout: .seconds(1)) == PoppedElement(key: source, value: Array("b".utf8)))
        #expect(try await redis.blockingRightPopLeftPush(from: source, to: destination, timeout: .seconds(1)) == Array("a".utf8))
        #expect(try await redis.send(["LRANGE", destination, 0, -1]) == .array([.bulkString(Array("a".utf8))]))
        #expect(try await redis.blockingRightPopLeftPush(from: source, to: destination, timeout: .milliseconds(100)) == nil)
        #expect(try await redis.blockingLeftPop([source], timeout: .milliseconds(100)) == nil)
    }

    @Test func blockingCommandsRefuseAnUnboundedWait() async throws {
        let redis = try await RedisConnection.connect(to: try currentServer().address)
        await #expect(throws: RedisError.invalidArgument("a blocking command needs a timeout of at least 1 ms, got 0.0 seconds")) {
            try await redis.sendBlocking(["BLPOP", uniqueKey(), 0], serverTimeout: .zero)
        }
    }
}
