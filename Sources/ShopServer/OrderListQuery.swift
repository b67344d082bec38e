import Common
import Hummingbird

/// `GET /orders?all=true&limit=50&startingAfter=ord_…`. Pagination is the
/// Stripe way: newest first, `limit` per page (default 100, at most 1000),
/// and the last id of a page to ask for the next; `hasMore` says if there is one.
public struct OrderListQuery: Sendable {
    public var all = false
    public var limit = 100
    public var startingAfter: String?

    public init(_ query: Parameters) throws(ShopError) {
        if let all = query.get("all") {
            switch all {
            case "true", "1": self.all = true
            case "false", "0": self.all = false
            default: throw .invalid("all", "must be true or false")
            }
        }
        if let text = query.get("limit") {
            guard let limit = Int(text), (1...1000).contains(limit) else { throw .invalid("limit", "must be an integer from 1 to 1000") }
            self.limit = limit
        }
        if let after = query.get("startingAfter") {
            self.startingAfter = try Validate.id(after, field: "startingAfter")
        }
    }
}
