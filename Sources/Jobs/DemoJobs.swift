import Foundation

/// The demo jobs that the Swift worker, the `jobs work` command and the
/// Python peer in the tests all run the same way, so any of them can take
/// any job:
/// - `sum` with `{a, b, failTimes?}` fails with "planned failure <n>" on its
///   first `failTimes` attempts (n counts from 1), then returns
///   `{"sum": a + b, "by": "<implementation>"}`;
/// - `fail` with `{reason}` always fails with `reason`.
public enum DemoJobs {
    public struct Sum: Codable, Sendable {
        public var a: Int
        public var b: Int
        public var failTimes: Int?
        /// How long `jobs work` takes over it (not part of the contract the
        /// Python peer implements; the crash test needs jobs that take time).
        public var sleepMs: Int?
    }

    public struct Failure: Codable, Sendable {
        public var reason: String
    }

    public struct Result: Codable, Sendable, Equatable {
        public var sum: Int
        public var by: String
    }

    /// The failure a demo job throws; its description is the failed reason.
    public struct DemoFailure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs a demo job; answers its return value as JSON text.
    public static func run(_ job: Job, by implementation: String = "swift") throws -> String? {
        switch job.name {
        case "sum":
            let sum = try job.payload(as: Sum.self)
            if job.attemptsMade < (sum.failTimes ?? 0) {
                throw DemoFailure(description: "planned failure \(job.attemptsMade + 1)")
            }
            let result = Result(sum: sum.a + sum.b, by: implementation)
            return String(decoding: try JobOptions.encoder.encode(result), as: UTF8.self)
        case "fail":
            throw DemoFailure(description: try job.payload(as: Failure.self).reason)
        default:
            throw DemoFailure(description: "unknown demo job \(job.name)")
        }
    }
}
