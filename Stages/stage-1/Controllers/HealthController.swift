import Common
import Hummingbird
import ShopServer
import Storage

struct HealthController: Sendable {
    let db: DatabasePool

    /// The monolith has one dependency, its database: healthy if it answers.
    func health(_ request: Request, context: ShopRequestContext) async throws -> Response {
        let database: API.ServiceState = (try? await db.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1 ? .up : .down
        let health = API.Health(stage: 1, services: ["monolith": .up, "database": database])
        return Reply.json(health, status: health.isHealthy ? .ok : .serviceUnavailable)
    }
}
