import Accounts
import Events
import Common
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// The user service of stage 3, plus an outbox: `UserRegistered` is
/// written in the new account's own transaction, and the notification
/// service sends the welcome email when the event reaches it.
extension UserService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) async throws -> (Router<ShopRequestContext>, [any Service]) {
        let db = try UserService.openDatabase(dataDir: dataDir, adding: MessagingSchema.migrations)
        let relay = messaging.relay(for: db)
        let router = try await UserService.build(
            stage: ThisStage.number, settings: settings, dataDir: dataDir, db: db, logger: logger,
            afterSignUp: { db, user, requestId in
                try Outbox.add(try messaging.event(
                    UserRegistered(userId: user.id, email: user.email, name: user.name), correlationId: user.id, requestId: requestId), in: db)
            },
            committed: { relay.wake() })
        return (router, [messaging.client, relay])
    }
}
