import Common
import GRDB
import Hummingbird
import ShopServer
import Storage

struct HealthController: Sendable {
    let db: any DatabaseWriter

    /// The monolith has one dependency, its database: healthy if it answers.
    func health(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let database: API.ServiceState = (try? await db.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1 ? .up : .down
        let health = API.Health(stage: ThisStage.number, services: ["monolith": .up, "database": database])
        return Reply.json(health, status: health.isHealthy ? .ok : .serviceUnavailable)
    }
}
