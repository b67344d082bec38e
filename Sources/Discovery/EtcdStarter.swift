import Foundation
import Logging
import ShopServer

/// "Run the stage, and what it needs comes up": if etcd's configured
/// address is on this machine and does not answer, start the project's own
/// (`scripts/infra up etcd`). An address elsewhere is never started, only
/// waited for.
public enum EtcdStarter {
    public static func ensureRunning(_ url: String, logger: Logger) async throws {
        let etcd = EtcdClient(url: url)
        if await etcd.isHealthy() { return }
        guard InfraScript.isLocal(url) else {
            throw InfraScript.StartError(description: "etcd at \(url) does not answer: start it, or point ETCD_URL at a running one")
        }
        logger.notice("etcd does not answer; starting the project's own", metadata: ["etcd": .string(url)])
        let port = URL(string: url)?.port.map { ["ETCD_PORT": String($0)] } ?? [:]
        guard try await InfraScript.up("etcd", environment: port), await etcd.isHealthy() else {
            throw InfraScript.StartError(description: "could not start etcd at \(url); run scripts/setup, then scripts/infra up etcd")
        }
    }
}
