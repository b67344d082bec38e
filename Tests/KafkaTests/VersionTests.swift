import Testing
@testable import Kafka

/// The version check, without a broker: how `rd_kafka_version()` numbers
/// decode and compare, and where a newer library is looked for.
@Suite struct VersionTests {
    @Test func decodesLibrdkafkaVersionNumbers() {
        let debian = RdKafkaVersion(rawValue: 0x0200_02ff)  // RD_KAFKA_VERSION of Debian's 2.0.2
        #expect((debian.major, debian.minor, debian.revision, debian.prerelease) == (2, 0, 2, 0xff))
        #expect(debian.description == "2.0.2")
        let wheel = RdKafkaVersion(rawValue: 0x0210_00ff)
        #expect(wheel.description == "2.16.0")
        #expect(RdKafkaVersion(rawValue: 0x0202_0001).description == "2.2.0-pre1")
    }

    @Test func comparesMajorMinorRevision() {
        let minimum = RdKafkaVersion.minimumSupported
        #expect(minimum == RdKafkaVersion(major: 2, minor: 2, revision: 0))
        #expect(RdKafkaVersion(major: 2, minor: 0, revision: 2) < minimum)
        #expect(RdKafkaVersion(major: 2, minor: 1, revision: 99) < minimum)
        #expect(RdKafkaVersion(major: 1, minor: 9, revision: 2) < minimum)
        #expect(RdKafkaVersion(major: 2, minor: 2, revision: 0) >= minimum)
        #expect(RdKafkaVersion(major: 2, minor: 16, revision: 0) > minimum)
        #expect(RdKafkaVersion(major: 3, minor: 0, revision: 0) > minimum)
        // Minor 10 is not "1" followed by a 0: the fields are compared as numbers.
        #expect(RdKafkaVersion(major: 2, minor: 10, revision: 0) > RdKafkaVersion(major: 2, minor: 9, revision: 9))
        // A release candidate of 2.2.0 already has the fix.
        #expect(RdKafkaVersion(major: 2, minor: 2, revision: 0, prerelease: 1) >= minimum)
    }

    @Test func looksForTheLibraryInTheDocumentedOrder() {
        let candidates = RdKafkaLibrary.candidateDirectories(
            environment: ["RDKAFKA_LIBRARY_PATH": "/opt/rdkafka/lib/librdkafka.so.1:/custom", "LD_LIBRARY_PATH": "/ld1::/ld2"],
            executablePath: "/home/learner/shop/.build/x86_64-unknown-linux-gnu/debug/kafka-bench",
            currentDirectory: "/home/learner/shop")
        #expect(Array(candidates.prefix(4)) == ["/opt/rdkafka/lib", "/custom", "/ld1", "/ld2"])
        // Walking up from the executable finds the project's .infra/lib…
        #expect(candidates.contains("/home/learner/shop/.infra/lib"))
        #expect(candidates.firstIndex(of: "/home/learner/shop/.build/x86_64-unknown-linux-gnu/debug/.infra/lib")! <
                candidates.firstIndex(of: "/home/learner/shop/.infra/lib")!)
        // …and each folder is tried once, even when reached from both starts.
        #expect(candidates.filter { $0 == "/home/learner/shop/.infra/lib" }.count == 1)
        #expect(candidates.last == "/.infra/lib")
    }

    @Test func refusesAFetchWaitThatStallsTansu() throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:9092", groupID: "g", topics: ["t"])
        try configuration.validate()
        configuration.fetchWaitMax = .milliseconds(5)
        let error = #expect(throws: KafkaError.self) { try configuration.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("10 ms") == true)
    }
}
