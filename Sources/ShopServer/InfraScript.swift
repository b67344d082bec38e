import Foundation

/// The project's `scripts/infra`, found from a running stage, so that a
/// stage can start the broker it needs ("run the stage, and what it needs
/// comes up"). Only ever for addresses on this machine.
public enum InfraScript {
    /// `scripts/infra -q up <service>` with extra environment (the port);
    /// true when it succeeded. Throws when the script cannot be found.
    ///
    /// Starting a broker takes seconds. The wait is a continuation that the
    /// process's termination handler resumes, not `waitUntilExit()`, which
    /// would hold one of the cooperative pool's threads (two on a two-core
    /// machine) for all that time and stall every other task of the stage.
    public static func up(_ service: String, environment: [String: String]) async throws -> Bool {
        guard let script = findUpwards("scripts/infra") else {
            throw StartError(description: "scripts/infra not found above \(executablePath)")
        }
        // env(1) adds the settings to what the script inherits from us, so
        // nothing here reads or copies this process's environment.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" } + [script, "-q", "up", service]
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            // Set before `run()`, so that even an instant exit is seen.
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        return status == 0
    }

    /// Is `url`'s host this machine?
    public static func isLocal(_ url: String) -> Bool {
        ["://127.0.0.1:", "://localhost:", "@127.0.0.1:", "@localhost:"].contains { url.contains($0) }
    }

    public struct StartError: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The checkout the executable was built in (the folder holding
    /// `scripts/infra`), if it was built in one.
    public static var checkout: String? {
        findUpwards("scripts/infra").map { URL(fileURLWithPath: $0).deletingLastPathComponent().deletingLastPathComponent().path }
    }

    /// Walks up from the executable (in `.build/…`) to the repository.
    public static func findUpwards(_ relative: String) -> String? {
        var directory = URL(fileURLWithPath: executablePath).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(relative).path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
