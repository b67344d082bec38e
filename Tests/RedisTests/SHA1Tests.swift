@testable import Redis
import Testing

/// A script's SHA-1 is its name on the server, so it must match Redis bit
/// for bit, as lower-case hex. The digest itself comes from swift-crypto
/// (whose own tests cover SHA-1); these check the project's use of it, on
/// the FIPS 180 / RFC 3174 vectors as script sources. CommandTests checks a
/// script's name against a real server.
@Suite struct SHA1Tests {
    @Test(arguments: [
        ("", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        ("abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"),
        ("The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"),
    ])
    func knownVectors(input: String, expected: String) {
        #expect(RedisScript(input).sha1 == expected)
    }

    @Test func scriptCarriesItsDigest() {
        // The name Redis gives `return 1` (Python's hashlib agrees).
        let script = RedisScript("return 1")
        #expect(script.sha1 == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db")
        #expect(script.sha1.count == 40)
    }
}
