internal import CRdKafka
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A librdkafka version, as `rd_kafka_version()` encodes it: `0xMMmmrrpp`
/// (major, minor, revision, pre-release; pre-release `0xff` is a final
/// release, so 2.2.0 is `0x020200ff`).
public struct RdKafkaVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    public init(major: Int, minor: Int, revision: Int, prerelease: Int = 0xff) {
        self.rawValue = Int32(truncatingIfNeeded: major << 24 | minor << 16 | revision << 8 | prerelease)
    }

    public var major: Int { Int(rawValue >> 24) & 0xff }
    public var minor: Int { Int(rawValue >> 16) & 0xff }
    public var revision: Int { Int(rawValue >> 8) & 0xff }
    public var prerelease: Int { Int(rawValue) & 0xff }

    /// Compares major, minor and revision only. A release candidate of 2.2.0
    /// already carries the fix we need, so "2.2.0-RC1 < 2.2.0" would only
    /// reject a library that works.
    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor, lhs.revision) < (rhs.major, rhs.minor, rhs.revision)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor, lhs.revision) == (rhs.major, rhs.minor, rhs.revision)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major); hasher.combine(minor); hasher.combine(revision)
    }

    public var description: String {
        prerelease == 0xff ? "\(major).\(minor).\(revision)" : "\(major).\(minor).\(revision)-pre\(prerelease)"
    }

    /// The oldest librdkafka that can talk to Tansu. Older ones parse the
    /// "tagged fields" of flexible protocol versions one byte short
    /// (librdkafka PR #4278, released in 2.2.0), so their very first request,
    /// ApiVersion, fails with "Read underflow" and they never connect.
    public static let minimumSupported = RdKafkaVersion(major: 2, minor: 2, revision: 0)
}

/// Makes sure the librdkafka this process runs with can talk to the broker.
///
/// The problem: we compile against Debian's librdkafka-dev, 2.0.2, and the
/// dynamic linker loads the matching `/usr/lib/…/librdkafka.so.1` at start.
/// That library cannot talk to Tansu (see `RdKafkaVersion.minimumSupported`).
/// `scripts/setup` makes `.infra/lib/librdkafka.so.1`, a link to the
/// librdkafka 2.16 that the confluent-kafka wheel carries; the C ABI is the
/// same, so the program works unchanged once the loader picks that one.
///
/// How the loader is made to pick it, and why this way:
///
/// * A run path (`-rpath $ORIGIN/../../../.infra/lib`) would be free at run
///   time, but it bakes the layout of `.build` into the binary: it breaks with
///   `--scratch-path`, in a side package, or for a binary copied elsewhere,
///   and it needs `unsafeFlags` in Package.swift.
/// * `LD_LIBRARY_PATH` works for any binary, but only if it is set before
///   the process starts: the loader reads it once. `swift run`, `swift test`
///   and a plain `./kafka-bench` do not set it.
/// * So we check at start and, if the loaded library is too old, find the
///   newer one and re-execute the same program (`/proc/self/exe`, same
///   arguments, same pid, same open files) with `LD_LIBRARY_PATH` pointing at
///   it. One extra exec costs a few milliseconds, works the same for all
///   three ways of running, and a marker variable stops it from looping.
///
/// Re-executing is only safe before the program has done anything (threads,
/// open connections, half-written output), so it happens in one explicit
/// place: `bootstrap()`, the first line of an executable's `main`, and (for
/// tests) a trait evaluated before the first test runs. The clients'
/// factories only *check*, and throw `.unsupportedLibrary` with the fix in
/// the message: they never restart a process that is already running.
public enum RdKafkaLibrary {
    /// Set on the re-executed process, so that a library that is still too
    /// old after the restart produces an error instead of another restart.
    static let reexecMarker = "KAFKA_RDKAFKA_REEXEC"

    /// The librdkafka version actually loaded in this process.
    public static var loadedVersion: RdKafkaVersion {
        RdKafkaVersion(rawValue: rd_kafka_version())
    }

