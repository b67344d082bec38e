import Foundation
import Jobs
import Redis
import RedisTestSupport
import TestSupport
import Testing

/// Python bullmq 3.4.4 on one side, ours on the other, one queue in one
/// Redis: each side runs what the other adds and reads what the other wrote.
@Suite(.serialized, .redisServer)
struct InteropTests {
    /// The demo jobs of every kind, as python bullmq adds them; prints the ids by kind.
    static let pythonAdds = """
    async def add_all(queue):
        ids = {}
        ids["plain"] = (await queue.add("sum", {"a": 1, "b": 2})).id
        ids["delayed"] = (await queue.add("sum", {"a": 2, "b": 3}, {"delay": 700})).id
        ids["prioritized"] = (await queue.add("sum", {"a": 3, "b": 4}, {"priority": 3})).id
        ids["fixed"] = (await queue.add("sum", {"a": 1, "b": 1, "failTimes": 2},
            {"attempts": 3, "backoff": {"type": "fixed", "delay": 100}})).id
        ids["exponential"] = (await queue.add("sum", {"a": 2, "b": 2, "failTimes": 2},
            {"attempts": 3, "backoff": {"type": "exponential", "delay": 100}})).id
        ids["exhausted"] = (await queue.add("fail", {"reason": "boom"}, {"attempts": 2})).id
        ids["custom"] = (await queue.add("sum", {"a": 5, "b": 5}, {"jobId": "order-42"})).id
        ids["duplicate"] = (await queue.add("sum", {"a": 6, "b": 6}, {"jobId": "order-42"})).id
        return ids
    """

    /// Python reads each job back: state, attempts, return value, failed reason.
    static let pythonReads = """
    async def read_all(queue, ids):
        out = {}
        for kind, job_id in ids.items():
            job = await Job.fromId(queue, job_id)
            out[kind] = {"state": await job.getState(), "attemptsMade": job.attemptsMade,
                         "returnvalue": job.returnvalue, "failedReason": job.failedReason,
                         "data": job.data, "delayWaited": job.processedOn - job.timestamp}
        return out
    """

