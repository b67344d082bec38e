import Common
import Foundation
import Testing

@Suite("Order state machine and decisions")
struct OrderStateMachineTests {
    @Test func transitions() throws {
        #expect(try OrderStatus.pending.confirming() == .confirmed)
        #expect(try OrderStatus.confirmed.shipping() == .shipped)
        #expect(try OrderStatus.pending.cancelling() == .cancelled)
        #expect(try OrderStatus.confirmed.cancelling() == .cancelled)
    }

    @Test(arguments: [OrderStatus.shipped, .cancelled])
    func notCancellable(_ status: OrderStatus) {
        #expect(throws: ShopError.self) { try status.cancelling() }
        do { _ = try status.cancelling() } catch { #expect(error.code == .orderNotCancellable && error.status == 409) }
    }

    @Test(arguments: [OrderStatus.pending, .shipped, .cancelled])
    func notShippable(_ status: OrderStatus) {
        do { _ = try status.shipping(); Issue.record("\(status) shipped") } catch { #expect(error.code == .orderNotShippable) }
    }

    @Test func onlyPendingConfirms() {
        for status in [OrderStatus.confirmed, .shipped, .cancelled] {
            #expect(throws: ShopError.self) { try status.confirming() }
        }
    }

    @Test func decisions() {
        #expect(OrderDecision.decide(stock: nil, payment: nil) == nil)
        #expect(OrderDecision.decide(stock: .reserved, payment: nil) == nil)
        #expect(OrderDecision.decide(stock: nil, payment: .captured) == nil)
        // A declined payment alone cannot decide: out of stock would win.
        #expect(OrderDecision.decide(stock: nil, payment: .declined) == nil)
        #expect(OrderDecision.decide(stock: .rejected, payment: nil) == .cancel(.outOfStock))
        #expect(OrderDecision.decide(stock: .rejected, payment: .declined) == .cancel(.outOfStock))
        #expect(OrderDecision.decide(stock: .rejected, payment: .captured) == .cancel(.outOfStock))
        #expect(OrderDecision.decide(stock: .reserved, payment: .declined) == .cancel(.paymentDeclined))
        #expect(OrderDecision.decide(stock: .reserved, payment: .captured) == .confirm)
    }

    @Test func sales() {
        #expect(OrderStatus.allCases.filter(\.countsAsSale) == [.confirmed, .shipped])
        #expect(OrderStatus.allCases.filter(\.isDecided) == [.confirmed, .shipped, .cancelled])
    }
}

@Suite("Cards and the simulated processor")
struct PaymentTests {
    @Test(arguments: ["4242424242424242", "4000000000000002", "4000000000009995", "4000000000000119",
                      "5555555555554444", "378282246310005", "6011111111111117", "79927398713"])
    func luhnValid(_ number: String) { #expect(CardNumber.passesLuhn(number)) }

    @Test(arguments: ["4242424242424241", "4000000000000003", "79927398710", "1234567812345678"])
    func luhnInvalid(_ number: String) { #expect(!CardNumber.passesLuhn(number)) }

    @Test func cardParsing() throws {
        #expect(try CardNumber("4242 4242 4242 4242").digits == "4242424242424242")
        #expect(try CardNumber("4242-4242-4242-4242").last4 == "4242")
        for bad in ["", "4242", "42424242424242424242", "abcdabcdabcdabcd", "4242424242424241", "４２４２４２４２４２４２４２４２"] {
            #expect(throws: ShopError.self, "\(bad)") { try CardNumber(bad) }
        }
    }

    @Test func processor() throws {
        let approved = try CardNumber(SimulatedCardProcessor.approvedCard)
        let declined = try CardNumber(SimulatedCardProcessor.declinedCard)
        let funds = try CardNumber(SimulatedCardProcessor.insufficientFundsCard)
        let flaky = try CardNumber(SimulatedCardProcessor.flakyCard)
        #expect(SimulatedCardProcessor.charge(approved, attempt: 1) == .approved)
        #expect(SimulatedCardProcessor.charge(declined, attempt: 1) == .declined(.cardDeclined))
        #expect(SimulatedCardProcessor.charge(declined, attempt: 5) == .declined(.cardDeclined), "a decline is final")
        #expect(SimulatedCardProcessor.charge(funds, attempt: 1) == .declined(.insufficientFunds))
        #expect(SimulatedCardProcessor.charge(flaky, attempt: 1) == .transientFailure)
        #expect(SimulatedCardProcessor.charge(flaky, attempt: 2) == .transientFailure)
        #expect(SimulatedCardProcessor.charge(flaky, attempt: 3) == .approved)
    }

    @Test func retryPolicy() {
        let policy = RetryPolicy(maxAttempts: 4, baseDelayMilliseconds: 100, factor: 3)
        #expect(policy.delayMilliseconds(beforeAttempt: 1) == nil)
        #expect(policy.delayMilliseconds(beforeAttempt: 2) == 100)
        #expect(policy.delayMilliseconds(beforeAttempt: 3) == 300)
        #expect(policy.delayMilliseconds(beforeAttempt: 4) == 900)
        #expect(policy.delayMilliseconds(beforeAttempt: 5) == nil)
        // The in-line ladder reaches the flaky card's approval.
        #expect(RetryPolicy.inline.maxAttempts > SimulatedCardProcessor.flakyFailures)
    }
}

@Suite("Validation")
struct ValidationTests {
    @Test(arguments: ["ada@example.com", "a.b+tag@sub.example.co", " spaced@example.com "])
    func goodEmails(_ email: String) throws { _ = try Validate.email(email) }

    @Test(arguments: ["", "plain", "@example.com", "a@", "a@b", "a@@b.co", "a b@c.co", "a@.co", "a@b.co.", "a@b..co"])
    func badEmails(_ email: String) {
        do { _ = try Validate.email(email); Issue.record("accepted \(email)") } catch {
            #expect(error.code == .invalidRequest && error.message.hasPrefix("email"))
        }
    }

    @Test func passwords() throws {
        try Validate.password("12345678")
        #expect(throws: ShopError.self) { try Validate.password("1234567") }
        #expect(throws: ShopError.self) { try Validate.password(String(repeating: "x", count: 73)) }
        try Validate.password(String(repeating: "x", count: 72))
    }

    @Test func names() throws {
        #expect(try Validate.name("  Ada  ") == "Ada")
        #expect(throws: ShopError.self) { try Validate.name("   ") }
    }

    func request(_ lines: [(String, Int)], card: String = "4242424242424242") -> API.PlaceOrderRequest {
        API.PlaceOrderRequest(items: lines.map { API.OrderItemRequest(productId: $0.0, quantity: $0.1) }, paymentMethod: .init(card: card))
    }

    @Test func orderLines() throws {
        _ = try ValidOrderRequest(request([("prd_a", 1)]))
        _ = try ValidOrderRequest(request((0..<50).map { ("prd_\($0)", 1) }))
        let bad: [(API.PlaceOrderRequest, String)] = [
            (request([]), "items"),
            (request((0..<51).map { ("prd_\($0)", 1) }), "items"),
            (request([("prd_a", 1), ("prd_a", 2)]), "items[1].productId"),
            (request([("prd_a", 0)]), "items[0].quantity"),
            (request([("prd_a", 10_001)]), "items[0].quantity"),
            (request([("", 1)]), "items[0].productId"),
            (request([("prd_a", 1)], card: "4242424242424241"), "paymentMethod.card"),
        ]
        for (request, field) in bad {
            do { _ = try ValidOrderRequest(request); Issue.record("accepted \(request)") } catch {
                #expect(error.code == .invalidRequest)
                #expect(error.message.hasPrefix(field), "\(error.message)")
            }
        }
    }

    @Test func canonicalForm() throws {
        let a = try ValidOrderRequest(request([("prd_a", 1), ("prd_b", 2)]))
        let same = try ValidOrderRequest(request([("prd_a", 1), ("prd_b", 2)], card: "4242 4242 4242 4242"))
        let other = try ValidOrderRequest(request([("prd_a", 1), ("prd_b", 3)]))
        #expect(a.canonicalForm == same.canonicalForm)
        #expect(a.canonicalForm != other.canonicalForm)
        // Orders store a hash of exactly this text (AuthTests checks the
        // hash): changing its format would make every stored fingerprint
        // stop matching its own request.
        #expect(a.canonicalForm == "prd_a*1,prd_b*2|4242424242424242")
    }

    @Test func idempotencyKeys() throws {
        _ = try Validate.idempotencyKey("abc-123")
        #expect(throws: ShopError.self) { try Validate.idempotencyKey("") }
        #expect(throws: ShopError.self) { try Validate.idempotencyKey(String(repeating: "k", count: 256)) }
        #expect(throws: ShopError.self) { try Validate.idempotencyKey("tab\there") }
    }
}

@Suite("Pricing, invoices, errors, JSON")
struct PricingAndFormatsTests {
    @Test func pricingCopiesTheCatalogue() throws {
        let request = try ValidOrderRequest(API.PlaceOrderRequest(
            items: [.init(productId: "prd_a", quantity: 3)], paymentMethod: .init(card: "4242424242424242")))
        let catalogue = ["prd_a": API.Product(id: "prd_a", sku: "A", name: "Apple", description: "", priceCents: 150)]
        let items = try Pricing.price(request, catalogue: catalogue)
        #expect(items == [API.OrderItem(productId: "prd_a", sku: "A", name: "Apple", quantity: 3, unitPriceCents: 150)])
        #expect(items[0].lineTotalCents == 450)
        do { _ = try Pricing.price(request, catalogue: [:]); Issue.record("priced an unknown product") } catch {
            #expect(error.code == .unknownProduct && error.status == 400)
        }
    }

    @Test func dollars() {
        #expect(InvoiceDocument.dollars(0) == "0.00")
        #expect(InvoiceDocument.dollars(5) == "0.05")
        #expect(InvoiceDocument.dollars(123_456) == "1,234.56")
        #expect(InvoiceDocument.dollars(100_000_000) == "1,000,000.00")
        #expect(InvoiceDocument.number(42) == "INV-000042")
    }

    @Test func invoiceEscapesWhatCustomersTyped() {
        let order = API.Order(id: "ord_1", userId: "usr_1", status: .confirmed, cancelReason: nil,
                              items: [API.OrderItem(productId: "p", sku: "S", name: "<script>", quantity: 1, unitPriceCents: 100)],
                              payment: .init(status: .captured, chargedCents: 100, refundedCents: 0), createdAt: Date(), updatedAt: Date())
        let html = InvoiceDocument.html(number: "INV-000001", order: order, customer: API.User(id: "usr_1", email: "a@b.co", name: "A & B", role: .customer))
        #expect(!html.contains("<script>"))
        #expect(html.contains("&lt;script&gt;") && html.contains("A &amp; B"))
    }

    @Test func errorStatuses() {
        #expect(ErrorCode.invalidRequest.httpStatus == 400)
        #expect(ErrorCode.invoiceNotReady.httpStatus == 404)
        #expect(ErrorCode.idempotencyKeyReused.httpStatus == 409)
        #expect(ErrorCode.payloadTooLarge.httpStatus == 413)
        #expect(ErrorCode.rateLimited.httpStatus == 429)
        #expect(ErrorCode.unavailable.httpStatus == 503)
        #expect(ShopError.unavailable("product service").retryAfter == 1)
    }

    @Test func decodingErrorsNameTheField() {
        func message(_ body: String) -> String {
            do { _ = try JSON.decodeRequest(API.PlaceOrderRequest.self, from: Data(body.utf8)); return "decoded" } catch { return error.message }
        }
        #expect(message("{") == "the request body is not valid JSON")
        #expect(message("") == "the request body must be a JSON object")
        #expect(message("[]") == "the request body must be a JSON object")
        #expect(message(#"{"paymentMethod":{"card":"4242"}}"#) == "items is required")
        #expect(message(#"{"items":[{"productId":"p","quantity":"2"}],"paymentMethod":{"card":"4242"}}"#) == "items[0].quantity must be an integer")
        #expect(message(#"{"items":[{"productId":"p","quantity":2.5}],"paymentMethod":{"card":"4242"}}"#) == "items[0].quantity must be an integer")
        #expect(message(#"{"items":[{"productId":"p","quantity":1}],"paymentMethod":{"card":null}}"#) == "paymentMethod.card must be a string")
    }

    /// Dates are Doubles: a parsed time may differ from the original by one
    /// ulp. What must hold is that the text survives every round trip, and
    /// that the order of times is kept to the millisecond.
    @Test func timestampsRoundTripWithMilliseconds() throws {
        let now = Timestamp.now()
        let text = Timestamp.format(now)
        #expect(text.hasSuffix("Z") && text.count == 24)
        #expect(Timestamp.format(try #require(Timestamp.parse(text))) == text)
        #expect(abs(try #require(Timestamp.parse(text)).timeIntervalSince(now)) < 0.0005)
        let encoded = try JSON.encoder().encode(["at": now])
        let decoded = try JSON.decoder().decode([String: Date].self, from: encoded)
        #expect(try JSON.encoder().encode(decoded) == encoded)
        let later = Date(timeIntervalSinceReferenceDate: now.timeIntervalSinceReferenceDate + 0.001)
        #expect(Timestamp.format(later) > text)
    }

    @Test func timestampFormatsKnownInstants() throws {
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 951_782_400.5)) == "2000-02-29T00:00:00.500Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_795_900_267.123)) == "2026-11-28T21:11:07.123Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000Z")
        #expect(Timestamp.parse("2026-11-28T21:11:07Z") == Date(timeIntervalSince1970: 1_795_900_267))
        #expect(Timestamp.parse("2026-11-28T21:11:07.1Z").map(Timestamp.format) == "2026-11-28T21:11:07.100Z")
        #expect(Timestamp.parse("2026-11-28T21:11:07.123456789Z").map(Timestamp.format) == "2026-11-28T21:11:07.123Z")
        for bad in ["", "2026-11-26", "2026-11-28T21:11:07", "2026-13-01T00:00:00Z", "2026-11-28T21:11:07+01:00", "2026-11-28T21:11:07.Z"] {
            #expect(Timestamp.parse(bad) == nil, "\(bad)")
        }
        // Every millisecond boundary survives, including ones a Double cannot hold exactly.
        for ms in stride(from: Int64(1_795_900_267_000), to: 1_795_900_268_000, by: 7) {
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            #expect(Timestamp.milliseconds(try #require(Timestamp.parse(Timestamp.format(date)))) == ms)
        }
    }

    @Test func ids() {
        let id = ID.make("ord")
        #expect(id.hasPrefix("ord_") && id.count == 24)
        #expect(ID.make("ord") != id)
    }

    @Test func idsSortAsTheirTimes() {
        // Keys that arrive in order append to a B-tree instead of landing
        // anywhere in it: a later millisecond always sorts after, whatever
        // the random half says.
        let base = Date(timeIntervalSince1970: 1_795_900_267.001)
        var previous = ID.make("ord", now: base)
        for step in 1...2_000 {
            let next = ID.make("ord", now: base.addingTimeInterval(Double(step) / 1000))
            #expect(next > previous, "\(next) after \(previous)")
            previous = next
        }
        // Within one millisecond the random half keeps them apart.
        let sameMillisecond = Set((0..<1_000).map { _ in ID.make("ord", now: base) })
        #expect(sameMillisecond.count == 1_000)
        #expect(Set(sameMillisecond.map { $0.prefix(14) }).count == 1)
    }
}
