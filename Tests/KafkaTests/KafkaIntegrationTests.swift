import Foundation
import Testing
@testable import Kafka

/// Everything that talks to the real broker. One serialized suite: the
/// outage test stops and restarts Tansu, which would break anything running
/// beside it, and a 2-core machine gains little from parallel group joins.
///
/// Needs Tansu on 127.0.0.1:9092 (`scripts/infra up kafka`; KAFKA_PORT
/// overrides) and `.venv/bin/python` with confluent-kafka (`scripts/setup`).
/// Without them the tests fail with a message saying so; they never skip.
@Suite(.serialized, .rdkafkaRuntime, .timeLimit(.minutes(3)))
struct KafkaIntegrationTests {
    @Test func loadsALibrdkafkaThatCanTalkToTansu() throws {
        let version = RdKafkaLibrary.loadedVersion
        #expect(version >= .minimumSupported, "loaded \(version) from \(RdKafkaLibrary.loadedPath ?? "?")")
        #expect(RdKafkaLibrary.isSupported)
        let path = try #require(RdKafkaLibrary.loadedPath)
        #expect(!path.hasPrefix("/usr/lib"), "Debian's librdkafka is still the one loaded: \(path)")
    }
}