    @Test func swiftWorkerRunsWhatPythonAdds() async throws {
        let name = uniqueQueue()
        let added = try await python(Self.pythonAdds + "\n" + """
        async def main():
            queue = Queue(queue_name, {"connection": url})
            ids = await add_all(queue)
            await queue.close()
            print(json.dumps(ids))
        asyncio.run(main())
        """, queue: name)
        #expect(added["custom"] as? String == "order-42")
        #expect(added["duplicate"] as? String == "order-42", "a second add of a custom id answers the same id")

        let queue = try makeQueue(name)
        try await withWorker(try demoWorker(name, concurrency: 2)) {
            try await waitForCounts(queue, "six completed and one failed") { $0.completed == 6 && $0.failed == 1 }
        }

        let ids = try #require(added as? [String: String])
        let read = try await python(Self.pythonReads + "\n" + """
        async def main():
            queue = Queue(queue_name, {"connection": url})
            out = await read_all(queue, json.loads(sys.argv[2]))
            out["events"] = await event_names()
            counts = await queue.getJobCounts("completed", "failed", "wait", "delayed", "active")
            out["counts"] = counts
            await queue.close()
            print(json.dumps(out))
        asyncio.run(main())
        """, queue: name, extraArguments: [String(decoding: try JSONEncoder().encode(ids), as: UTF8.self)])

        func outcome(_ kind: String) throws -> [String: Any] { try #require(read[kind] as? [String: Any]) }
        for kind in ["plain", "delayed", "prioritized", "fixed", "exponential", "custom"] {
            #expect(try outcome(kind)["state"] as? String == "completed", "\(kind)")
            #expect((try outcome(kind)["returnvalue"] as? [String: Any])?["by"] as? String == "swift", "\(kind)")
        }
        #expect((try outcome("plain")["returnvalue"] as? [String: Any])?["sum"] as? Int == 3)
        #expect((try outcome("custom")["returnvalue"] as? [String: Any])?["sum"] as? Int == 10, "the first add's data won")
        #expect(try outcome("delayed")["delayWaited"] as? Int ?? 0 >= 700)
        #expect(try outcome("fixed")["attemptsMade"] as? Int == 3)
        #expect(try outcome("exponential")["attemptsMade"] as? Int == 3)
        #expect(try outcome("exhausted")["state"] as? String == "failed")
        #expect(try outcome("exhausted")["failedReason"] as? String == "boom")
        #expect(try outcome("exhausted")["attemptsMade"] as? Int == 2)
        let events = Set(read["events"] as? [String] ?? [])
        for event in ["added", "waiting", "delayed", "active", "completed", "failed", "retries-exhausted", "drained", "duplicated"] {
            #expect(events.contains(event), "event \(event) in \(events.sorted())")
        }
        let counts = try #require(read["counts"] as? [String: Int])
        #expect(counts == ["completed": 6, "failed": 1, "wait": 0, "delayed": 0, "active": 0])
    }

    @Test func pythonWorkerRunsWhatSwiftAdds() async throws {
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        var ids: [String: String] = [:]
        ids["plain"] = try await queue.add(name: "sum", payload: ["a": 1, "b": 2])
        ids["delayed"] = try await queue.add(name: "sum", payload: ["a": 2, "b": 3], options: JobOptions(delay: .milliseconds(700)))
        ids["prioritized"] = try await queue.add(name: "sum", payload: ["a": 3, "b": 4], options: JobOptions(priority: 3))
        ids["fixed"] = try await queue.add(name: "sum", payload: ["a": 1, "b": 1, "failTimes": 2],
                                           options: JobOptions(attempts: 3, backoff: .fixed(milliseconds: 100)))
        ids["exponential"] = try await queue.add(name: "sum", payload: ["a": 2, "b": 2, "failTimes": 2],
                                                 options: JobOptions(attempts: 3, backoff: .exponential(milliseconds: 100)))
        ids["exhausted"] = try await queue.add(name: "fail", payload: ["reason": "boom"], options: JobOptions(attempts: 2))
        ids["custom"] = try await queue.add(name: "sum", payload: ["a": 5, "b": 5], options: JobOptions(jobId: "order-42"))
        let duplicate = try await queue.add(name: "sum", payload: ["a": 6, "b": 6], options: JobOptions(jobId: "order-42"))
        #expect(duplicate == "order-42")
        #expect(try await queue.counts().waiting + (try await queue.counts().prioritized) == 6)

        let ran = try await python("""
        asyncio.run(work_until(lambda counts: counts["completed"] == 6 and counts["failed"] == 1))
        """, queue: name)
        #expect(ran["completed"] as? Int == 6 && ran["failed"] as? Int == 1, "python's worker finished: \(ran)")

        for kind in ["plain", "delayed", "prioritized", "fixed", "exponential", "custom"] {
            let id = try #require(ids[kind])
            let job = try #require(try await queue.job(id: id), "\(kind)")
            #expect(try await queue.state(of: job.id) == .completed, "\(kind)")
            let result = try JSONDecoder().decode(DemoJobs.Result.self, from: Data(try #require(job.returnValue).utf8))
            #expect(result.by == "python", "\(kind)")
        }
        let plain = try #require(try await queue.job(id: ids["plain"]!))
        #expect(try JSONDecoder().decode(DemoJobs.Result.self, from: Data(plain.returnValue!.utf8)).sum == 3)
        let delayed = try #require(try await queue.job(id: ids["delayed"]!))
        #expect(try #require(delayed.processedOn).timeIntervalSince(delayed.timestamp) >= 0.7)
        #expect(try await queue.job(id: ids["fixed"]!)?.attemptsMade == 3)
        #expect(try await queue.job(id: ids["exponential"]!)?.attemptsMade == 3)
        let exhausted = try #require(try await queue.job(id: ids["exhausted"]!))
        #expect(try await queue.state(of: exhausted.id) == .failed)
        #expect(exhausted.failedReason == "boom")
        #expect(exhausted.attemptsMade == 2)
        #expect(exhausted.stacktrace.count == 2, "one entry per failed attempt: \(exhausted.stacktrace)")
    }

    @Test func pythonListsASwiftSchedulerAndTheWorkerMakesItsJobsOnTime() async throws {
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        try await queue.upsertScheduler(id: "tick", every: .milliseconds(400),
                                        job: try NewJob(name: "sum", payload: ["a": 1, "b": 1]))
        let listed = try await python("""
        async def main():
            queue = Queue(queue_name, {"connection": url})
            schedulers = await queue.getJobSchedulers()
            await queue.close()
            print(json.dumps({"schedulers": schedulers}))
        asyncio.run(main())
        """, queue: name)
        let schedulers = try #require(listed["schedulers"] as? [[String: Any]])
        #expect(schedulers.count == 1)
        #expect(schedulers.first?["key"] as? String == "tick")
        #expect(schedulers.first?["name"] as? String == "sum")
        #expect(schedulers.first?["every"] as? Int == 400)
        #expect(try await queue.schedulers().map(\.id) == ["tick"])

        try await withWorker(try demoWorker(name)) {
            try await waitForCounts(queue, "four scheduled jobs completed") { $0.completed >= 4 }
        }
        let done = try await queue.jobs(in: .completed, limit: 10)
        #expect(done.allSatisfy { $0.id.hasPrefix("repeat:tick:") && $0.schedulerId == "tick" })
        // Each job's slot is in its id: slots fall on multiples of `every`,
        // and each ran no earlier than its slot. A worker that is late (a
        // loaded machine) skips the slots that have passed rather than
        // running them all at once, as BullMQ's schedulers do: so two jobs
        // are a whole number of periods apart, not always one.
        let slots = done.compactMap { Int($0.id.split(separator: ":").last ?? "") }.sorted()
        #expect(zip(slots, slots.dropFirst()).allSatisfy { $1 > $0 && ($1 - $0) % 400 == 0 }, "slots \(slots)")
        for job in done {
            let slot = Double(Int(job.id.split(separator: ":").last!)!) / 1000
            #expect(try #require(job.processedOn).timeIntervalSince1970 >= slot - 0.001, "\(job.id) ran before its slot")
        }
        #expect(try await queue.schedulers().first?.iterationCount ?? 0 >= 4)
        try await queue.removeScheduler(id: "tick")
        #expect(try await queue.schedulers().isEmpty)
        #expect(try await queue.counts().delayed == 0, "the scheduler's pending job went with it")
    }

    @Test func pythonWorkerKeepsASwiftSchedulerGoing() async throws {
        // Python's worker makes the next job itself (updateJobScheduler) from
        // the `repeat` block of our job's opts: that block must be BullMQ's.
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        try await queue.upsertScheduler(id: "beat", every: .milliseconds(300),
                                        job: try NewJob(name: "sum", payload: ["a": 2, "b": 2]))
        let ran = try await python("""
        asyncio.run(work_until(lambda counts: counts["completed"] >= 3))
        """, queue: name)
        #expect(ran["completed"] as? Int ?? 0 >= 3, "python ran \(ran)")
        let done = try await queue.jobs(in: .completed, limit: 10)
        #expect(done.allSatisfy { $0.id.hasPrefix("repeat:beat:") })
        #expect(try await queue.schedulers().first?.iterationCount ?? 0 >= 3)
    }
}
