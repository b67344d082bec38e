import Foundation
import Kafka
import Logging
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Makes the test process load a librdkafka >= 2.2 before any test runs.
///
/// `swift test` starts the test binary without LD_LIBRARY_PATH, so Debian's
/// librdkafka 2.0.2 is what the loader maps. `RdKafkaLibrary.bootstrap()`
/// re-executes the process with the newer library, which is only safe
/// before anything has happened. Swift Testing calls a trait's `prepare(for:)`
/// while it plans the run, before the first test starts (and before it
/// prints anything), so that is where this trait does it: the restarted
/// process plans again, finds the right library loaded, and runs the tests
/// once. If no newer library can be found, every test carrying the trait
/// fails with the message that names the bug and `scripts/setup`.
struct RdKafkaRuntimeTrait: SuiteTrait, TestTrait {
    var isRecursive: Bool { true }

    func prepare(for test: Test) async throws {
        try RdKafkaLibrary.bootstrap(environment: ProcessInfo.processInfo.environment)
    }
}

extension Trait where Self == RdKafkaRuntimeTrait {
    /// Loads librdkafka >= 2.2 (see `RdKafkaRuntimeTrait`).
    static var rdkafkaRuntime: Self { RdKafkaRuntimeTrait() }
}

/// A failure of the environment, not of the code under test, worded so that
/// the fix is in the message.
struct EnvironmentError: Error, CustomStringConvertible {
    let description: String
}

/// Where things are, and the broker the tests run against.
enum KafkaTestEnvironment {
    /// The project root: the folder holding `scripts/infra` (`SHOP_ROOT`
    /// overrides; see TestSupport's `Repository`).
    static var projectRoot: String? { Repository.root }

    static let port = Int(ProcessInfo.processInfo.environment["KAFKA_PORT"] ?? "") ?? 9092
    static var bootstrapServers: String { "127.0.0.1:\(port)" }
    /// The S3 port of Tansu's storage, SeaweedFS (scripts/infra's default).
    static let storagePort = Int(ProcessInfo.processInfo.environment["SEAWEEDFS_PORT"] ?? "") ?? 8333
    /// Whether a broker that `scripts/infra up kafka` starts keeps its log
    /// (the default), or starts empty (KAFKA_STORAGE=memory).
    static let durableStorage = ProcessInfo.processInfo.environment["KAFKA_STORAGE"] != "memory"

    static let logger: Logger = {
        var logger = Logger(label: "kafka.tests")
        // librdkafka is chatty while a broker is away; the tests check the
        // errors they expect themselves.
        logger.logLevel = ProcessInfo.processInfo.environment["KAFKA_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        return logger
    }()

    static func root() throws -> String {
        guard let projectRoot else {
            throw EnvironmentError(description: "cannot find the project root (a folder with scripts/infra above \(#filePath)); set SHOP_ROOT")
        }
        return projectRoot
    }

    /// Fails the test, clearly, when nothing listens on the broker's port:
    /// these tests need a real broker and are never skipped.
    static func requireBroker() async throws {
        // A local broker that does not answer is started, as the stages do
        // (scripts/infra up kafka); then checked again. Through the shared
        // runner, which waits without holding a cooperative thread: starting
        // Tansu takes seconds.
        if !canConnect(port: port), let root = projectRoot {
            _ = try? await runProcess(root + "/scripts/infra", ["-q", "up", "kafka"], environment: ["KAFKA_PORT": String(port), "LD_LIBRARY_PATH": nil], timeout: .seconds(120))
        }
        guard canConnect(port: port) else {
            throw EnvironmentError(description: "the Kafka broker (Tansu) is not reachable on \(bootstrapServers): start it with `scripts/infra up kafka` (scripts/test does this)")
        }
    }

    /// A plain TCP connect to 127.0.0.1:port; loopback refuses at once, so
    /// this blocking call returns within microseconds.
    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// A topic name no earlier run used: Tansu keeps every topic until its
    /// storage is removed (or, in memory, until it stops), so names must not
    /// collide between runs.
    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    static func makeAdmin(requestTimeout: Duration = .seconds(10)) throws -> KafkaAdmin {
        var configuration = KafkaAdminConfiguration(bootstrapServers: bootstrapServers)
        configuration.requestTimeout = requestTimeout
        return try KafkaAdmin.make(configuration: configuration, logger: logger)
    }

    static func createTopic(_ prefix: String, partitions: Int32) async throws -> String {
        try await requireBroker()
        let name = uniqueName(prefix)
        let admin = try makeAdmin()
        defer { admin.close() }
        try await admin.createTopic(name, partitions: partitions)
        return name
    }

    static func makeProducer(messageTimeout: Duration = .seconds(30)) throws -> KafkaProducer {
        var configuration = KafkaProducerConfiguration(bootstrapServers: bootstrapServers, clientID: "kafka-tests")
        configuration.messageTimeout = messageTimeout
        return try KafkaProducer.make(configuration: configuration, logger: logger)
    }

    static func consumerConfiguration(group: String, topic: String) -> KafkaConsumerConfiguration {
        KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: group, topics: [topic], clientID: "kafka-tests")
    }

    /// Runs `scripts/infra <arguments>` (quietly) and fails on a non-zero exit.
    /// The default time limit covers stopping Kafka: Tansu, then SeaweedFS
    /// (4 to 12 s).
    static func infra(_ arguments: String..., timeout: Duration = .seconds(90)) async throws {
        // Without the LD_LIBRARY_PATH our re-exec added (see RdKafkaLibrary):
        // other programs see the environment we were started with.
        let result = try await runProcess(
            try root() + "/scripts/infra", ["-q"] + arguments, environment: ["LD_LIBRARY_PATH": nil], timeout: timeout)
        guard result.status == 0 else {
            throw EnvironmentError(description: "scripts/infra \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderr)")
        }
    }
}

/// Reads messages until `count` arrived or `timeout` passed, whichever is
/// first; the caller checks the count. Never hangs a test on a stuck consumer.
func collect(
    _ count: Int, from consumer: KafkaConsumer, timeout: Duration = .seconds(30),
    commit: Bool = true
) async throws -> [KafkaConsumerMessage] {
    try await withThrowingTaskGroup(of: [KafkaConsumerMessage]?.self) { group in
        group.addTask {
            var messages: [KafkaConsumerMessage] = []
            guard count > 0 else { return messages }
            for try await message in consumer.messages {
                messages.append(message)
                if commit { try await consumer.commit(message) }
                if messages.count == count { break }
            }
            return messages
        }
        group.addTask {
            try? await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next()!
        group.cancelAll()
        guard let messages = first else {
            throw EnvironmentError(description: "only part of \(count) messages arrived within \(timeout)")
        }
        return messages
    }
}
