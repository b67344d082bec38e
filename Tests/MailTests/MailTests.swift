import Foundation
import Mail
import TestSupport
import Testing

/// The emails as a real mail parser reads them (Python's `email` package,
/// which mail tools are built on), and the Maildir's deliver-once rule.
@Suite("Mail")
struct MailTests {
    static let email = Email(
        from: .init(name: "The Shop", email: "orders@shop.local"),
        to: .init(name: "Zoë \"Z\" Müller", email: "zoe@example.com"),
        subject: "Your order ord_1 is confirmed — thank you",
        text: "Hello Zoë,\n\nA line long enough to need a soft break because quoted-printable keeps lines under seventy-six characters.\nTrailing space ",
        html: "<p>Hello Zoë,</p>",
        messageId: "email.order_confirmed.ord_1@shop.local",
        date: Date(timeIntervalSince1970: 1_796_000_000))

    @Test("an email parses back, headers and both parts, with Python's email package")
    func parsesBack() async throws {
        let rendered = Self.email.rendered()
        #expect(rendered.split(separator: "\r\n", omittingEmptySubsequences: false).allSatisfy { $0.utf8.count <= 78 }, "no line over 78 characters")
        #expect(!rendered.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "CRLF line ends only")
        let parsed = try await PythonPeer.runJSON("""
            import email, json, sys
            from email import policy
            m = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.default)
            parts = {p.get_content_type(): p.get_content() for p in m.walk() if not p.is_multipart()}
            print(json.dumps({"from": str(m["From"]), "to": m["To"].addresses[0].display_name, "toAddress": m["To"].addresses[0].addr_spec,
                              "subject": str(m["Subject"]), "id": m["Message-ID"], "type": m.get_content_type(),
                              "text": parts.get("text/plain"), "html": parts.get("text/html"), "date": m["Date"].datetime.isoformat()}))
            """, input: rendered)
        #expect(parsed["from"] as? String == "The Shop <orders@shop.local>")
        #expect(parsed["to"] as? String == "Zoë \"Z\" Müller")
        #expect(parsed["toAddress"] as? String == "zoe@example.com")
        #expect(parsed["subject"] as? String == Self.email.subject)
        #expect(parsed["id"] as? String == "<email.order_confirmed.ord_1@shop.local>")
        #expect(parsed["type"] as? String == "multipart/alternative")
        let text = (parsed["text"] as? String)?.replacingOccurrences(of: "\r\n", with: "\n")
        #expect(text == Self.email.text || text == Self.email.text + "\n", "\(String(describing: text))")
        #expect((parsed["html"] as? String)?.hasPrefix("<p>Hello Zoë,</p>") == true)
        #expect(parsed["date"] as? String == "2026-11-30T00:53:20+00:00")
        #expect(Self.email.rendered() == rendered, "rendering is deterministic")
    }

    @Test("a Maildir takes a message once per key, read or not")
    func deliversOnce() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("maildir-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let maildir = Maildir(root: root)
        let first = try maildir.deliver("one", key: "email:welcome:usr_1")
        guard case .delivered(let file) = first else { Issue.record("not delivered: \(first)"); return }
        #expect(file.path.hasSuffix("/new/email_welcome_usr_1.eml"))
        #expect(try maildir.deliver("two", key: "email:welcome:usr_1") == .alreadyThere(file))
        // A mail reader has read it: it moved to cur/ with flags.
        let read = root.appendingPathComponent("cur/email_welcome_usr_1.eml:2,S")
        try FileManager.default.moveItem(at: file, to: read)
        #expect(try maildir.deliver("three", key: "email:welcome:usr_1") == .alreadyThere(read))
        #expect(try String(contentsOf: read, encoding: .utf8) == "one")
        #expect(try maildir.messages().count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("tmp").path).isEmpty, "nothing left in tmp/")
    }
}