    /// The file the loader mapped librdkafka from, if it can tell. Read from
    /// /proc/self/maps (Glibc's module does not expose dladdr to Swift): the
    /// first mapped file whose name starts with "librdkafka". Only one can
    /// be mapped, since both carry the same soname.
    public static var loadedPath: String? {
        // /proc files report a size of 0, so read until end of file instead
        // of trusting the size as Foundation's file readers do.
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps"),
              let data = try? handle.readToEnd() else { return nil }
        try? handle.close()
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let slash = line.firstIndex(of: "/") else { continue }
            let path = String(line[slash...])
            let file = (path as NSString).lastPathComponent
            if file.hasPrefix("librdkafka"), !file.hasPrefix("librdkafka++") { return path }
        }
        return nil
    }

    public static var isSupported: Bool { loadedVersion >= .minimumSupported }

    /// Call first thing in `main`, with the process's environment. Returns
    /// when a supported librdkafka is loaded; otherwise re-executes the
    /// process with a newer one (does not return), or throws
    /// `.unsupportedLibrary` naming the bug and the fix.
    public static func bootstrap(environment: [String: String]) throws(KafkaError) {
        if isSupported { return }
        if let tried = environment[reexecMarker] {
            throw unsupported(detail: "The process was restarted with LD_LIBRARY_PATH=\(tried), and still loaded it")
        }
        guard let directory = findNewerLibrary(environment: environment) else {
            throw unsupported(detail: "No other librdkafka.so.1 was found in RDKAFKA_LIBRARY_PATH, LD_LIBRARY_PATH or a .infra/lib folder above the executable or the current directory")
        }
        reexec(withLibraryDirectory: directory, environment: environment)
        throw unsupported(detail: "Re-executing with LD_LIBRARY_PATH=\(directory) failed: \(String(cString: strerror(errno)))")
    }

    /// The check the clients run in their factories: no restart, just a
    /// clear error.
    static func requireSupported() throws(KafkaError) {
        guard isSupported else {
            throw unsupported(detail: "Call RdKafkaLibrary.bootstrap() at the start of the program, or start it with LD_LIBRARY_PATH set to a folder holding a newer librdkafka.so.1")
        }
    }

    static func unsupported(detail: String) -> KafkaError {
        let path = loadedPath.map { " from \($0)" } ?? ""
        return KafkaError(
            code: .unsupportedLibrary,
            message: """
                librdkafka \(loadedVersion) is loaded\(path), but talking to the broker (Tansu) needs \
                librdkafka >= \(RdKafkaVersion.minimumSupported): older versions misparse tagged fields \
                (ApiVersion fails with "Read underflow"; fixed in 2.2.0, librdkafka PR #4278). \
                \(detail). Run scripts/setup: it links .infra/lib/librdkafka.so.1 to the librdkafka \
                inside the confluent-kafka wheel, or set RDKAFKA_LIBRARY_PATH to a folder holding one.
                """)
    }

    /// Folders to look in, best first. Pure, so the tests can check the order.
    static func candidateDirectories(
        environment: [String: String], executablePath: String?, currentDirectory: String?
    ) -> [String] {
        var result: [String] = []
        func split(_ value: String?) -> [String] {
            (value ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
        }
        // 1. An explicit choice: a folder, or the librdkafka.so.1 file itself.
        for entry in split(environment["RDKAFKA_LIBRARY_PATH"]) {
            result.append(entry.hasSuffix("/librdkafka.so.1") ? (entry as NSString).deletingLastPathComponent : entry)
        }
        // 2. LD_LIBRARY_PATH: the loader searched it already, but it may have
        //    been changed since start, or list an old copy before a new one.
        result += split(environment["LD_LIBRARY_PATH"])
        // 3. The project's .infra/lib, in any folder above the executable
        //    (.build/<triple>/debug/…) or above the current directory.
        for start in [executablePath.map { ($0 as NSString).deletingLastPathComponent }, currentDirectory] {
            guard var folder = start else { continue }
            while true {
                result.append((folder == "/" ? "" : folder) + "/.infra/lib")
                let parent = (folder as NSString).deletingLastPathComponent
                if parent == folder || parent.isEmpty { break }
                folder = parent
            }
        }
        var seen = Set<String>()
        return result.filter { seen.insert($0).inserted }
    }

    /// The first candidate folder whose librdkafka.so.1 is a different file
    /// from the one already loaded (which we know is too old).
    static func findNewerLibrary(environment: [String: String]) -> String? {
        let loaded = loadedPath.flatMap(realPath)
        let executable = realPath("/proc/self/exe") ?? CommandLine.arguments.first
        let candidates = candidateDirectories(
            environment: environment, executablePath: executable,
            currentDirectory: FileManager.default.currentDirectoryPath)
        for folder in candidates {
            guard let file = realPath(folder + "/librdkafka.so.1") else { continue }
            if file != loaded { return folder }
        }
        return nil
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Replaces this process with a fresh run of the same executable and
    /// arguments, with `directory` first in LD_LIBRARY_PATH. The new image
    /// is given its environment directly (nothing in this process's own is
    /// changed). Returns only if exec failed.
    private static func reexec(withLibraryDirectory directory: String, environment: [String: String]) {
        var environment = environment
        environment["LD_LIBRARY_PATH"] = environment["LD_LIBRARY_PATH"].map { "\(directory):\($0)" } ?? directory
        environment[reexecMarker] = directory
        let entries = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        // Anything still in stdio buffers would be lost with the old image.
        fflush(nil)
        // /proc/self/exe is the running binary even when argv[0] is a bare
        // name found through PATH; argv is passed on untouched.
        entries.withUnsafeBufferPointer { envp in
            _ = execve("/proc/self/exe", CommandLine.unsafeArgv, envp.baseAddress)
        }
        for entry in entries { free(entry) }
    }
}
