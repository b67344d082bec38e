// jobs-bench: what the job queue (JobQueue + JobWorker, stage 5's jobs)
// gets out of Redis, beside python bullmq's Worker on the same redis-server
// in the same run, and beside what Redis itself allows. Figures are printed,
// not asserted.
//
//   swift run -c release jobs-bench [--port P] [--host H] [--jobs 20000]
//       [--warmup 1000] [--latency-jobs 1000] [--rate 250]
//       [--ceiling-jobs 5000] [--python PATH] [--no-python]
//
// Without --port it starts a redis-server of its own on a free loopback port
// (`--save '' --appendonly no`, as the tests do) and stops it at the end.
// Everything it writes is under the key prefix `jobs-bench:` in queues named
// after this run, and is deleted at the end (SCAN MATCH + DEL).
//
// Both workers run as processes of their own, started by the bench: ours is
// this program again (`--serve-worker`), python's is bullmq 3.4's Worker
// under .venv/bin/python. Both run the demo `sum` job (DemoJobs). The bench
// itself only adds jobs and measures, the same way for both. For each worker
// at concurrency 1 and 8, on a queue of its own:
//   throughput  the worker is idle and waiting; N jobs `sum` {"a": i, "b": 1}
//               (default options) are added by our JobQueue.addBulk (chunks
//               of 500, one pipeline each) while it works; jobs/s = N / (the
//               first add → the last job's finish time, its score in
//               `completed`). A warm-up of 1,000 jobs comes first.
//   latency     M jobs added one at a time (JobQueue.add) at a fixed rate R,
//               below every worker's capacity: the time from just before the
//               add to the job's `completed` event, as a client blocked in
//               XREAD on the queue's event stream sees it (what BullMQ's
//               QueueEvents does): p50, p99.
//   cost        during the throughput phase: scripts run per job (EVALSHA and
//               EVAL calls, the add's included) and Redis's time in them, from
//               INFO commandstats; CPU per job of redis-server (INFO cpu), of
//               the worker's process and of the bench (the producer).
// The ceiling: a trivial script (one INCR) run by EVALSHA three times per job
// (python's worker makes three script calls per job: the add, moveToActive,
// moveToFinished), one connection, one call at a time: jobs/s = calls/s / 3.
// Measured once at the start in four ways (also over 8 connections at once,
// pipelined 3 to a round trip, and by redis-benchmark -c 1 when it is on
// PATH), and again, one connection, right before each worker's run: the
// machine is shared, and the ratios are taken against the median of those
// five one-connection samples (the sample beside each run, and the
// 8-connection figure, are shown too). One connection, one call at a time,
// is a ping-pong: on an idle virtual machine each wake-up is slow, so it can
// come out lower on a quiet machine than on a busy one.

import Foundation
import Jobs
import Logging
import Redis
import Spawning

#if canImport(Glibc)
import Glibc
#endif

@main
struct JobsBench {
    static func main() async {
        let options = Options(CommandLine.arguments.dropFirst())
        if let queue = options.serveWorker {
            await serveWorker(options, queue: queue)
            return
        }
        let server: BenchServer
        do {
            server = try await BenchServer.obtain(options)
        } catch {
            print("jobs-bench: \(error)")
            exit(1)
        }
        var failed = false
        do {
            try await run(options, server: server)
        } catch {
            print("jobs-bench failed: \(error)")
            failed = true
        }
        await cleanUp(server.address)
        await server.stop()
        if failed { exit(1) }
    }

    static let prefix = "jobs-bench"
    static let runId = "r\(getpid())"
    static let clock = ContinuousClock()

