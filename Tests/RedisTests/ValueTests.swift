@testable import Redis
import Testing

/// Decoders, argument encoding and small pure helpers: no server needed.
@Suite struct ValueTests {
    @Test func decodersReadTheShapesRedisSends() throws {
        #expect(try RESPValue.simpleString("OK").string == "OK")
        #expect(try RESPValue.bulkString(Array("héllo".utf8)).string == "héllo")
        #expect(try RESPValue.null.optionalString == nil)
        #expect(try RESPValue.integer(42).int == 42)
        #expect(try RESPValue.bulkString(Array("-17".utf8)).int == -17)
        #expect(try RESPValue.bulkString(Array("1.5".utf8)).double == 1.5)
        #expect(try RESPValue.bulkString(Array("inf".utf8)).double == .infinity)
        #expect(try RESPValue.null.optionalInt == nil)
        #expect(try RESPValue.array([.integer(1), .null]).elements == [.integer(1), .null])
        #expect(try RESPValue.null.optionalElements == nil)
    }

    @Test func decodersSayWhatTheyGot() {
        #expect(throws: RedisError.unexpectedReply(expected: "an integer", got: .bulkString(Array("x".utf8)))) {
            try RESPValue.bulkString(Array("x".utf8)).int
        }
        #expect(throws: RedisError.unexpectedReply(expected: "UTF-8 text", got: .bulkString([0xff, 0xfe]))) {
            try RESPValue.bulkString([0xff, 0xfe]).string
        }
        #expect(throws: RedisError.unexpectedReply(expected: "a string", got: .null)) {
            try RESPValue.null.string
        }
        #expect(throws: RedisError.noScript(message: "NOSCRIPT No matching script")) {
            try RESPValue.error("NOSCRIPT No matching script").checked()
        }
    }

    @Test func serverErrorsKeepTheirCode() {
        let error = RedisError(serverMessage: "WRONGTYPE Operation against a key holding the wrong kind of value")
        #expect(error.serverErrorCode == "WRONGTYPE")
        #expect(!error.isConnectionError)
        #expect(RedisError.commandTimeout(address: "h:1", timeout: .seconds(1)).isConnectionError)
    }

    @Test func argumentsAreBytes() {
        let command: RedisCommand = ["SET", "k", [0, 255] as [UInt8], 42, 1.5]
        #expect(command.arguments == [Array("SET".utf8), Array("k".utf8), [0, 255], Array("42".utf8), Array("1.5".utf8)])
        #expect(command.name == "SET")
    }

    @Test func blockingTimeoutsNeverRoundToForever() {
        typealias Runner = RedisConnection
        #expect(Runner.serverSeconds(.seconds(2)) == "2.000")
        #expect(Runner.serverSeconds(.milliseconds(250)) == "0.250")
        #expect(Runner.serverSeconds(.microseconds(1)) == "0.001")  // not "0": Redis would wait forever
        #expect(Runner.serverSeconds(.milliseconds(1500)) == "1.500")
    }

    @Test func addressesFromURLs() throws {
        #expect(try RedisAddress(url: "redis://localhost:6380/2") == RedisAddress(host: "localhost", port: 6380))
        #expect(try RedisAddress(url: "redis://:secret@cache.example") == RedisAddress(host: "cache.example", port: 6379))
        #expect(try RedisAddress(url: "redis://[::1]:7000").description == "[::1]:7000")
        #expect(throws: RedisError.self) { try RedisAddress(url: "http://x") }
    }

    @Test func backoffGrowsAndIsCapped() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1), multiplier: 2)
        #expect(policy.delay(afterFailures: 1) == .milliseconds(100))
        #expect(policy.delay(afterFailures: 2) == .milliseconds(200))
        #expect(policy.delay(afterFailures: 4) == .milliseconds(800))
        #expect(policy.delay(afterFailures: 5) == .seconds(1))
        #expect(policy.delay(afterFailures: 50) == .seconds(1))
    }
}
