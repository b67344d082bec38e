import Auth
import Foundation
import Hummingbird
import Logging
import Messaging
import ServiceLifecycle
import ShopServer

/// The dead-letter office as a process of its own: it files what lands in
/// `<ns>.dead-letters` and answers the administrator's two routes.
enum DeadLetterService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let db = try DeadLetterOffice.openDatabase(at: dataDir.appendingPathComponent("dead-letters.sqlite"))
        let office = DeadLetterOffice(db: db, client: messaging.client, topology: messaging.topology, logger: logger)
        let router = ShopServerRunner.makeRouter()
        office.addRoutes(to: router, auth: Authenticator(signer: credentials.signer))
        router.addServiceHealth(stage: ThisStage.number, name: "deadletter", db: db, messaging: messaging)
        return (router, [messaging.client, office.consumer])
    }
}
