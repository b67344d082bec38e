import AMQP
import Foundation
import Logging
import ShopServer

/// Where RabbitMQ is, and making sure it is there.
public enum Broker {
    /// If the broker is on this machine and does not answer, start the
    /// project's own (`scripts/infra up rabbitmq`, about 5 s). A broker
    /// elsewhere is left alone: the services will wait for it and say so.
    public static func ensureRunning(_ url: String, logger: Logger) async throws {
        let configuration = try AMQPConfiguration(url: url)
        if let connection = try? await AMQPConnection.connect(configuration) {
            await connection.close()
            return
        }
        guard InfraScript.isLocal(url) else { return }
        logger.notice("RabbitMQ does not answer; starting the project's own", metadata: ["amqp": .string(configuration.address)])
        guard try await InfraScript.up("rabbitmq", environment: ["RABBITMQ_PORT": String(configuration.port)]) else {
            throw InfraScript.StartError(description: "could not start RabbitMQ at \(configuration.address); run scripts/setup, then scripts/infra up rabbitmq")
        }
    }

    /// A reconnecting client that declares `topology` on every connection.
    public static func client(url: String, name: String, topology: MessageTopology, logger: Logger) throws -> RabbitClient {
        var configuration = try AMQPConfiguration(url: url)
        configuration.connectionName = name
        return RabbitClient(configuration: configuration, logger: logger) { channel in
            try await topology.declare(on: channel)
        }
    }
}
