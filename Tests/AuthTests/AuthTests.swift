import Auth
import Common
import Foundation
import Testing

@Suite("Fingerprints (SHA-256)")
struct FingerprintTests {
    @Test func knownDigests() {
        // FIPS 180-2's example, and the empty string.
        #expect(Fingerprint.sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Fingerprint.sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func anOrderRequestKeepsItsStoredFingerprint() {
        // Orders already in a database hold this value (Python's hashlib
        // agrees); a replay of their Idempotency-Key must still match it.
        // CommonTests pins the canonical form this is the hash of.
        #expect(Fingerprint.sha256Hex("prd_a*1,prd_b*2|4242424242424242")
                == "8e3a434bf122d329aa5e41551804e3cffbef1147903b17e9953ad1a579b25329")
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

    @Test func signsAKnownToken() {
        // The token Python's hmac and base64 modules make for these claims
        // and this secret, byte for byte: the header, the sorted claims and
        // the HS256 signature all agree with another implementation.
        let signer = TokenSigner(secret: "unit-test-secret", lifetimeSeconds: 3600)
        let ada = Principal(userId: "usr_ada", email: "ada@example.com", name: "Ada Lovelace", role: .customer)
        #expect(signer.sign(ada, now: Date(timeIntervalSince1970: 1_700_000_000)) == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsImV4cCI6MTcwMDAwMzYwMCwiaWF0IjoxNzAwMDAwMDAwLCJpc3MiOiJzaG9wIiwibmFtZSI6IkFkYSBMb3ZlbGFjZSIsInJvbGUiOiJjdXN0b21lciIsInN1YiI6InVzcl9hZGEifQ.xWZF0zPFqiS6owDlZbOr9icEJE3oyO2Dde-0bmF5b20")
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

    @Test func aSignatureInAnotherBase64SpellingIsRefused() {
        // Standard Base64's `+`, `/` and padding decode to the same bytes,
        // but they are not base64url: such a token is malformed. (This
        // signature has a `-`, standard Base64's `+`.)
        let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJlbWFpbCI6ImFkYUBleGFtcGxlLmNvbSIsImV4cCI6MTcwMDAwMzYwMCwiaWF0IjoxNzAwMDAwMDAwLCJpc3MiOiJzaG9wIiwibmFtZSI6IkFkYSBMb3ZlbGFjZSIsInJvbGUiOiJjdXN0b21lciIsInN1YiI6InVzcl9hZGEifQ.xWZF0zPFqiS6owDlZbOr9icEJE3oyO2Dde-0bmF5b20"
        let signer = TokenSigner(secret: "unit-test-secret", lifetimeSeconds: 3600)
        let now = Date(timeIntervalSince1970: 1_700_000_001)
        let ada = Principal(userId: "usr_ada", email: "ada@example.com", name: "Ada Lovelace", role: .customer)
        #expect(signer.verify(token, now: now) == .success(ada))
        #expect(signer.verify(token.replacingOccurrences(of: "-", with: "+"), now: now) == .failure(.malformed))
        #expect(signer.verify(token + "=", now: now) == .failure(.malformed))
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
