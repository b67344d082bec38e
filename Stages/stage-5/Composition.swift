import Auth
import Common
import Discovery
import Foundation
import Gateway
import Hummingbird
import Logging
import ShopServer

/// The answers the gateway composes from several services: what the
/// monolith did in one transaction, now a sequence of calls.
struct Composition: Sendable {
    let edge: GatewayEdge
    let signer: TokenSigner
    let logger: Logger

    var users: DiscoveredService { edge.services["user"]! }
    var orders: DiscoveredService { edge.services["order"]! }
    var products: DiscoveredService { edge.services["product"]! }
    /// Who keeps notifications and stock: services of their own now.
    var notifications: DiscoveredService { edge.services["notification"]! }
    var inventory: DiscoveredService { edge.services["inventory"]! }

    /// `/users/me/summary`: the user, the five newest orders and the
    /// notification count, asked of two services at the same time.
    func summary(token: String, context: ShopRequestContext) async throws -> Response {
        async let user: API.User = users.get("/users/me", token: token, requestId: context.requestId)
        async let recent: API.OrderList = orders.get("/orders?limit=5", token: token, requestId: context.requestId)
        async let sent: API.ItemList<API.Notification> = notifications.get("/notifications", token: token, requestId: context.requestId)
        return Reply.json(API.UserSummary(user: try await user, recentOrders: try await recent.items, notifications: try await sent.items.count))
    }

    /// The product service creates the product; then the service that keeps
    /// stock makes its stock row,
    /// before the answer, so that the stock can be read as soon as the
    /// product exists. The initial stock is checked first, so a bad one
    /// creates nothing.
    func createProduct(_ request: Request, token: String, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.CreateProductRequest.self)
        let stock = try Validate.initialStock(body.initialStock ?? 0)
        let product: API.Product = try await products.send("POST", "/products", json: body, token: token, requestId: context.requestId)
        await afterwards("stock row", userId: nil) {
            let _: Empty = try await inventory.send(
                "POST", "/internal/stock", json: InternalCalls.InitialStock(productId: product.id, initialStock: stock),
                token: serviceToken(), requestId: context.requestId)
        }
        return Reply.json(product, status: .created)
    }

    /// The gateway's own token for the internal calls: an administrator
    /// that is not a person.
    func serviceToken() -> String {
        signer.sign(Principal(userId: "svc_gateway", email: "gateway@shop.local", name: "Gateway", role: .admin))
    }

    /// A few tries with a short backoff, then a loud log line.
    private func afterwards(_ what: String, userId: String?, _ call: @Sendable () async throws -> Void) async {
        for attempt in 1...3 {
            do { return try await call() } catch {
                if attempt == 3 {
                    logger.error("could not write the \(what); it is missing", metadata: [
                        "user_id": .string(userId ?? "-"), "error": .string("\(error)")])
                    return
                }
                try? await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
    }

    /// An empty answer (`{}`).
    struct Empty: Decodable {}
}

/// The calls the gateway makes to services for writes that follow another
/// service's, as the services receive them.
enum InternalCalls {
    struct InitialStock: Codable, Sendable {
        var productId: String
        var initialStock: Int
    }
}
