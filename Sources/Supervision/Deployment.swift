import Auth
import Common
import Discovery
import Foundation
import Observability
import ShopServer

/// A stage of several processes behind a gateway (stage 3 on), as `stage-N`
/// starts it: every service in a folder of its own under the deployment's
/// data folder, on a port the system picks (callers find it in etcd), and
/// the gateway on the public address.
public enum Deployment {
    /// One namespace per deployment, in etcd and in RabbitMQ's names alike,
    /// so that several deployments share one etcd and one broker without
    /// seeing each other: the one the settings name (`SHOP_NAMESPACE`), else
    /// kept in the data folder (a file `namespace`, made at the first start).
    ///
    /// Not derived from the folder's path alone: a learner who deletes the
    /// folder to start afresh must get a fresh namespace, or the new
    /// deployment would find the old one's queues and, from stage 7, its
    /// topics, and its read models would count orders the new order service
    /// never had. A folder made before the file existed keeps the name its
    /// path gave it.
    public static func namespace(stage: Int, dataDir: URL, settings: Settings) -> String {
        if let named = settings.namespace { return named }
        let file = dataDir.appendingPathComponent("namespace")
        if let kept = try? String(contentsOf: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !kept.isEmpty {
            return kept
        }
        let pathName = "stage-\(stage)-" + Fingerprint.sha256Hex(dataDir.standardizedFileURL.path).prefix(12)
        // A deployment that ran before has a folder per service.
        let existing = ((try? FileManager.default.contentsOfDirectory(at: dataDir, includingPropertiesForKeys: [.isDirectoryKey])) ?? [])
            .contains { (try? $0.resourceValues(forKeys: [.isDirectoryKey]).isDirectory) == true }
        let name = existing ? pathName : "stage-\(stage)-" + Fingerprint.sha256Hex(pathName + UUID().uuidString).prefix(12)
        try? FileManager.default.createDirectory(at: dataDir, withIntermediateDirectories: true)
        try? Data((name + "\n").utf8).write(to: file, options: .atomic)
        return name
    }

    /// The namespace of the deployment a service's folder
    /// (`<deployment>/<service>`) is in: a service started by hand joins it
    /// as if the supervisor had started it.
    public static func namespace(stage: Int, serviceDataDir: URL, settings: Settings) -> String {
        namespace(stage: stage, dataDir: serviceDataDir.deletingLastPathComponent(), settings: settings)
    }

    /// The settings every process of the deployment gets from the supervisor.
    public static func environment(namespace: String, etcd: String, amqp: String? = nil, redis: String? = nil, kafka: String? = nil) -> [String: String] {
        // On one machine the services find each other in etcd whatever the
        // caller's environment says: by DNS each would need a name and an
        // address of its own (see deploy/README.md), and each registers the
        // loopback address it listens on, not an `ADVERTISE_HOST` meant for
        // something else (an empty variable counts as unset).
        var shared = ["ETCD_URL": etcd, "SHOP_NAMESPACE": namespace, "DISCOVERY": "etcd", "ADVERTISE_HOST": ""]
        if let amqp { shared["AMQP_URL"] = amqp }
        if let redis { shared["REDIS_URL"] = redis }
        if let kafka { shared["KAFKA_BOOTSTRAP"] = kafka }
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

        // Prometheus finds the services where callers find them: in etcd,
        // which also knows one restarted by hand on a new port. The gateway
        // does not register (clients know its address); it is our child.
        if let etcd = environment["ETCD_URL"], let namespace = environment["SHOP_NAMESPACE"] {
            let directory = ServiceDirectory(ServiceRegistry(etcd: EtcdClient(url: etcd), namespace: namespace))
            let stage = executable.lastPathComponent.split(separator: "-").last.map(String.init) ?? "?"
            listForPrometheus(as: namespace) { [weak self] in
                let labels = ["stage": stage, "deployment": namespace]
                let gateway = (self?.children ?? []).filter { $0.name == "gateway" }
                    .map { ScrapeTargets.Target(url: $0.url, labels: labels.merging(["process": "gateway"]) { $1 }) }
                let services = await directory.all().map {
                    ScrapeTargets.Target(url: $0.url, labels: labels.merging(["process": $0.service, "instance_id": $0.id]) { $1 })
                }
                return gateway + services.sorted { $0.address < $1.address }
            }
        }
    }
}