    static func run(_ options: Options, server: BenchServer) async throws {
        let probe = try await RedisConnection.connect(to: server.address)
        defer { probe.close() }
        let info = try await probe.send(["INFO", "server"]).string
        let version = info.split(separator: "\r\n").first { $0.hasPrefix("redis_version:") }?.dropFirst(14) ?? "?"
        print("jobs-bench: redis \(version) at \(server.address)\(server.isOurs ? " (started by the bench)" : ""), "
              + "\(options.jobs) jobs per throughput run, latency \(options.latencyJobs) jobs at \(options.rate)/s; "
              + "load average \(loadAverage())")

        // 1. The ceiling, four ways.
        let ceiling = try await measureCeiling(options, address: server.address)

        // 2. The workers, each case on a fresh queue, each beside a fresh
        //    sample of the one-connection ceiling.
        var results: [CaseResult] = []
        for concurrency in [1, 8] {
            for implementation in options.python ? [Implementation.swift, .python] : [.swift] {
                let queueName = "\(runId)-\(implementation.rawValue)-c\(concurrency)"
                let beside = try await oneConnectionCeiling(server.address, jobs: options.ceilingJobs)
                let result = try await measureCase(
                    options, address: server.address, implementation: implementation, concurrency: concurrency,
                    queueName: queueName, ceiling: beside)
                results.append(result)
            }
        }

        // 3. The summary and the ratios, against the median of the run's
        //    one-connection ceiling samples (the machine is shared: single
        //    samples of a round-trip-bound figure swing by 2× within seconds).
        let samples = ([ceiling.oneConnection] + results.map(\.ceiling)).sorted()
        let median = samples[samples.count / 2]
        print("")
        print("summary (load average \(loadAverage())):")
        print("  worker                 conc.   jobs/s  latency p50    p99  scripts/job  redis µs/job (in scripts)"
              + "  worker µs/job  producer µs/job  ceiling beside")
        for result in results { print("  " + result.line) }
        print("  " + ceiling.summary)
        print("  ceiling samples, 1 connection: " + samples.map { format($0) }.joined(separator: ", ")
              + " jobs/s; median " + format(median))
        func find(_ implementation: Implementation, _ concurrency: Int) -> CaseResult? {
            results.first { $0.implementation == implementation && $0.concurrency == concurrency }
        }
        print("")
        print("ratios (targets: swift at concurrency 8 ≥ 3× python and ≥ 60 % of the ceiling):")
        for concurrency in [1, 8] {
            guard let swift = find(.swift, concurrency) else { continue }
            var line = "  concurrency \(concurrency): swift / ceiling (median, " + format(median) + "/s) = "
                + percent(swift.rate / median) + " (beside it: " + percent(swift.rate / swift.ceiling)
                + "; of 8 connections' " + format(ceiling.eightConnections) + "/s: "
                + percent(swift.rate / ceiling.eightConnections) + ")"
                + ", swift / 4,500 (infra.md's ceiling) = " + percent(swift.rate / 4_500)
            if let python = find(.python, concurrency) {
                line += String(format: ", swift / python = %.2f×", swift.rate / python.rate)
            }
            line += String(format: ", swift / 900 (infra.md's python) = %.2f×", swift.rate / 900)
            print(line)
        }
    }

    // MARK: The ceiling

    struct Ceiling {
        var oneConnection: Double
        var eightConnections: Double
        var pipelined: Double
        var redisBenchmark: Double?

        var summary: String {
            var text = "ceiling at the start, 3 EVALSHA (one INCR) per job: " + format(oneConnection)
                + " jobs/s on 1 connection, " + format(eightConnections) + " on 8, " + format(pipelined) + " pipelined ×3"
            if let redisBenchmark { text += ", redis-benchmark -c 1: " + format(redisBenchmark) }
            return text
        }
    }

    static let trivialScript = RedisScript("return redis.call('INCR', KEYS[1])")
    static var ceilingKey: String { "\(prefix):\(runId)-ceiling" }
    static var trivialCall: RedisCommand { RedisCommand(["EVALSHA", trivialScript.sha1, 1, ceilingKey]) }

