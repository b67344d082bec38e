import Foundation

/// Base64 with the URL-safe alphabet and no padding, as JWT uses it
/// (RFC 7515): Foundation's standard Base64 with `+` and `/` spelt `-` and
/// `_`, and the trailing `=` left off. Speed hardly matters here: a token is
/// encoded once at login, and decoded in full only the first time this
/// process sees it (`VerifiedTokens` remembers the rest).
enum Base64URL {
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var text = Data(bytes).base64EncodedString()
        text.removeAll { $0 == "=" }
        return String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }

    /// nil for any character outside the URL-safe alphabet, or a length no
    /// encoding has. Padding, `+` and `/` are refused too: Foundation would
    /// accept them, but no JWT library writes them, so a token that has them
    /// is malformed.
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let isURLSafe = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_") }
        guard text.allSatisfy(isURLSafe), text.utf8.count % 4 != 1 else { return nil }
        var standard = String(text.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        return Data(base64Encoded: standard).map { Array($0) }
    }
}
