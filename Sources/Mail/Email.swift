import Foundation

/// An email as RFC 5322 text: headers, then a MIME `multipart/alternative`
/// body with a plain-text part and an HTML part (RFC 2046), so that any mail
/// reader shows it, the plainest in text and the others in HTML.
///
/// Only what the shop sends is supported: ASCII or UTF-8 text, short
/// subjects, one recipient. Headers with non-ASCII text are written as
/// RFC 2047 encoded words, bodies as UTF-8 in quoted-printable, so that no
/// line is longer than the 78 characters the RFC recommends.
public struct Email: Sendable, Equatable {
    public struct Address: Sendable, Equatable {
        public var name: String
        public var email: String
        public init(name: String, email: String) {
            self.name = name
            self.email = email
        }
    }

    public var from: Address
    public var to: Address
    public var subject: String
    public var text: String
    public var html: String
    /// The `Message-ID` header's value without its angle brackets. Make it
    /// from the business key (one email per order and kind), so that the
    /// same email rendered twice is the same message.
    public var messageId: String
    public var date: Date

    public init(from: Address, to: Address, subject: String, text: String, html: String, messageId: String, date: Date) {
        self.from = from
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.messageId = messageId
        self.date = date
    }

    /// The message as it goes on the wire: CRLF line ends throughout.
    public func rendered() -> String {
        // A boundary that cannot occur in quoted-printable text (which never
        // holds "=_" followed by this), derived from the id so that rendering
        // is deterministic.
        // (FNV-1a, not `hashValue`, which Swift seeds anew in every process.)
        let hash = messageId.utf8.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        let boundary = "=_shop_" + String(hash, radix: 36)
        var lines = [
            "From: \(Self.header(from))",
            "To: \(Self.header(to))",
            "Subject: \(Self.encodedWord(subject))",
            "Date: \(Self.rfc5322Date(date))",
            "Message-ID: <\(messageId)>",
            "MIME-Version: 1.0",
            "Content-Type: multipart/alternative; boundary=\"\(boundary)\"",
            "",
            "This is a MIME message with a text and an HTML version.",
            "",
        ]
        for (type, body) in [("text/plain", text), ("text/html", html)] {
            lines += [
                "--\(boundary)",
                "Content-Type: \(type); charset=utf-8",
                "Content-Transfer-Encoding: quoted-printable",
                "",
                Self.quotedPrintable(body),
            ]
        }
        lines.append("--\(boundary)--")
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func header(_ address: Address) -> String {
        // A display name with anything but letters, digits and spaces is
        // quoted (or encoded, when it is not ASCII).
        let name = address.name
        if name.isEmpty { return "<\(address.email)>" }
        if !name.allSatisfy(\.isASCII) { return "\(encodedWord(name)) <\(address.email)>" }
        if name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == " " }) { return "\(name) <\(address.email)>" }
        let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return "\"\(escaped)\" <\(address.email)>"
    }

    /// RFC 2047: `=?utf-8?B?…?=` for text that is not plain ASCII. An
    /// encoded word may be at most 75 characters, so longer text becomes
    /// several, on folded lines (CRLF and a space), cut between characters.
    static func encodedWord(_ text: String) -> String {
        if text.allSatisfy({ $0.isASCII && !$0.isNewline }) { return text }
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            // 36 bytes are 48 characters of base64: with `=?utf-8?B?` and
            // `?=` a word is 60, and the first, after `Subject: `, is
            // within the 78 characters a line should keep to.
            if chunk.count + bytes.count > 36 {
                words.append(chunk.base64Word)
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty { words.append(chunk.base64Word) }
        return words.joined(separator: "\r\n ")
    }

    /// RFC 5322's date, in UTC: `Mon, 30 Nov 2026 15:21:57 +0000`.
    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    /// RFC 2045's quoted-printable: printable ASCII as it is, everything
    /// else as `=XX`, lines broken with a soft `=` before 76 characters.
    static func quotedPrintable(_ text: String) -> String {
        var output: [String] = []
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        for line in normalized.split(separator: "\n", omittingEmptySubsequences: false) {
            var current = ""
            let bytes = Array(line.utf8)
            for (index, byte) in bytes.enumerated() {
                let isLast = index == bytes.count - 1
                let piece: String
                switch byte {
                // A space or tab at the end of a line would be stripped by
                // some relays, so it is encoded there.
                case 0x20 where !isLast, 0x09 where !isLast: piece = String(UnicodeScalar(byte))
                case 0x21...0x3c, 0x3e...0x7e: piece = String(UnicodeScalar(byte))
                default: piece = String(format: "=%02X", byte)
                }
                if current.count + piece.count > 75 {
                    output.append(current + "=")
                    current = ""
                }
                current += piece
            }
            output.append(current)
        }
        return output.joined(separator: "\r\n")
    }
}

private extension [UInt8] {
    var base64Word: String { "=?utf-8?B?\(Data(self).base64EncodedString())?=" }
}
