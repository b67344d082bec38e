import Accounts
import Common
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer
import Storage

/// The user service of stage 3, plus an outbox: `user.registered` is
/// written in the new account's own transaction, and the notification
/// service writes the welcome email when the message reaches it. In stage 3
/// the gateway made a second call for that, which could fail after the
/// account existed; now the account and its announcement commit together.
extension UserService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) async throws -> (Router<ShopRequestContext>, [any Service]) {
        let db = try UserService.openDatabase(dataDir: dataDir, adding: MessagingSchema.migrations)
        let relay = messaging.relay(for: db)
        let router = try await UserService.build(
            stage: ThisStage.number, settings: settings, dataDir: dataDir, db: db, logger: logger,
            afterSignUp: { db, user, _ in
                try Outbox.add(try OutgoingMessage(type: Topic.userRegistered, json: UserRegistered(user: user)), in: db)
            },
            committed: { relay.wake() })
        return (router, [messaging.client, relay])
    }
}
