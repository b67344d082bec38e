import Auth
import Common
import Foundation
import ShopServer

/// A stage of several processes behind a gateway (stage 3 on), as `stage-N`
/// starts it: every service in a folder of its own under the deployment's
/// data folder, on a port the system picks (callers find it in etcd), and
/// the gateway on the public address.
public enum Deployment {
    /// One namespace per deployment, in etcd and in RabbitMQ's names alike,
    /// so that several deployments share one etcd and one broker without
    /// seeing each other: the one the settings name (`SHOP_NAMESPACE`), else
    /// derived from the data folder.
    public static func namespace(stage: Int, dataDir: URL, settings: Settings) -> String {
        settings.namespace ?? "stage-\(stage)-" + Fingerprint.sha256Hex(dataDir.standardizedFileURL.path).prefix(12)
    }

    /// The namespace of the deployment a service's folder
    /// (`<deployment>/<service>`) is in: a service started by hand joins it
    /// as if the supervisor had started it.
    public static func namespace(stage: Int, serviceDataDir: URL, settings: Settings) -> String {
        namespace(stage: stage, dataDir: serviceDataDir.deletingLastPathComponent(), settings: settings)
    }

    /// The settings every process of the deployment gets from the supervisor.
    public static func environment(namespace: String, etcd: String, amqp: String? = nil) -> [String: String] {
        var shared = ["ETCD_URL": etcd, "SHOP_NAMESPACE": namespace]
        if let amqp { shared["AMQP_URL"] = amqp }
        return shared
    }
}

extension Supervisor {
    /// Starts `stage-N serve <name>` for each service (`name-1`, `name-2`…
    /// when there are several instances), then the gateway.
    public func startBehindGateway(
        services: [(name: String, instances: Int)], dataDir: URL, host: String, port: Int, environment: [String: String]
    ) async throws {
        for (name, instances) in services {
            for index in 1...instances {
                _ = try await start(instances > 1 ? "\(name)-\(index)" : name, arguments: [
                    "serve", name, "--host", "127.0.0.1", "--port", "0",
                    "--data-dir", dataDir.appendingPathComponent(name).path,
                ], environment: environment)
            }
        }
        _ = try await start("gateway", arguments: [
            "serve", "gateway", "--host", host, "--port", String(port),
            "--data-dir", dataDir.appendingPathComponent("gateway").path,
        ], environment: environment)
    }
}
