import Foundation
import Logging

/// "Run the stage, and what it needs comes up": if etcd's configured
/// address is on this machine and does not answer, start the project's own
/// (`scripts/infra up etcd`, found by walking up from the executable to the
/// repository). An address elsewhere is never started, only waited for.
public enum EtcdStarter {
    public static func ensureRunning(_ url: String, logger: Logger) async throws {
        let etcd = EtcdClient(url: url)
        if await etcd.isHealthy() { return }
        let local = url.contains("://127.0.0.1:") || url.contains("://localhost:")
        guard local, let script = findUpwards("scripts/infra") else {
            throw StartError(description: "etcd at \(url) does not answer: start it (scripts/infra up etcd) or point ETCD_URL at a running one")
        }
        logger.notice("etcd does not answer; starting the project's own", metadata: ["etcd": .string(url), "script": .string(script)])
        let process = Process()
        process.executableURL = URL(fileURLWithPath: script)
        var arguments = ["up", "etcd"]
        if let port = URL(string: url)?.port { process.environment = ProcessInfo.processInfo.environment.merging(["ETCD_PORT": String(port)]) { $1 } }
        arguments.insert("-q", at: 0)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0, await etcd.isHealthy() else {
            throw StartError(description: "could not start etcd at \(url) with \(script) (exit \(process.terminationStatus)); run scripts/setup, then scripts/infra up etcd")
        }
    }

    public struct StartError: Error, CustomStringConvertible { public let description: String }

    static func findUpwards(_ relative: String) -> String? {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(relative).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
