import Common
import Foundation
import ShopClient
import TestSupport

/// A line of a stage's log as its fields: logfmt (`key=value`, a value
/// with spaces in quotes), as ShopLogHandler writes it. The trace tests read
/// the real processes' logs with it.
public struct LogLine: Sendable {
    public var fields: [String: String] = [:]

    public init(_ line: Substring) {
        var rest = line[...]
        while let equals = rest.firstIndex(of: "=") {
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces)
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(character); escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { break } else { value.append(character) }
                }
            } else {
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            fields[key] = value
            rest = rest.drop { $0 == " " }
        }
    }

    public subscript(key: String) -> String? { fields[key] }

    /// The lines of a log file that belong to a trace.
    public static func lines(of file: URL, trace: String) -> [LogLine] {
        let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.contains("trace_id=\(trace)") }.map { LogLine($0) }
    }

    /// Random lower-case hex, never a zero byte (an all-zero id is invalid).
    public static func hex(_ bytes: Int) -> String {
        (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 1...255)) }.joined()
    }
}

/// An order placed with a `traceparent` of the test's own, as a client
/// that traces would send it: the ids to look for in the logs.
public struct TracedOrder: Sendable {
    public let order: API.Order
    /// The product ordered (5 in stock, one of them in this order).
    public let product: API.Product
    public let customer: Session
    /// The trace id every hop must log.
    public let traceId: String
    /// The caller's span: the gateway's span must name it as its parent.
    public let callerSpan: String

    /// Creates a product and a customer, and places one order for it.
    public static func place(in deployment: Deployment) async throws -> TracedOrder {
        let api = deployment.api
        let product = try await api.createProduct(
            .init(sku: "T-\(ID.make("x").dropFirst(2))", name: "Traced", priceCents: 1_200, initialStock: 5),
            adminToken: deployment.admin.token)
        let customer = try await api.newCustomer("trace")
        let traceId = LogLine.hex(16), callerSpan = LogLine.hex(8)
        let request = API.PlaceOrderRequest(
            items: [API.OrderItemRequest(productId: product.id, quantity: 1)],
            paymentMethod: API.PaymentMethod(card: SimulatedCardProcessor.approvedCard))
        let order: API.Order = try await api.call(
            "POST", "/orders", token: customer.token, json: request,
            headers: [("traceparent", "00-\(traceId)-\(callerSpan)-01")]).expect(201)
        return TracedOrder(order: order, product: product, customer: customer, traceId: traceId, callerSpan: callerSpan)
    }
}
