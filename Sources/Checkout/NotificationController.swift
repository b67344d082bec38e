import Auth
import Common
import Hummingbird
import ShopServer

public struct NotificationController: Sendable {
    let notifications: Notifications
    let auth: Authenticator

    func list(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let principal = try auth.principal(request, context: context)
        return Reply.json(API.ItemList(items: try await notifications.list(userId: principal.userId)))
    }
}
