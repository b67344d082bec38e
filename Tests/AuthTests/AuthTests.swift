import Auth
import Common
import Foundation
import Testing

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var i = hex.startIndex
    while i < hex.endIndex { let j = hex.index(i, offsetBy: 2); out.append(UInt8(hex[i..<j], radix: 16)!); i = j }
    return out
}

@Suite("HMAC-SHA256 (RFC 4231 vectors)")
struct HMACTests {
    @Test func rfc4231() {
        // Test case 1
        #expect(hex(HMACSHA256.mac(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        // Test case 2
        #expect(hex(HMACSHA256.mac(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // Test case 6: a key longer than the block is hashed first.
        #expect(hex(HMACSHA256.mac(key: [UInt8](repeating: 0xaa, count: 131), message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    @Test func constantTimeEqual() {
        #expect(HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!HMACSHA256.constantTimeEqual([1, 2, 3], [1, 2]))
    }
}

@Suite("Tokens (JWT HS256)")
struct TokenTests {
    let signer = TokenSigner(secret: "unit-test-secret", lifetimeSeconds: 60)
    let ada = Principal(userId: "usr_ada", email: "ada@example.com", name: "", role: .customer)

    @Test func roundTrip() throws {
        let token = signer.sign(ada)
        #expect(try signer.verify(token).get() == ada)
    }

    @Test func aKnownTokenFromAnotherLibraryVerifies() throws {
        // Signed by PyJWT with the same secret and claims (iat 1700000000, exp 4102444800).
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsImV4cCI6NDEwMjQ0NDgwMCwiaWF0IjoxNzAwMDAwMDAwLCJpc3MiOiJzaG9wIiwicm9sZSI6ImN1c3RvbWVyIiwic3ViIjoidXNyX2FkYSJ9.45kH9bojicryXm2h7Or1ehANuPVaPRNFaOyDogUgTmA"
        #expect(try signer.verify(token).get() == ada)
    }

    @Test func expired() {
        let token = signer.sign(ada, now: Date(timeIntervalSinceNow: -120))
        #expect(signer.verify(token) == .failure(.expired))
    }

    @Test func anotherSecret() {
        let token = TokenSigner(secret: "someone-else").sign(ada)
        #expect(signer.verify(token) == .failure(.badSignature))
    }

    @Test func tamperedClaims() {
        let parts = signer.sign(ada).split(separator: ".")
        let admin = Principal(userId: "usr_ada", email: "ada@example.com", name: "", role: .admin)
        let forgedPayload = TokenSigner(secret: "x").sign(admin).split(separator: ".")[1]
        #expect(signer.verify("\(parts[0]).\(forgedPayload).\(parts[2])") == .failure(.badSignature))
    }

    @Test func algorithmNoneIsRefused() {
        let parts = signer.sign(ada).split(separator: ".")
        let none = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        #expect(signer.verify("\(none).\(parts[1]).") == .failure(.wrongAlgorithm))
    }

    @Test func aVerifiedTokenIsStillCheckedForExpiryAndTampering() {
        // The signer remembers tokens it verified; that must not let one
        // outlive its expiry, nor let a changed copy through.
        let issued = Date()
        let token = signer.sign(ada, now: issued)
        #expect(signer.verify(token, now: issued) == .success(ada))
        #expect(signer.verify(token, now: issued.addingTimeInterval(59)) == .success(ada))
        #expect(signer.verify(token, now: issued.addingTimeInterval(61)) == .failure(.expired))
        let parts = token.split(separator: ".")
        let admin = Principal(userId: "usr_ada", email: "ada@example.com", name: "", role: .admin)
        let forgedPayload = TokenSigner(secret: "x").sign(admin, now: issued).split(separator: ".")[1]
        #expect(signer.verify("\(parts[0]).\(forgedPayload).\(parts[2])", now: issued) == .failure(.badSignature))
        var flipped = Array(token.utf8)
        flipped[flipped.count - 2] = flipped[flipped.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(signer.verify(String(decoding: flipped, as: UTF8.self), now: issued) == .failure(.badSignature))
    }

    @Test(arguments: ["", "a.b", "a.b.c.d", "!!!.???.***", "..."])
    func malformed(_ token: String) {
        #expect((try? signer.verify(token).get()) == nil)
    }
}

@Suite("Passwords (bcrypt)")
struct PasswordTests {
    @Test func hashAndVerify() async {
        let hasher = PasswordHasher(cost: 4)
        let hash = await hasher.hash("correct-horse")
        #expect(hash.hasPrefix("$2"))
        #expect(!hash.contains("correct-horse"))
        #expect(await hasher.verify("correct-horse", against: hash))
        #expect(!(await hasher.verify("wrong-horse", against: hash)))
        #expect(await hasher.hash("correct-horse") != hash, "salted: the same password hashes differently")
    }

    @Test func decoyNeverMatchesARealPassword() async {
        let hasher = PasswordHasher(cost: 4)
        let decoy = await hasher.makeDecoy()
        #expect(!(await hasher.verify("", against: decoy)))
        #expect(!(await hasher.verify("admin-password", against: decoy)))
    }
}

@Suite("Base64URL through tokens")
struct Base64URLTests {
    @Test func everyLengthRoundTripsThroughASignedToken() throws {
        // Names of every length exercise every padding case of the encoder
        // and decoder, through the public API.
        let signer = TokenSigner(secret: "s")
        for length in 0..<12 {
            let principal = Principal(userId: String(repeating: "u", count: length), email: "é\(length)@example.com", name: "N\(length)", role: .customer)
            #expect(try signer.verify(signer.sign(principal)).get() == principal)
        }
    }
}
