import Foundation
import Redis
import RedisTestSupport
import Testing

/// Commands against a real redis-server: basics, binary safety, pipelining,
/// concurrency on one connection, Lua scripts.
@Suite(.serialized, .redisServer)
struct CommandTests {
    private func connect() async throws -> RedisConnection {
        try await RedisConnection.connect(to: try currentServer().address)
    }

    @Test func basicCommands() async throws {
        let redis = try await connect()
        let key = uniqueKey()
        #expect(try await redis.ping() == "PONG")
        #expect(try await redis.get(key) == nil)
        try await redis.set(key, to: "hello world")
        #expect(try await redis.get(key) == "hello world")
        #expect(try await redis.send(["STRLEN", key]) == .integer(11))
        #expect(try await redis.send(["APPEND", key, "!"]).int == 12)
        #expect(try await redis.delete(key) == 1)
        #expect(try await redis.increment(key) == 1)
        #expect(try await redis.increment(key, by: 41) == 42)
        #expect(try await redis.send(["GET", key]) == .bulkString(Array("42".utf8)))

        try await redis.set(key + ":ttl", to: "x", expiresIn: .seconds(30))
        let ttl = try await redis.send(["PTTL", key + ":ttl"]).int
        #expect(ttl > 25_000 && ttl <= 30_000)
    }

    @Test func errorRepliesAreThrownAndLeaveTheConnectionUsable() async throws {
        let redis = try await connect()
        let key = uniqueKey()
        try await redis.set(key, to: "a string")
        do {
            _ = try await redis.send(["LPUSH", key, "x"])
            Issue.record("LPUSH on a string should fail")
        } catch {
            #expect(error.serverErrorCode == "WRONGTYPE")
            #expect(!error.isConnectionError)
        }
        do {
            _ = try await redis.send(["NOSUCHCOMMAND", "a"])
            Issue.record("an unknown command should fail")
        } catch {
            #expect(error.serverErrorCode == "ERR")
            #expect(error.description.contains("unknown command"))
        }
        #expect(try await redis.ping() == "PONG")
    }

    @Test func binaryValuesRoundTrip() async throws {
        let redis = try await connect()
        let everyByte = (0...255).map { UInt8($0) }
        // As the value, and inside the key too: both are length-prefixed.
        let key = Array(uniqueKey().utf8) + [0x00, 0x0d, 0x0a, 0xff]
        _ = try await redis.send(["SET", key, everyByte])
        #expect(try await redis.send(["GET", key]).bytes == everyByte)
        #expect(try await redis.send(["STRLEN", key]).int == 256)

        // Bytes that look like protocol, and an empty value.
        let tricky = Array("$5\r\n*1\r\n-ERR\r\n\0".utf8)
        _ = try await redis.send(["SET", key, tricky])
        #expect(try await redis.send(["GET", key]).bytes == tricky)
        _ = try await redis.send(["SET", key, ""])
        #expect(try await redis.send(["GET", key]) == .bulkString([]))

        // 1 MiB of every byte value.
        let large = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        _ = try await redis.send(["SET", key, large])
        #expect(try await redis.send(["GET", key]).bytes == large)
    }

    @Test func pipelineOfAThousandIncrements() async throws {
        let redis = try await connect()
        let key = uniqueKey()
        let commands = Array(repeating: RedisCommand(["INCR", key]), count: 1000)
        let replies = try await redis.pipeline(commands)
        #expect(replies.count == 1000)
        #expect(replies == (1...1000).map { RESPValue.integer($0) })
        #expect(try await redis.get(key) == "1000")
    }

    @Test func pipelineKeepsErrorRepliesInPlace() async throws {
        let redis = try await connect()
        let key = uniqueKey()
        let replies = try await redis.pipeline([
            ["SET", key, "text"],
            ["INCR", key],          // fails: not an integer
            ["APPEND", key, "+more"],
            ["GET", key],
        ])
        #expect(replies.count == 4)
        #expect(replies[0] == .simpleString("OK"))
        guard case .error(let message) = replies[1] else {
            Issue.record("expected an error reply, got \(replies[1])")
            return
        }
        #expect(message.hasPrefix("ERR value is not an integer"))
        #expect(throws: RedisError.self) { try replies[1].checked() }
        #expect(replies[2] == .integer(9))
        #expect(try replies[3].string == "text+more")
    }

