// redis-bench: how fast the Swift client talks to a running redis-server,
// in figures comparable to `redis-benchmark -q -t get,set,lpush`.
//
//     swift run -c release redis-bench --port 6379 [--requests 100000] [--clients 1]
//
// Figures are printed, never asserted: they depend on the machine and on
// what else runs on it. Run redis-benchmark in the same session to compare.
//
// What to expect: with one connection, every unpipelined command waits for
// a full round trip, and on top of that this client hands each call to the
// connection's thread and back (two thread wake-ups per command). Pipelining
// pays those costs once per batch, so x16 should be many times faster.
// redis-benchmark's default is 50 connections at once; compare it with
// `--clients 50`, or run it with `-c 1` to compare against one connection.

import Foundation
import Redis

struct Options {
    var host = "127.0.0.1"
    var port = 6379
    var requests = 100_000
    var clients = 1
    var roundTrips = 20_000

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            let value = iterator.next() ?? ""
            switch flag {
            case "--host": host = value
            case "--port": port = Int(value) ?? port
            case "--requests", "-n": requests = Int(value) ?? requests
            case "--clients", "-c": clients = max(1, Int(value) ?? clients)
            case "--round-trips": roundTrips = Int(value) ?? roundTrips
            default:
                print("usage: redis-bench [--host H] [--port P] [--requests N] [--clients C] [--round-trips M]")
                exit(2)
            }
        }
    }
}

let options = Options(CommandLine.arguments)
let address = RedisAddress(host: options.host, port: options.port)
let clock = ContinuousClock()

func seconds(_ duration: Duration) -> Double {
    let (whole, fraction) = duration.components
    return Double(whole) + Double(fraction) / 1e18
}

func report(_ name: String, operations: Int, took: Duration) {
    let rate = Double(operations) / seconds(took)
    print(name.padding(toLength: 34, withPad: " ", startingAt: 0)
          + String(format: "%10.0f ops/s  (%d ops in %.2f s)", rate, operations, seconds(took)))
}

/// Runs `work` on `options.clients` connections at once, each doing its
/// share of `total` operations, and reports the combined rate.
func measure(
    _ name: String, total: Int,
    _ work: @escaping @Sendable (RedisConnection, Int) async throws -> Void
) async throws {
    var connections: [RedisConnection] = []
    for _ in 0..<options.clients {
        connections.append(try await RedisConnection.connect(to: address))
    }
    let share = total / options.clients
    let start = clock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for connection in connections {
            group.addTask { try await work(connection, share) }
        }
        try await group.waitForAll()
    }
    report(name, operations: share * options.clients, took: clock.now - start)
    for connection in connections { connection.close() }
}

// Same key and 3-byte value as redis-benchmark's SET/GET tests.
let key = "key:__rand_int__"
let value = "xxx"
let list = "mylist"
let setCommand: RedisCommand = ["SET", key, value]
let getCommand: RedisCommand = ["GET", key]
let lpushCommand: RedisCommand = ["LPUSH", list, value]

