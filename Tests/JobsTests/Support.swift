import Foundation
import Jobs
import Logging
import Redis
import RedisTestSupport
import TestSupport
import Testing

/// A queue name no other test uses, so tests share the suite's server
/// without clearing it.
func uniqueQueue(_ name: String = #function) -> String {
    "\(name.prefix(while: { $0 != "(" }))-\(UInt32.random(in: 0...UInt32.max))"
}

func makeQueue(_ name: String) throws -> JobQueue {
    JobQueue(name: name, client: RedisClient(address: try currentServer().address))
}

let testLogger: Logger = {
    var logger = Logger(label: "jobs-test")
    logger.logLevel = .warning
    return logger
}()

/// Runs a worker while `body` runs, then stops it as a shutdown would (the
/// run task's cancellation starts the same graceful stop) and waits for it.
@discardableResult
func withWorker<T>(
    _ worker: JobWorker, _ body: () async throws -> T
) async throws -> T {
    let running = Task { try await worker.run() }
    do {
        let result = try await body()
        running.cancel()
        try await running.value
        return result
    } catch {
        running.cancel()
        _ = try? await running.value
        throw error
    }
}

/// A worker running the demo jobs (DemoJobs), fast timings for tests.
func demoWorker(
    _ queue: String, concurrency: Int = 1, lockDuration: Duration = .seconds(5),
    stalledInterval: Duration = .seconds(5), process: JobWorker.Process? = nil
) throws -> JobWorker {
    JobWorker(
        queue: queue, address: try currentServer().address, concurrency: concurrency, lockDuration: lockDuration,
        stalledInterval: stalledInterval, shutdownGracePeriod: .seconds(5), logger: testLogger,
        process: process ?? { job in try DemoJobs.run(job) })
}

/// Waits until the queue's counts satisfy `condition`.
@discardableResult
func waitForCounts(
    _ queue: JobQueue, _ what: String, within: Duration = .seconds(20), _ condition: @escaping @Sendable (JobCounts) -> Bool
) async throws -> JobCounts {
    try await Poll.until(what, within: within) {
        let counts = try await queue.counts()
        return condition(counts) ? counts : nil
    }
}

/// Python bullmq against the suite's server: `script` runs after a prelude
/// that defines `url` (the server), `queue_name` (argv[1]), `demo` (the demo
/// job contract, by "python"), and imports asyncio, json, bullmq and redis.
func python(
    _ script: String, queue: String, extraArguments: [String] = [], timeout: Duration = .seconds(60)
) async throws -> [String: Any] {
    let port = try currentServer().port
    let prelude = """
    import asyncio, json, sys, time
    import redis.asyncio as aioredis
    from bullmq import Queue, Worker, Job
    url = "redis://127.0.0.1:\(port)"
    queue_name = sys.argv[1]

    async def demo(job, token):
        if job.name == "sum":
            if job.attemptsMade < job.data.get("failTimes", 0):
                raise Exception(f"planned failure {job.attemptsMade + 1}")
            return {"sum": job.data["a"] + job.data["b"], "by": "python"}
        if job.name == "fail":
            raise Exception(job.data["reason"])
        raise Exception("unknown demo job " + job.name)

    # Runs python's Worker on the demo jobs until done(counts) or the deadline;
    # prints the last counts.
    async def work_until(done, seconds=30):
        queue = Queue(queue_name, {"connection": url})
        worker = Worker(queue_name, demo, {"connection": url, "concurrency": 2})
        deadline = time.time() + seconds
        while time.time() < deadline:
            counts = await queue.getJobCounts("completed", "failed")
            if done(counts):
                break
            await asyncio.sleep(0.05)
        await worker.close()
        await queue.close()
        print(json.dumps(counts))

    async def event_names():
        r = aioredis.from_url(url)
        entries = await r.xrange(f"bull:{queue_name}:events")
        await r.aclose()
        return sorted({fields[b"event"].decode() for _, fields in entries})

    """
    return try await PythonPeer.runJSON(prelude + script, arguments: [queue] + extraArguments, timeout: timeout)
}

