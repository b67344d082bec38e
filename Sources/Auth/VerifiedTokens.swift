import Synchronization

/// Tokens this process has already verified, with what they said.
///
/// A customer sends the same token with every request for an hour; checking
/// it means decoding base64, an HMAC over it and parsing its JSON claims,
/// about five per cent of the monolith's CPU per order. The signature of a
/// given token string never changes, so once it has been checked the answer
/// can be looked up by the string itself: a token altered by a single
/// character is a different key and is verified in full. The expiry is
/// still checked on every use. (Envoy's JWT filter keeps the same kind of
/// cache.)
final class VerifiedTokens: Sendable {
    struct Entry: Sendable {
        let principal: Principal
        let expires: Int
    }

    private let entries = Mutex<[String: Entry]>([:])
    private let capacity: Int

    init(capacity: Int = 10_000) { self.capacity = capacity }

    func lookup(_ token: String) -> Entry? {
        entries.withLock { $0[token] }
    }

    func remember(_ token: String, _ entry: Entry) {
        entries.withLock { entries in
            // Bounded: when full, start over. A forgotten token is only
            // verified again; nothing else is lost.
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = entry
        }
    }
}
