import Crypto

/// A Lua script with its SHA-1, computed once, here, in Swift.
///
/// Redis names cached scripts by the SHA-1 of their source, so knowing it
/// up front lets every call go out as EVALSHA without asking the server
/// first. Keep scripts as `static let`s: the hash is worked out once.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    /// Lower-case hex, the form EVALSHA and SCRIPT LOAD use.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        // SHA-1 is broken against deliberate collisions, but here it is only
        // the name Redis gives a script we wrote ourselves; what matters is
        // computing the very digest Redis does. Hence `Insecure`.
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            (byte < 0x10 ? "0" : "") + String(byte, radix: 16)
        }.joined()
    }
}
