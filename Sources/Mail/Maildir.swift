import Foundation

/// A Maildir (the format of qmail, Dovecot, mutt and most mail readers): a
/// folder with `tmp/`, `new/` and `cur/`. A message is written whole into
/// `tmp/`, then renamed into `new/`: a rename is atomic, so a reader never
/// sees half a message, and a crash leaves at worst a file in `tmp/`.
/// A reader that has shown a message moves it to `cur/`, adding flags
/// after a colon (`name:2,S`).
///
/// The shop names each file after the email's business key (one email per
/// order and kind), not after the time and host as mail servers do: so
/// delivering the same email twice (a job that ran again after a crash)
/// finds the first copy and writes nothing.
public struct Maildir: Sendable {
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    /// Creates the three folders if they are missing.
    public func prepare() throws {
        for folder in ["tmp", "new", "cur"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
    }

    public enum Delivery: Equatable, Sendable {
        case delivered(URL)
        /// A message with this key was delivered before (in `new/`, or
        /// already read and in `cur/`).
        case alreadyThere(URL)
    }

    /// Delivers `message` under `key` once. Answers where it is.
    @discardableResult
    public func deliver(_ message: String, key: String) throws -> Delivery {
        try prepare()
        let name = Self.fileName(for: key)
        if let existing = try find(key) { return .alreadyThere(existing) }
        let temporary = root.appendingPathComponent("tmp").appendingPathComponent(name)
        let final = root.appendingPathComponent("new").appendingPathComponent(name)
        // Written and flushed to disk before the rename: a message that is
        // in new/ after a crash is complete.
        try Data(message.utf8).write(to: temporary, options: [.atomic])
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.synchronize()
        try handle.close()
        do {
            try FileManager.default.moveItem(at: temporary, to: final)
        } catch {
            // Another worker delivered it between our look and our rename.
            try? FileManager.default.removeItem(at: temporary)
            if let existing = try find(key) { return .alreadyThere(existing) }
            throw error
        }
        return .delivered(final)
    }

    /// The delivered message with this key, read or not.
    public func find(_ key: String) throws -> URL? {
        let name = Self.fileName(for: key)
        let new = root.appendingPathComponent("new").appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: new.path) { return new }
        let cur = root.appendingPathComponent("cur")
        let read = (try? FileManager.default.contentsOfDirectory(atPath: cur.path)) ?? []
        return read.first { $0 == name || $0.hasPrefix(name + ":") }.map { cur.appendingPathComponent($0) }
    }

    /// Every message delivered, read or not.
    public func messages() throws -> [URL] {
        ["new", "cur"].flatMap { folder -> [URL] in
            let url = root.appendingPathComponent(folder)
            return ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted().map { url.appendingPathComponent($0) }
        }
    }

    /// A key as a file name: what is not a letter, digit, dot, dash or
    /// underscore becomes `_` (a colon would read as the start of flags, a
    /// slash as a folder).
    static func fileName(for key: String) -> String {
        String(key.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" }) + ".eml"
    }
}

extension Maildir.Delivery {
    /// Whether this call wrote the message.
    public var isNew: Bool {
        if case .delivered = self { return true }
        return false
    }
}
