import Foundation
import Jobs
import Messaging
import Redis
import RedisTestSupport
import Synchronization
import TestSupport
import Testing

/// The queue's own behaviour against a real Redis: counts and listings,
/// retry, pause, the rate limit, stalled jobs.
@Suite(.serialized, .redisServer)
struct QueueTests {
    @Test func countsAndListingsNewestFirst() async throws {
        let queue = try makeQueue(uniqueQueue())
        let first = try await queue.add(name: "sum", payload: ["a": 1, "b": 1])
        let second = try await queue.add(name: "sum", payload: ["a": 2, "b": 2])
        _ = try await queue.add(name: "sum", payload: ["a": 3, "b": 3], options: JobOptions(delay: .seconds(60)))
        _ = try await queue.add(name: "sum", payload: ["a": 4, "b": 4], options: JobOptions(priority: 1))
        let bulk = try await queue.addBulk([
            try NewJob(name: "sum", payload: ["a": 5, "b": 5]), try NewJob(name: "sum", payload: ["a": 6, "b": 6]),
        ])
        #expect(bulk.count == 2)
        #expect(try await queue.counts() == JobCounts(waiting: 4, delayed: 1, prioritized: 1))
        #expect(try await queue.jobs(in: .waiting).map(\.id) == bulk.reversed() + [second, first])
        let delayed = try #require(try await queue.jobs(in: .delayed).first)
        #expect(try #require(delayed.delayUntil).timeIntervalSinceNow > 55)
        #expect(try await queue.state(of: first) == .waiting)
        #expect(try await queue.state(of: "no-such-job") == .unknown)
    }

    @Test func aRetriedFailedJobWaitsAgainThenCompletes() async throws {
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        let id = try await queue.add(name: "sum", payload: ["a": 2, "b": 3, "failTimes": 1])
        try await withWorker(try demoWorker(name)) {
            try await waitForCounts(queue, "the job failed") { $0.failed == 1 }
        }
        await #expect(throws: JobError.self) { try await queue.retry(id: "no-such-job") }
        let retried = try await queue.retry(id: id)
        #expect(retried.attemptsMade == 1, "attempts are kept")
        #expect(try await queue.state(of: id) == .waiting)
        await #expect(throws: JobError.notFailed(id: id, state: .waiting)) { try await queue.retry(id: id) }
        try await withWorker(try demoWorker(name)) {
            try await waitForCounts(queue, "the retried job completed") { $0.completed == 1 }
        }
        let job = try #require(try await queue.job(id: id))
        #expect(job.attemptsMade == 2)
        #expect(try job.payload(as: DemoJobs.Sum.self).a == 2)
        #expect(try JSONDecoder().decode(DemoJobs.Result.self, from: Data(job.returnValue!.utf8)).sum == 5)
    }

    @Test func aPausedQueueKeepsItsJobsUntilResumed() async throws {
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        try await queue.pause()
        let id = try await queue.add(name: "sum", payload: ["a": 1, "b": 2])
        try await withWorker(try demoWorker(name)) {
            // The worker is up and blocked on the marker; the job must stay put
            // while paused. Ask the server that the worker is waiting, then check.
            let redis = RedisClient(address: try currentServer().address)
            try await Poll.until("the worker blocks on the marker", within: .seconds(10)) {
                try await redis.send(["CLIENT", "LIST"]).string.contains("cmd=bzpopmin") ? true : nil
            }
            #expect(try await queue.counts() == JobCounts(paused: 1))
            #expect(try await queue.state(of: id) == .paused)
            try await queue.resume()
            try await waitForCounts(queue, "the job completed after resume") { $0.completed == 1 }
        }
    }

    @Test func theRateLimitHoldsAcrossTheQueue() async throws {
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        try await queue.setRateLimit(max: 2, per: .milliseconds(500))
        _ = try await queue.addBulk((1...6).map { try NewJob(name: "sum", payload: ["a": $0, "b": 0]) })
        let started = Mutex<[ContinuousClock.Instant]>([])
        let worker = try demoWorker(name, concurrency: 4) { job in
            started.withLock { $0.append(.now) }
            return try DemoJobs.run(job)
        }
        try await withWorker(worker) {
            try await waitForCounts(queue, "all six completed") { $0.completed == 6 }
        }
        let times = started.withLock { $0 }.sorted()
        #expect(times.count == 6)
        // Any three starts span at least one window: never 3 in 500 ms.
        for index in 2..<times.count {
            #expect(times[index] - times[index - 2] >= .milliseconds(450), "starts \(index - 2)…\(index) too close")
        }
        #expect(times[5] - times[0] >= .milliseconds(900), "6 jobs at 2 per 500 ms take two windows at least")
    }

    @Test func aJobWhoseLockExpiredIsRecoveredByAnotherWorker() async throws {
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        let id = try await queue.add(name: "sum", payload: ["a": 20, "b": 22])
        // A worker that takes the job and dies: what it leaves behind is the
        // job in `active` with a lock that expires (written here directly).
        let redis = RedisClient(address: try currentServer().address)
        let moved = try await redis.send(["RPOPLPUSH", "bull:\(name):wait", "bull:\(name):active"]).string
        #expect(moved == id)
        try await redis.set("bull:\(name):\(id):lock", to: "dead-worker:1", expiresIn: .milliseconds(300))
        #expect(try await queue.state(of: id) == .active)

        try await withWorker(try demoWorker(name, stalledInterval: .milliseconds(300))) {
            try await waitForCounts(queue, "the stalled job completed") { $0.completed == 1 }
        }
        let job = try #require(try await queue.job(id: id))
        #expect(job.stalledCount == 1)
        #expect(try JSONDecoder().decode(DemoJobs.Result.self, from: Data(job.returnValue!.utf8)).sum == 42)
    }

    @Test func aJobStalledMoreThanAllowedFailsWithBullMQsReason() async throws {
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        let id = try await queue.add(name: "sum", payload: ["a": 1, "b": 1])
        // It stalled once before; this is its second stall, past maxStalledCount 1.
        let redis = RedisClient(address: try currentServer().address)
        _ = try await redis.send(["HSET", "bull:\(name):\(id)", "stc", 1])
        _ = try await redis.send(["RPOPLPUSH", "bull:\(name):wait", "bull:\(name):active"])
        try await redis.set("bull:\(name):\(id):lock", to: "dead-worker:1", expiresIn: .milliseconds(200))

        try await withWorker(try demoWorker(name, stalledInterval: .milliseconds(300))) {
            try await waitForCounts(queue, "the twice-stalled job failed") { $0.failed == 1 }
        }
        let job = try #require(try await queue.job(id: id))
        #expect(job.failedReason == "job stalled more than allowable limit")
        #expect(job.stalledCount == 2)
        #expect(job.returnValue == nil, "it was not run again")
    }

    @Test func jobsAddedThroughTheOutboxDestinationAreAddedOnce() async throws {
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        let destination = JobsDestination(client: RedisClient(address: try currentServer().address))
        let message = try OutgoingMessage.job(queue: name, name: "sum", payload: ["a": 1, "b": 1],
                                              options: JobOptions(delay: .seconds(30)))
        try await destination.deliver([message])
        try await destination.deliver([message])
        #expect(try await queue.counts() == JobCounts(delayed: 1))
        let job = try #require(try await queue.job(id: message.id))
        #expect(try #require(job.delayUntil).timeIntervalSinceNow > 25)
    }
}

