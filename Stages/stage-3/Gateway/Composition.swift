import Auth
import Common
import Discovery
import Foundation
import Hummingbird
import Logging
import ShopClient
import ShopServer

/// The answers the gateway composes from several services.
struct Composition: Sendable {
    let users: DiscoveredService
    let products: DiscoveredService
    let orders: DiscoveredService
    let signer: TokenSigner
    let logger: Logger

    /// `/users/me/summary`: the user, the five newest orders and the
    /// notification count, asked of two services at the same time.
    func summary(token: String, context: ShopRequestContext) async throws -> Response {
        async let user: API.User = users.get("/users/me", token: token, requestId: context.requestId)
        async let recent: API.OrderList = orders.get("/orders?limit=5", token: token, requestId: context.requestId)
        async let notifications: API.ItemList<API.Notification> = orders.get("/notifications", token: token, requestId: context.requestId)
        return Reply.json(API.UserSummary(user: try await user, recentOrders: try await recent.items, notifications: try await notifications.items.count))
    }

    /// The user service creates the account; then the order service writes
    /// the welcome email. No transaction spans the two: if the second call
    /// keeps failing, the account exists without its email, and the log says
    /// so. (Stage 4 replaces this call with a message and an outbox.)
    func signUp(_ request: Request, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.SignUpRequest.self)
        let user: API.User = try await users.send("POST", "/users", json: body, requestId: context.requestId)
        await afterwards("welcome email", userId: user.id) {
            let _: Empty = try await orders.send("POST", "/internal/welcome", json: OrderService.Welcome(user: user), token: serviceToken(), requestId: context.requestId)
        }
        return Reply.json(user, status: .created)
    }

    /// The product service creates the product; then the order service makes
    /// its stock row. The initial stock is checked first, so a bad one
    /// creates nothing.
    func createProduct(_ request: Request, token: String, context: ShopRequestContext) async throws -> Response {
        var request = request
        let body = try await request.decodeJSON(API.CreateProductRequest.self)
        let stock = try Validate.initialStock(body.initialStock ?? 0)
        let product: API.Product = try await products.send("POST", "/products", json: body, token: token, requestId: context.requestId)
        await afterwards("stock row", userId: nil) {
            let _: Empty = try await orders.send(
                "POST", "/internal/stock", json: OrderService.InitialStock(productId: product.id, initialStock: stock),
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
                    logger.error("could not write the \(what) in the order service; it is missing", metadata: [
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
