import Foundation
import Kafka
import Logging
import ShopServer

/// Bringing a stage's streams up: the broker (the project's own, started if
/// the address is on this machine and nobody answers) and the topics.
public enum StreamSetup {
    /// Makes sure a Kafka-protocol broker answers at `bootstrap`, starting
    /// the project's (`scripts/infra up kafka`, durable) when it is local
    /// and silent. Call `RdKafkaLibrary.bootstrap` before anything else.
    public static func ensureRunning(_ bootstrap: String, logger: Logger) async throws {
        if await answers(bootstrap) { return }
        guard InfraScript.isLocal("kafka://" + bootstrap) else {
            throw InfraScript.StartError(description: "no Kafka broker answers at \(bootstrap): start one, or point KAFKA_BOOTSTRAP at a running one")
        }
        logger.notice("no Kafka broker answers; starting the project's own (Tansu, durable storage)", metadata: ["kafka": .string(bootstrap)])
        let port = bootstrap.split(separator: ":").last.map(String.init) ?? "9092"
        guard try await InfraScript.up("kafka", environment: ["KAFKA_PORT": port]) else {
            throw InfraScript.StartError(description: "could not start Kafka at \(bootstrap); run scripts/setup, then scripts/infra up kafka")
        }
    }

    /// Whether the broker answers a metadata request within two seconds.
    public static func answers(_ bootstrap: String) async -> Bool {
        var configuration = KafkaAdminConfiguration(bootstrapServers: bootstrap)
        configuration.requestTimeout = .seconds(2)
        guard let admin = try? KafkaAdmin.make(configuration: configuration) else { return false }
        defer { admin.close() }
        return (try? await admin.topics()) != nil
    }

    /// Creates the topics that are missing, each with `partitions`
    /// partitions (creating one that exists is not an error).
    public static func createTopics(_ topics: [String], partitions: Int32, bootstrap: String, configs: [String: String] = [:]) async throws {
        let admin = try KafkaAdmin.make(configuration: KafkaAdminConfiguration(bootstrapServers: bootstrap))
        defer { admin.close() }
        let existing = try await admin.topics()
        for topic in topics where existing[topic] == nil {
            try await admin.createTopic(topic, partitions: partitions, configs: configs)
        }
    }

    /// Deletes topics (the ones that do not exist are ignored).
    public static func deleteTopics(_ topics: [String], bootstrap: String) async throws {
        let admin = try KafkaAdmin.make(configuration: KafkaAdminConfiguration(bootstrapServers: bootstrap))
        defer { admin.close() }
        try await admin.deleteTopics(topics)
    }
}
