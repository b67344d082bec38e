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
enum UserApp {
    static func build(stage: Int, dataDir: URL, messaging: ServiceMessaging, logger: Logger) async throws -> (Router<ShopRequestContext>, [any Service]) {
        let db = try UserServiceApp.openDatabase(dataDir: dataDir) { MessagingSchema.register(in: &$0) }
        let relay = messaging.relay(for: db)
        let router = try await UserServiceApp.build(
            stage: stage, dataDir: dataDir, db: db, logger: logger,
            afterSignUp: { db, user in
                try Outbox.add(try OutgoingMessage(type: Topic.userRegistered, json: UserRegistered(user: user)), in: db)
            },
            committed: { relay.wake() })
        return (router, [messaging.client, relay])
    }
}

/// The dead-letter office as a process of its own: it files what lands in
/// `<ns>.dead-letters` and answers the administrator's two routes.
enum DeadLetterApp {
    static func build(stage: Int, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let settings = try ShopSettings.load(dataDir: dataDir, logger: logger)
        let db = try DeadLetterOffice.openDatabase(at: dataDir.appendingPathComponent("dead-letters.sqlite"))
        let office = DeadLetterOffice(db: db, client: messaging.client, topology: messaging.topology, logger: logger)
        let router = ShopServerRunner.makeRouter()
        office.addRoutes(to: router, auth: Authenticator(signer: settings.signer))
        router.addServiceHealth(stage: stage, name: "deadletter", db: db, messaging: messaging)
        return (router, [messaging.client, office.consumer])
    }
}
