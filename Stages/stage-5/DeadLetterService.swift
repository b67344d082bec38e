import Auth
import Foundation
import Hummingbird
import Jobs
import Logging
import Messaging
import ServiceLifecycle
import ShopServer

/// The operations desk as a process of its own: the dead-letter office
/// files what lands in `<ns>.dead-letters` and answers the administrator's
/// two routes; from stage 5 it also shows the job queues in Redis
/// (`/admin/jobs`) and retries a failed job.
enum DeadLetterService {
    static func build(settings: Settings, dataDir: URL, messaging: ServiceMessaging, logger: Logger) throws -> (Router<ShopRequestContext>, [any Service]) {
        let credentials = try Credentials.load(dataDir: dataDir, settings: settings, logger: logger)
        let db = try DeadLetterOffice.openDatabase(at: dataDir.appendingPathComponent("dead-letters.sqlite"))
        let office = DeadLetterOffice(db: db, client: messaging.client, topology: messaging.topology, logger: logger)
        let router = ShopServerRunner.makeRouter()
        let auth = Authenticator(signer: credentials.signer)
        office.addRoutes(to: router, auth: auth)
        JobOffice(queues: WorkQueue.all.map(messaging.jobs.queue)).addRoutes(to: router, auth: auth)
        router.addServiceHealth(stage: ThisStage.number, name: "deadletter", db: db, messaging: messaging)
        return (router, [messaging.client, office.consumer])
    }
}
