import Foundation

/// How Prometheus finds a running stage's processes by itself: each stage
/// writes the addresses of its processes into a file in Prometheus'
/// file-based discovery format (`[{"targets": ["127.0.0.1:8080"], "labels":
/// {...}}]`), in the folder `scripts/infra up prometheus` watches. A file
/// per running stage; Prometheus rereads the folder when a file changes, so
/// a service restarted on a new port is scraped at its new address within
/// seconds.
///
/// Who writes it is each stage's business: stage 1 is one process and lists
/// itself; from stage 2 the supervisor lists the processes it started; from
/// stage 3 the list comes from discovery (etcd), which also knows a service
/// restarted by hand.
///
/// The folder is the process's setting (`Settings.prometheusTargets`, read
/// once by the entry point): nil means nothing is written.
public enum ScrapeTargets {
    public struct Target: Sendable, Equatable {
        /// `host:port`
        public var address: String
        public var labels: [String: String]

        public init(url: String, labels: [String: String]) {
            var address = Substring(url)
            if let scheme = address.range(of: "://") { address = address[scheme.upperBound...] }
            self.address = String(address.prefix { $0 != "/" })
            self.labels = labels
        }
    }

    /// Writes (or rewrites) this process's file: `name` says whose targets
    /// they are (a deployment's namespace); the file is named after it and
    /// this process's id, so two runs never share one, and files left by a
    /// process that died without withdrawing them are removed here.
    public static func publish(_ targets: [Target], as name: String, in directory: URL) {
        let groups: [[String: Any]] = targets.map { ["targets": [$0.address], "labels": $0.labels] }
        guard let data = try? JSONSerialization.data(withJSONObject: groups, options: [.prettyPrinted, .sortedKeys]) else { return }
        // Written aside and renamed: Prometheus never reads half a file.
        let file = directory.appendingPathComponent(fileName(name))
        let partial = directory.appendingPathComponent("." + fileName(name) + ".partial")
        do {
            try data.write(to: partial)
        } catch {
            return
        }
        // rename(2) replaces the file in one step: Prometheus sees the old
        // list or the new one, never none.
        guard rename(partial.path, file.path) == 0 else {
            try? FileManager.default.removeItem(at: partial)
            return
        }
        removeAbandoned(in: directory)
    }

    /// Removes this process's file (on a clean stop).
    public static func withdraw(_ name: String, from directory: URL) {
        try? FileManager.default.removeItem(at: directory.appendingPathComponent(fileName(name)))
    }

    static func fileName(_ name: String) -> String {
        let safe = name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" }
        return "\(String(safe))-\(getpid()).json"
    }

    /// Files whose writer (the process id after the last `-`) is gone.
    static func removeAbandoned(in directory: URL) {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for file in files where file.hasSuffix(".json") {
            guard let pid = file.dropLast(5).split(separator: "-").last.flatMap({ Int32($0) }) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: directory.appendingPathComponent(file))
            }
        }
    }
}