print("redis-bench against \(address): \(options.requests) requests, \(options.clients) connection(s)")
do {
    let probe = try await RedisConnection.connect(to: address)
    let info = try await probe.send(["INFO", "server"]).string
    if let line = info.split(separator: "\r\n").first(where: { $0.hasPrefix("redis_version:") }) {
        print("server \(line)")
    }
    _ = try await probe.send(["DEL", list])

    // Unpipelined: one round trip per command.
    try await measure("SET", total: options.requests) { connection, count in
        for _ in 0..<count { _ = try await connection.send(setCommand) }
    }
    try await measure("GET", total: options.requests) { connection, count in
        for _ in 0..<count { _ = try await connection.send(getCommand) }
    }
    try await measure("LPUSH", total: options.requests) { connection, count in
        for _ in 0..<count { _ = try await connection.send(lpushCommand) }
    }

    // Pipelined x16: one round trip per 16 commands, like redis-benchmark -P 16.
    let depth = 16
    try await measure("SET (pipeline x16)", total: options.requests) { connection, count in
        let batch = Array(repeating: setCommand, count: depth)
        for _ in 0..<(count / depth) { _ = try await connection.pipeline(batch) }
    }
    try await measure("GET (pipeline x16)", total: options.requests) { connection, count in
        let batch = Array(repeating: getCommand, count: depth)
        for _ in 0..<(count / depth) { _ = try await connection.pipeline(batch) }
    }
    try await measure("LPUSH (pipeline x16)", total: options.requests) { connection, count in
        let batch = Array(repeating: lpushCommand, count: depth)
        for _ in 0..<(count / depth) { _ = try await connection.pipeline(batch) }
    }
    _ = try await probe.send(["DEL", list])

    // Queue round trip: a consumer blocked in BRPOP on its own connection,
    // a producer LPUSHing one element at a time; latency is from just before
    // the LPUSH until the consumer has the element.
    let consumer = try await RedisConnection.connect(to: address)
    let producer = try await RedisConnection.connect(to: address)
    let queue = "bench:queue"
    var latencies: [Duration] = []
    latencies.reserveCapacity(options.roundTrips)
    let start = clock.now
    for index in 0..<options.roundTrips {
        let popped = Task { try await consumer.blockingRightPop([queue], timeout: .seconds(5)) }
        let sent = clock.now
        try await producer.leftPush(queue, index)
        guard let element = try await popped.value, element.value == index.redisBytes else {
            print("round trip \(index) lost its element"); exit(1)
        }
        latencies.append(clock.now - sent)
    }
    let total = clock.now - start
    latencies.sort()
    func percentile(_ p: Double) -> Double {
        seconds(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) * 1e6
    }
    report("LPUSH+BRPOP round trip", operations: options.roundTrips, took: total)
    print(String(format: "    latency p50 %.0f us, p90 %.0f us, p99 %.0f us, max %.0f us",
                 percentile(0.5), percentile(0.9), percentile(0.99), percentile(1.0)))
    consumer.close()
    producer.close()
    probe.close()
} catch {
    print("redis-bench failed: \(error)")
    exit(1)
}

// The Python peer, on the same server, in the same run: redis-py doing the
// same operations on one connection. Figures to read side by side, not a
// race: both mostly wait for the server.
let peerScript = #"""
import sys, time, threading, redis
host, port, n, trips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
r = redis.Redis(host=host, port=port)
def report(name, ops, took):
    print(f"{name:<34}{ops / took:>12,.0f} ops/s  ({ops} in {took:.2f} s)")
t = time.perf_counter()
for _ in range(n): r.set("key:__rand_int__", "xxx")
report("redis-py SET", n, time.perf_counter() - t)
t = time.perf_counter()
for _ in range(n): r.get("key:__rand_int__")
report("redis-py GET", n, time.perf_counter() - t)
t = time.perf_counter()
for _ in range(0, n, 16):
    p = r.pipeline(transaction=False)
    for _ in range(16): p.set("key:__rand_int__", "xxx")
    p.execute()
report("redis-py SET, pipelined x16", n, time.perf_counter() - t)
consumer = redis.Redis(host=host, port=port)
got = threading.Event(); lat = []
def consume():
    for _ in range(trips):
        consumer.brpop("bench:pyqueue", timeout=5); lat.append(time.perf_counter() - sent[0]); got.set()
sent = [0.0]; worker = threading.Thread(target=consume); worker.start()
t = time.perf_counter()
for i in range(trips):
    got.clear(); sent[0] = time.perf_counter(); r.lpush("bench:pyqueue", i); got.wait(5)
took = time.perf_counter() - t; worker.join()
report("redis-py LPUSH+BRPOP round trip", trips, took)
lat.sort()
print(f"    latency p50 {lat[len(lat)//2]*1e6:.0f} us, p99 {lat[int(len(lat)*0.99)]*1e6:.0f} us")
"""#

/// `REDIS_PYTHON`, else the project's `.venv` (made by scripts/setup), found
/// by walking up from this executable.
func peerPython() -> String? {
    if let path = ProcessInfo.processInfo.environment["REDIS_PYTHON"] { return path }
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
    while directory.path != "/" {
        let candidate = directory.appendingPathComponent(".venv/bin/python").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory.deleteLastPathComponent()
    }
    return nil
}

if let python = peerPython() {
    print("redis-py on the same server (one connection):")
    fflush(nil)  // our lines first: print buffers when the output is a pipe
    let peer = Process()
    peer.executableURL = URL(fileURLWithPath: python)
    peer.arguments = ["-c", peerScript, options.host, String(options.port), String(min(options.requests, 20_000)), String(min(options.roundTrips, 5_000))]
    try? peer.run()
    peer.waitUntilExit()
    if peer.terminationStatus != 0 { print("(the redis-py run failed; is redis installed in \(python)? run scripts/setup)") }
} else {
    print("(no .venv/bin/python with redis-py: run scripts/setup to see the Python peer's figures)")
}