    /// Jobs/s at three trivial EVALSHA per job, one connection, one call at a time.
    static func oneConnectionCeiling(_ address: RedisAddress, jobs: Int) async throws -> Double {
        let connection = try await RedisConnection.connect(to: address)
        defer { connection.close() }
        try await connection.load(trivialScript)
        let command = trivialCall
        for _ in 0..<500 { _ = try await connection.send(command) }
        let took = try await timed {
            for _ in 0..<(jobs * 3) { _ = try await connection.send(command) }
        }
        return Double(jobs) / seconds(took)
    }

    static func measureCeiling(_ options: Options, address: RedisAddress) async throws -> Ceiling {
        let calls = options.ceilingJobs * 3
        let command = trivialCall
        let connections = try await (0..<8).asyncMap { _ in try await RedisConnection.connect(to: address) }
        defer { for connection in connections { connection.close() } }
        try await connections[0].load(trivialScript)

        let one = try await oneConnectionCeiling(address, jobs: options.ceilingJobs)
        let eight = try await timed {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for connection in connections {
                    group.addTask { for _ in 0..<(calls / 8) { _ = try await connection.send(command) } }
                }
                try await group.waitForAll()
            }
        }
        let three = [command, command, command]
        let pipelined = try await timed {
            for _ in 0..<options.ceilingJobs { _ = try await connections[0].pipeline(three) }
        }
        let ceiling = Ceiling(
            oneConnection: one,
            eightConnections: Double(calls / 8 * 8) / 3 / seconds(eight),
            pipelined: Double(options.ceilingJobs) / seconds(pipelined),
            redisBenchmark: await redisBenchmark(address, calls: calls).map { $0 / 3 })
        print("")
        print("ceiling: EVALSHA of `return redis.call('INCR', KEYS[1])`, 3 calls per job")
        print("  1 connection, one call at a time     " + format(ceiling.oneConnection * 3, width: 9) + " calls/s = "
              + format(ceiling.oneConnection, width: 7) + " jobs/s")
        print("  8 connections at once                " + format(ceiling.eightConnections * 3, width: 9) + " calls/s = "
              + format(ceiling.eightConnections, width: 7) + " jobs/s")
        print("  1 connection, 3 calls per round trip " + format(ceiling.pipelined * 3, width: 9) + " calls/s = "
              + format(ceiling.pipelined, width: 7) + " jobs/s")
        if let rate = ceiling.redisBenchmark {
            print("  redis-benchmark -c 1 (C client)      " + format(rate * 3, width: 9) + " calls/s = "
                  + format(rate, width: 7) + " jobs/s")
        }
        return ceiling
    }

    /// redis-benchmark's own rate for the same EVALSHA, one connection; nil
    /// when it is not installed or its output is not understood.
    static func redisBenchmark(_ address: RedisAddress, calls: Int) async -> Double? {
        guard let executable = findExecutable("redis-benchmark"),
              let child = try? ChildProcess.start(executable, [
                  "-h", address.host, "-p", String(address.port), "-c", "1", "-n", String(calls), "--csv",
                  "EVALSHA", trivialScript.sha1, "1", ceilingKey,
              ], stdout: .pipe),
              let output = child.stdoutPipe
        else { return nil }
        let data = await onThread { output.readDataToEndOfFile() }
        await child.exitStatus()
        // --csv: a header line, then "\"EVALSHA …\",\"41152.26\",…".
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
            if fields.count > 1, let rate = Double(fields[1]) { return rate }
        }
        return nil
    }

    // MARK: One worker, one concurrency

    enum Implementation: String {
        case swift, python

        var label: String { self == .swift ? "swift JobWorker" : "python bullmq Worker" }
    }

    struct CaseResult {
        var implementation: Implementation
        var concurrency: Int
        var rate: Double
        var p50: Double
        var p99: Double
        var scriptsPerJob: Double
        var redisMicros: Double
        var scriptMicros: Double
        var workerMicros: Double
        var producerMicros: Double
        var ceiling: Double

        var line: String {
            implementation.label.padding(toLength: 22, withPad: " ", startingAt: 0) + String(format: "%5ld", concurrency)
                + format(rate, width: 9)
                + String(format: "  %7.2f ms %6.2f ms  %9.2f  %7.0f (%4.0f)          %9.0f  %15.0f", p50, p99,
                         scriptsPerJob, redisMicros, scriptMicros, workerMicros, producerMicros)
                + format(ceiling, width: 16)
        }
    }

    static func measureCase(
        _ options: Options, address: RedisAddress, implementation: Implementation, concurrency: Int,
        queueName: String, ceiling: Double
    ) async throws -> CaseResult {
        print("")
        print("\(implementation.label), concurrency \(concurrency), queue \(prefix):\(queueName); "
              + "ceiling beside it " + format(ceiling) + " jobs/s; load average \(loadAverage())")
        let client = RedisClient(address: address)
        let queue = JobQueue(name: queueName, client: client, prefix: prefix)
        let poller = try await RedisConnection.connect(to: address)
        defer { poller.close() }
        let base = "\(prefix):\(queueName):"
        func finished() async throws -> (completed: Int, failed: Int) {
            let replies = try await poller.pipeline([["ZCARD", base + "completed"], ["ZCARD", base + "failed"]])
            return (try replies[0].checked().int, try replies[1].checked().int)
        }
        /// Polls until `count` jobs are completed or failed.
        func waitFor(_ count: Int, within limit: Duration) async throws {
            let deadline = clock.now + limit
            while true {
                let (completed, failed) = try await finished()
                if completed + failed >= count { return }
                if clock.now > deadline {
                    throw BenchError("only \(completed) completed and \(failed) failed of \(count) within \(limit)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        func addInChunks(_ range: Range<Int>) async throws {
            for chunk in stride(from: range.lowerBound, to: range.upperBound, by: 500) {
                _ = try await queue.addBulk((chunk..<min(chunk + 500, range.upperBound)).map(sumJob))
            }
        }

        let worker: ChildWorker
        switch implementation {
        case .swift:
            worker = try await ChildWorker.start(
                ownExecutable(), ["--serve-worker", queueName, "--concurrency", String(concurrency),
                                  "--host", address.host, "--port", String(address.port)],
                what: "our worker")
        case .python:
            worker = try await ChildWorker.start(
                options.pythonPath, ["-c", pythonWorkerScript, "redis://\(address.host):\(address.port)", queueName,
                                     prefix, String(concurrency)],
                what: "python bullmq's worker (is bullmq installed in \(options.pythonPath)? run scripts/setup)")
        }
        do {
            // Warm-up: connections, script caches, code paths.
            try await addInChunks(0..<options.warmup)
            try await waitFor(options.warmup, within: .seconds(120))

            // Throughput: from the first add to the last job's finish time.
            let redisBefore = try await RedisStats.read(poller)
            let cpuBefore = (own: processCPU(), worker: worker.cpuSeconds())
            let startedAt = wallMilliseconds()
            let began = clock.now
            try await addInChunks(options.warmup..<(options.warmup + options.jobs))
            let added = clock.now - began
            try await waitFor(options.warmup + options.jobs, within: .seconds(max(120, options.jobs / 50)))
            let redisAfter = try await RedisStats.read(poller)
            let cpuAfter = (own: processCPU(), worker: worker.cpuSeconds())
            let last = try await poller.send(["ZREVRANGE", base + "completed", 0, 0, "WITHSCORES"]).elements
            let finishedAt = last.count == 2 ? Int(try last[1].double) : wallMilliseconds()
            let took = Double(max(finishedAt - startedAt, 1)) / 1000
            let rate = Double(options.jobs) / took
            let n = Double(options.jobs)
            let scripts = Double(redisAfter.scriptCalls - redisBefore.scriptCalls) / n
            let scriptMicros = Double(redisAfter.scriptMicros - redisBefore.scriptMicros) / n
            let redisMicros = (redisAfter.cpu - redisBefore.cpu) * 1e6 / n
            let producerMicros = (cpuAfter.own - cpuBefore.own) * 1e6 / n
            let workerMicros = ((cpuAfter.worker ?? 0) - (cpuBefore.worker ?? 0)) * 1e6 / n
            print("  throughput   " + format(rate, width: 8) + " jobs/s  (\(options.jobs) jobs in "
                  + String(format: "%.2f s; the adds alone took %.2f s)", took, seconds(added)))
            print(String(format: "  per job      %.2f scripts run (EVALSHA/EVAL, the add's included); redis-server CPU "
                         + "%.0f µs, %.0f µs of it in scripts; worker process CPU %.0f µs; bench (producer) CPU %.0f µs",
                         scripts, redisMicros, scriptMicros, workerMicros, producerMicros))

            // Latency, paced.
            let latencies = try await measureLatency(options, address: address, queue: queue, base: base)
            let p50 = percentile(latencies, 0.50), p99 = percentile(latencies, 0.99)
            print(String(format: "  latency      add → completed event p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms "
                         + "(%ld jobs at %ld/s)",
                         p50, percentile(latencies, 0.90), p99, percentile(latencies, 1.0), latencies.count, options.rate))

            let (_, failed) = try await finished()
            if failed > 0 { print("  (\(failed) jobs failed: the figures above are suspect)") }
            await worker.stop()
            await client.close()
            return CaseResult(
                implementation: implementation, concurrency: concurrency, rate: rate, p50: p50, p99: p99,
                scriptsPerJob: scripts, redisMicros: redisMicros, scriptMicros: scriptMicros,
                workerMicros: workerMicros, producerMicros: producerMicros, ceiling: ceiling)
        } catch {
            await worker.stop()
            await client.close()
            throw error
        }
    }

    static func sumJob(_ index: Int) -> NewJob {
        NewJob(name: "sum", data: "{\"a\":\(index),\"b\":1}")
    }

    /// Adds `latencyJobs` jobs one at a time at `rate` per second; answers
    /// each one's time from just before its add to its `completed` event
    /// (milliseconds, sorted).
    static func measureLatency(
        _ options: Options, address: RedisAddress, queue: JobQueue, base: String
    ) async throws -> [Double] {
        let stream = base + "events"
        let listener = try await RedisConnection.connect(to: address)
        defer { listener.close() }
        let last = try await listener.send(["XREVRANGE", stream, "+", "-", "COUNT", 1]).elements
        let startId = try last.first.map { try $0.elements[0].string } ?? "0-0"
        let total = options.latencyJobs
        let seen = Task { () throws -> [String: ContinuousClock.Instant] in
            var lastId = startId
            var seen: [String: ContinuousClock.Instant] = [:]
            let deadline = clock.now + .seconds(Double(total) / Double(options.rate) + 30)
            while seen.count < total && clock.now < deadline {
                let reply = try await listener.sendBlocking(
                    ["XREAD", "COUNT", 1000, "BLOCK", 200, "STREAMS", stream, lastId], serverTimeout: .milliseconds(200))
                let now = clock.now
                guard let streams = try reply.optionalElements else { continue }
                for entry in try streams.first?.elements[1].elements ?? [] {
                    let parts = try entry.elements
                    lastId = try parts[0].string
                    let fields = try parts[1].elements.map { try $0.string }
                    var index = 0
                    var event = "", jobId = ""
                    while index + 1 < fields.count {
                        if fields[index] == "event" { event = fields[index + 1] }
                        if fields[index] == "jobId" { jobId = fields[index + 1] }
                        index += 2
                    }
                    if event == "completed" { seen[jobId] = now }
                }
            }
            return seen
        }
        var sent: [String: ContinuousClock.Instant] = [:]
        let interval = Duration.seconds(1) / options.rate
        let start = clock.now + .milliseconds(50)
        for index in 0..<total {
            try await clock.sleep(until: start + interval * index)
            let now = clock.now
            sent[try await queue.add(sumJob(index))] = now
        }
        let received = try await seen.value
        var latencies: [Double] = []
        for (id, sentAt) in sent {
            if let at = received[id] { latencies.append(seconds(at - sentAt) * 1000) }
        }
        if latencies.count < total { print("  (only \(latencies.count) of \(total) completions seen)") }
        return latencies.sorted()
    }

    // MARK: The workers

    /// `jobs-bench --serve-worker QUEUE --concurrency C --port P`: our
    /// JobWorker on the demo jobs, in a process of its own like python's.
    /// Says "ready" once started; a line on stdin (or its end) stops it.
    static func serveWorker(_ options: Options, queue: String) async {
        var logger = Logger(label: "jobs-bench-worker")
        logger.logLevel = .warning
        let worker = JobWorker(
            queue: queue, address: RedisAddress(host: options.host, port: options.port ?? 6379), prefix: prefix,
            concurrency: options.concurrency, logger: logger
        ) { job in try DemoJobs.run(job) }
        let running = Task { try await worker.run() }
        try? await Task.sleep(for: .milliseconds(300))
        print("ready")
        _ = await onThread { readLine() }
        running.cancel()
        _ = try? await running.value
    }

    /// The demo jobs as python bullmq runs them in the tests
    /// (Tests/JobsTests/Support.swift): the same contract, `by: "python"`.
    static let pythonWorkerScript = #"""
    import asyncio, sys
    from bullmq import Worker
    url, queue_name, prefix, concurrency = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

    async def demo(job, token):
        if job.name == "sum":
            if job.attemptsMade < job.data.get("failTimes", 0):
                raise Exception(f"planned failure {job.attemptsMade + 1}")
            return {"sum": job.data["a"] + job.data["b"], "by": "python"}
        if job.name == "fail":
            raise Exception(job.data["reason"])
        raise Exception("unknown demo job " + job.name)

    async def main():
        worker = Worker(queue_name, demo, {"connection": url, "prefix": prefix, "concurrency": concurrency})
        await asyncio.sleep(0.5)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await worker.close()

    asyncio.run(main())
    """#

    // MARK: Cleaning up

    /// Deletes every key of this run (SCAN MATCH, then DEL in batches).
    static func cleanUp(_ address: RedisAddress) async {
        do {
            let connection = try await RedisConnection.connect(to: address)
            defer { connection.close() }
            var cursor = "0", deleted = 0
            repeat {
                let reply = try await connection.send(["SCAN", cursor, "MATCH", "\(prefix):\(runId)-*", "COUNT", 1000]).elements
                cursor = try reply[0].string
                let keys = try reply[1].elements.map { try $0.string }
                if !keys.isEmpty {
                    deleted += try await connection.send(RedisCommand(["DEL"] + keys)).int
                }
            } while cursor != "0"
            print("")
            print("cleaned up: \(deleted) keys under \(prefix):\(runId)-*")
        } catch {
            print("could not delete the keys under \(prefix):\(runId)-*: \(error)")
        }
    }
}

/// A worker in a process of its own: started, told to stop through stdin,
/// its CPU time read from /proc.
struct ChildWorker: Sendable {
    let child: ChildProcess

    /// Returns once the worker says "ready" (well under a second).
    static func start(_ executable: String, _ arguments: [String], what: String) async throws -> ChildWorker {
        let child = try ChildProcess.start(executable, arguments, stdin: .pipe, stdout: .pipe, stderr: .inherit)
        let output = child.stdoutPipe!
        let line = await onThread { output.availableData }
        guard String(decoding: line, as: UTF8.self).hasPrefix("ready") else {
            let status = await child.terminate(grace: .seconds(2))
            throw BenchError("\(what) did not start (status \(status))")
        }
        return ChildWorker(child: child)
    }

    /// A line on its stdin: the worker closes (finishing what it runs) and exits.
    func stop() async {
        child.stdinPipe?.write(Data("stop\n".utf8))
        let stopper = Task {
            try await Task.sleep(for: .seconds(30))
            child.send(SIGKILL)
        }
        await child.exitStatus()
        stopper.cancel()
    }

    func cpuSeconds() -> Double? { cpuSecondsOf(pid: child.pid) }
}

/// This program's own path, to start it again as a worker.
func ownExecutable() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}

// MARK: - The server

struct BenchServer: Sendable {
    let address: RedisAddress
    /// The pid file of the server we started; nil for one we were given.
    let pidFile: String?

    var isOurs: Bool { pidFile != nil }

    static func obtain(_ options: Options) async throws -> BenchServer {
        if let port = options.port {
            return BenchServer(address: RedisAddress(host: options.host, port: port), pidFile: nil)
        }
        guard let executable = findExecutable("redis-server") else {
            throw BenchError("redis-server is not on PATH (apt-get install redis-server), and no --port was given")
        }
        let port = try freeLoopbackPort()
        let pidFile = "\(NSTemporaryDirectory())jobs-bench-\(port).pid"
        // ChildProcess, not Foundation's Process: the server daemonizes, and
        // it must start with no signals blocked so SIGTERM stops it (see
        // Spawning's ChildProcess).
        let starter = try ChildProcess.start(executable, [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "yes", "--pidfile", pidFile, "--logfile", "\(NSTemporaryDirectory())jobs-bench-\(port).log",
        ])
        let status = await starter.exitStatus()
        guard status == 0 else { throw BenchError("redis-server exited with \(status) starting on port \(port)") }
        let server = BenchServer(address: RedisAddress(host: "127.0.0.1", port: port), pidFile: pidFile)
        for _ in 0..<200 {
            if let connection = try? await RedisConnection.connect(to: server.address) {
                let answer = try? await connection.ping()
                connection.close()
                if answer == "PONG" { return server }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        await server.stop()
        throw BenchError("redis-server on port \(port) did not answer")
    }

    func stop() async {
        guard let pidFile, let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        kill(pid, SIGTERM)
        var tries = 0
        while kill(pid, 0) == 0 && tries < 200 {
            try? await Task.sleep(for: .milliseconds(50))
            tries += 1
        }
        try? FileManager.default.removeItem(atPath: pidFile)
        try? FileManager.default.removeItem(atPath: pidFile.replacingOccurrences(of: ".pid", with: ".log"))
    }
}

// MARK: - Redis's own counters

struct RedisStats {
    /// used_cpu_user + used_cpu_sys, seconds.
    var cpu: Double
    /// EVALSHA + EVAL calls.
    var scriptCalls: Int
    /// Microseconds Redis spent running them (commands they call included).
    var scriptMicros: Int

    static func read(_ connection: RedisConnection) async throws -> RedisStats {
        let text = try await connection.send(["INFO", "all"]).string
        var stats = RedisStats(cpu: 0, scriptCalls: 0, scriptMicros: 0)
        for line in text.split(separator: "\r\n") {
            if line.hasPrefix("used_cpu_user:") || line.hasPrefix("used_cpu_sys:") {
                stats.cpu += Double(line.split(separator: ":")[1]) ?? 0
            } else if line.hasPrefix("cmdstat_evalsha:") || line.hasPrefix("cmdstat_eval:") {
                // cmdstat_evalsha:calls=123,usec=4567,usec_per_call=…
                for field in line.split(separator: ":")[1].split(separator: ",") {
                    let pair = field.split(separator: "=")
                    guard pair.count == 2, let value = Int(pair[1]) else { continue }
                    if pair[0] == "calls" { stats.scriptCalls += value }
                    if pair[0] == "usec" { stats.scriptMicros += value }
                }
            }
        }
        return stats
    }
}

// MARK: - Options and helpers

struct Options {
    var host = "127.0.0.1"
    var port: Int?
    var jobs = 20_000
    var warmup = 1_000
    var latencyJobs = 1_000
    var rate = 250
    var ceilingJobs = 5_000
    var python = true
    var pythonPath = ProcessInfo.processInfo.environment["BULLMQ_PYTHON"] ?? Options.defaultPython
    /// Internal: run as the worker of this queue (see `serveWorker`).
    var serveWorker: String?
    var concurrency = 1

    /// The project's .venv (made by scripts/setup), found by walking up from
    /// the working directory.
    static var defaultPython: String {
        var directory = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(".venv/bin/python").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return "python3"
    }

    init(_ arguments: ArraySlice<String>) {
        var iterator = arguments.makeIterator()
        func number(_ flag: String) -> Int {
            guard let value = iterator.next().flatMap(Int.init), value > 0 else { Self.usage("\(flag) needs a positive number") }
            return value
        }
        while let argument = iterator.next() {
            switch argument {
            case "--host": host = iterator.next() ?? host
            case "--port": port = number(argument)
            case "--jobs", "-n": jobs = number(argument)
            case "--warmup": warmup = number(argument)
            case "--latency-jobs": latencyJobs = number(argument)
            case "--rate": rate = number(argument)
            case "--ceiling-jobs": ceilingJobs = number(argument)
            case "--python": pythonPath = iterator.next() ?? pythonPath
            case "--no-python": python = false
            case "--serve-worker": serveWorker = iterator.next()
            case "--concurrency": concurrency = number(argument)
            default: Self.usage("unknown option \(argument)")
            }
        }
    }

    static func usage(_ problem: String) -> Never {
        print("jobs-bench: \(problem)")
        print("usage: jobs-bench [--port P] [--host H] [--jobs N] [--warmup N] [--latency-jobs N] [--rate PER_SECOND]"
              + " [--ceiling-jobs N] [--python PATH] [--no-python]")
        exit(2)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Each line out at once, also into a pipe (print alone buffers there), so
/// progress shows, and the worker's "ready" reaches the bench.
func print(_ line: String) {
    Swift.print(line)
    fflush(nil)
}

func seconds(_ duration: Duration) -> Double {
    let (whole, fraction) = duration.components
    return Double(whole) + Double(fraction) / 1e18
}

func timed(_ body: () async throws -> Void) async throws -> Duration {
    let start = ContinuousClock.now
    try await body()
    return ContinuousClock.now - start
}

/// Of sorted values; 1.0 is the maximum.
func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
}

func format(_ value: Double, width: Int = 0) -> String {
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.maximumFractionDigits = 0
    let text = formatter.string(from: NSNumber(value: value.isFinite ? value.rounded() : 0)) ?? "\(value)"
    return String(repeating: " ", count: max(0, width - text.count)) + text
}

func percent(_ ratio: Double) -> String { String(format: "%.0f %%", ratio * 100) }

/// Milliseconds since 1970, the clock BullMQ's timestamps use.
func wallMilliseconds() -> Int { Int((Date().timeIntervalSince1970 * 1000).rounded()) }

func loadAverage() -> String {
    let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
    return text.split(separator: " ").prefix(3).joined(separator: " ")
}

/// This process's CPU time (user + system), seconds.
func processCPU() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// Another process's CPU time (user + system) from /proc, seconds.
func cpuSecondsOf(pid: Int32) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return nil }
    // After "(comm)" comes field 3 (the state); utime and stime are fields 14 and 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// Runs a blocking call on a thread of its own, not on the cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

func findExecutable(_ name: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") + ["/usr/bin", "/usr/sbin"] {
        let candidate = "\(directory)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// A port nobody listens on now, found by letting the kernel pick one.
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
            bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
        }
    }
    guard bound else { throw BenchError("could not bind a loopback port") }
    return Int(UInt16(bigEndian: address.sin_port))
}

extension Range where Bound == Int {
    func asyncMap<T>(_ transform: (Int) async throws -> T) async throws -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
