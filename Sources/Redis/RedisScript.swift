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
        self.sha1 = SHA1.hexDigest(of: Array(source.utf8))
    }
}
