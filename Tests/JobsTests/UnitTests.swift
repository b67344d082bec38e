import Foundation
@testable import Jobs
import Messaging
import Testing

/// The pure parts: no server.
@Suite struct UnitTests {
    @Test func fixedBackoffWaitsTheSameEveryTime() {
        let backoff = Backoff.fixed(milliseconds: 250)
        #expect((1...4).map { backoff.delay(afterAttempts: $0) } == [250, 250, 250, 250])
    }

    @Test func exponentialBackoffDoublesFromTheBaseWait() {
        // BullMQ: delay × 2^(attemptsMade − 1), attemptsMade counting the failure just made.
        let backoff = Backoff.exponential(milliseconds: 100)
        #expect((1...5).map { backoff.delay(afterAttempts: $0) } == [100, 200, 400, 800, 1600])
    }

    @Test func delayedScoreKeepsTheDueTimeInTheHighPart() {
        let due = 1_767_225_600_123
        #expect(DelayedScore.score(dueAt: due) == due * 4096)
        #expect(DelayedScore.score(dueAt: due, sequence: 7) == due * 4096 + 7)
        #expect(DelayedScore.dueTime(ofScore: DelayedScore.score(dueAt: due, sequence: 4095)) == due)
        // Exact as a double, which is what Redis keeps scores as.
        #expect(Int(Double(DelayedScore.score(dueAt: due, sequence: 4095))) == due * 4096 + 4095)
    }

    @Test func priorityScoreOrdersByPriorityThenByArrival() {
        #expect(PriorityScore.score(priority: 1, counter: 99) < PriorityScore.score(priority: 2, counter: 1))
        #expect(PriorityScore.score(priority: 3, counter: 1) < PriorityScore.score(priority: 3, counter: 2))
    }

    @Test func optionsEncodeWithBullMQsNamesAndShapes() throws {
        let options = JobOptions(
            jobId: "order-42", delay: .milliseconds(1500), priority: 2, attempts: 3,
            backoff: .exponential(milliseconds: 100), removeOnComplete: .count(10), removeOnFail: .age(seconds: 3600))
        let object = try #require(JSONSerialization.jsonObject(with: Data(options.bullMQJSON.utf8)) as? [String: Any])
        #expect(object["jobId"] as? String == "order-42")
        #expect(object["delay"] as? Int == 1500)
        #expect(object["priority"] as? Int == 2)
        #expect(object["attempts"] as? Int == 3)
        let backoff = try #require(object["backoff"] as? [String: Any])
        #expect(backoff["type"] as? String == "exponential" && backoff["delay"] as? Int == 100)
        #expect(object["removeOnComplete"] as? Int == 10)
        #expect((object["removeOnFail"] as? [String: Any])?["age"] as? Int == 3600)
        #expect(JobOptions(bullMQJSON: options.bullMQJSON) == options)
    }

    /// The trace a job continues sits where BullMQ's telemetry keeps its
    /// context: `opts.tm`, JSON text of the W3C headers.
    @Test func theTraceTravelsInBullMQsTelemetryField() throws {
        var options = JobOptions(attempts: 2)
        options.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        let object = try #require(JSONSerialization.jsonObject(with: Data(options.bullMQJSON.utf8)) as? [String: Any])
        let tm = try #require(object["tm"] as? String)
        #expect(try JSONSerialization.jsonObject(with: Data(tm.utf8)) as? [String: String]
                == ["traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"])
        let read = JobOptions(bullMQJSON: options.bullMQJSON)
        #expect(read == options)
        #expect(read.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        // No trace, no field; metadata that is not ours reads as no trace.
        #expect(!JobOptions().bullMQJSON.contains("\"tm\""))
        #expect(JobOptions(bullMQJSON: #"{"tm":"not json"}"#).traceparent == nil)
        // A job message made inside no trace carries none.
        let message = try OutgoingMessage.job(queue: "q", name: "n", payload: ["a": 1])
        #expect(message.traceparent == nil)
    }

    @Test func defaultOptionsStillCarryAttemptsAndDelay() throws {
        // BullMQ's workers compare `attempts` with no default: it must be there.
        let object = try #require(JSONSerialization.jsonObject(with: Data(JobOptions().bullMQJSON.utf8)) as? [String: Any])
        #expect(object["attempts"] as? Int == 1)
        #expect(object["delay"] as? Int == 0)
        #expect(object["removeOnComplete"] == nil)
    }

    @Test func optionsReadWhatOtherBullMQClientsWrite() {
        let python = JobOptions(bullMQJSON: """
            {"attempts":0,"delay":0,"backoff":250,"removeOnComplete":true,"removeOnFail":{"age":60,"count":5},"kl":3}
            """)
        #expect(python.attempts == 1)
        #expect(python.backoff == .fixed(milliseconds: 250))
        #expect(python.removeOnComplete == .count(0))
        #expect(python.removeOnFail == .ageAndCount(seconds: 60, count: 5))
        #expect(JobOptions(bullMQJSON: #"{"removeOnComplete":false}"#).removeOnComplete == nil)
    }

    @Test func aJobMessageCarriesAnAbsoluteDueTimeAndItsIdAsTheJobId() throws {
        let before = Date().milliseconds
        let message = try OutgoingMessage.job(
            queue: "mail", name: "send", payload: ["to": "a@example.com"], options: JobOptions(delay: .seconds(5)))
        let body = try JSONDecoder().decode(JobMessage.self, from: Data(message.body))
        #expect(message.type == "job")
        #expect(body.options.jobId == message.id)
        #expect(body.options.delay == nil)
        #expect(try #require(body.dueAt) >= before + 5_000)
    }
}