    @Test func manyTasksShareOneConnection() async throws {
        let redis = try await connect()
        let key = uniqueKey()
        // 50 tasks, each with its own value: every reply must be its own
        // (the thread runs calls one at a time, so replies can't cross).
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<50 {
                group.addTask {
                    let mine = "\(key):\(task)"
                    for round in 0..<20 {
                        try await redis.set(mine, to: "\(task)-\(round)")
                        let value = try await redis.get(mine)
                        #expect(value == "\(task)-\(round)")
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    // A real peer is part of the point: no skipping when it is missing,
    // the test fails and says to run scripts/setup.
    @Test
    func luaScriptEffectIsSeenByRedisPy() async throws {
        let server = try currentServer()
        let redis = try await connect()
        let job = uniqueKey() + ":job"
        let counter = uniqueKey() + ":count"
        // What a job queue does atomically: record a job's state and count it.
        let script = RedisScript("""
            redis.call('HSET', KEYS[1], 'state', ARGV[1], 'payload', ARGV[2])
            return redis.call('INCRBY', KEYS[2], ARGV[3])
            """)
        let payload: [UInt8] = [0x00, 0x01, 0xfe, 0xff] + Array("é".utf8)
        let first = try await redis.evaluate(script, keys: [job, counter], arguments: ["waiting", payload, 5])
        #expect(first == .integer(5))
        let second = try await redis.evaluate(script, keys: [job, counter], arguments: ["active", payload, 2])
        #expect(second == .integer(7))

        let seen = try await RedisPy.run("""
            print(json.dumps({
                'state': r.hget(\(quoted: job), 'state').decode(),
                'payload': list(r.hget(\(quoted: job), 'payload')),
                'count': int(r.get(\(quoted: counter))),
                'cached': r.script_exists(\(quoted: script.sha1))[0],
            }))
            """, against: server.address)
        struct Seen: Decodable { var state: String; var payload: [UInt8]; var count: Int; var cached: Bool }
        let decoded = try JSONDecoder().decode(Seen.self, from: Data(seen.utf8))
        #expect(decoded.state == "active")
        #expect(decoded.payload == payload)
        #expect(decoded.count == 7)
        #expect(decoded.cached, "the server knows the script by the SHA-1 Swift computed")
    }

    @Test func serverAgreesWithOurSHA1() async throws {
        let redis = try await connect()
        let script = RedisScript("return {KEYS[1], ARGV[1], 'ü', \(Int.random(in: 0...1_000_000))}")
        try await redis.load(script)   // throws if Redis computed another digest
        #expect(try await redis.send(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(1)]))
    }

    @Test func evaluateFallsBackToEvalAfterScriptFlush() async throws {
        let redis = try await connect()
        let key = uniqueKey()
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        try await redis.load(script)
        #expect(try await redis.evaluate(script, keys: [key], arguments: [3]) == .integer(3))

        // As after a Redis restart or failover: the cache is empty.
        _ = try await redis.send(["SCRIPT", "FLUSH"])
        await #expect(throws: RedisError.self) {
            try await redis.send(["EVALSHA", script.sha1, 1, key, 1])
        }
        do {
            _ = try await redis.send(["EVALSHA", script.sha1, 1, key, 1])
        } catch {
            #expect(error.serverErrorCode == "NOSCRIPT")
            guard case .noScript = error else { Issue.record("expected .noScript, got \(error)"); return }
        }

        // evaluate() sees NOSCRIPT, sends the source with EVAL, and that
        // caches it again: the next call goes by SHA-1.
        #expect(try await redis.evaluate(script, keys: [key], arguments: [4]) == .integer(7))
        #expect(try await redis.send(["SCRIPT", "EXISTS", script.sha1]) == .array([.integer(1)]))
        #expect(try await redis.evaluate(script, keys: [key], arguments: [1]) == .integer(8))
    }

    @Test func scriptErrorsAreServerErrors() async throws {
        let redis = try await connect()
        let script = RedisScript("return redis.call('NOSUCHCOMMAND')")
        do {
            _ = try await redis.evaluate(script)
            Issue.record("the script should fail")
        } catch {
            guard case .server(let message) = error else { Issue.record("got \(error)"); return }
            #expect(message.contains("Unknown Redis command"))
        }
    }
}
