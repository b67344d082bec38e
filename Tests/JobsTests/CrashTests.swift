import Foundation
import Jobs
import Redis
import RedisTestSupport
import Spawning
import TestSupport
import Testing

/// A worker process killed with SIGKILL while it holds jobs: nothing of it
/// runs any more, not even a shutdown handler. Its locks expire, and another
/// worker's stalled-job check gives the jobs back to run.
@Suite(.serialized, .redisServer)
struct CrashTests {
    /// `jobs` is built beside the test bundle (`swift build --product jobs`).
    static var cli: String {
        if let path = ProcessInfo.processInfo.environment["JOBS_CLI"], !path.isEmpty { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("jobs").path
    }

    @Test func jobsOfAKilledWorkerAreRecoveredAndCompletedByAnother() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.cli) else {
            throw TestFailure("no jobs executable at \(Self.cli): build it first with `swift build --product jobs`")
        }
        let name = uniqueQueue()
        let queue = try makeQueue(name)
        let ids = try await queue.addBulk((1...3).map {
            try NewJob(name: "sum", payload: ["a": $0, "b": 100, "sleepMs": 60_000])
        })
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("jobs-work-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: output) }
        let worker = try ChildProcess.start(Self.cli, [
            "work", name, "--redis", "redis://127.0.0.1:\(try currentServer().port)", "--concurrency", "3",
            // Its stalled-job checks must not hold the queue's `stalled-check`
            // key for long: the one check per interval is the queue's, not each worker's.
            "--lock-ms", "1000", "--stalled-ms", "300",
        ], stdout: .file(output), stderr: .file(output))
        try await Poll.until("the worker process started all three jobs", within: .seconds(20)) {
            let text = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            return text.components(separatedBy: "start ").count - 1 == 3 ? true : nil
        }
        #expect(try await queue.counts().active == 3)
        _ = await worker.kill()

        let started = ContinuousClock.now
        try await withWorker(try demoWorker(name, lockDuration: .seconds(1), stalledInterval: .milliseconds(300))) {
            try await waitForCounts(queue, "the three jobs completed by the second worker") { $0.completed == 3 }
        }
        // Not before the dead worker's locks (1 s) ran out: it never released them.
        #expect(ContinuousClock.now - started >= .milliseconds(500))
        for id in ids {
            let job = try #require(try await queue.job(id: id))
            #expect(job.stalledCount == 1, "job \(id)")
            #expect(job.attemptsStarted == 2, "job \(id)")
            #expect(try JSONDecoder().decode(DemoJobs.Result.self, from: Data(job.returnValue!.utf8)).by == "swift")
        }
    }
}
