import Common
import GRDB
import Hummingbird
import ShopClient
import ShopServer
import Storage

struct HealthController: Sendable {
    let db: any DatabaseWriter
    let users: ServiceClient
    let products: ServiceClient

    /// The entry point needs its database and both services: 503 when any
    /// of them is down, naming which.
    func health(_ request: Request, context: ShopRequestContext) async throws -> Response {
        async let user = users.isHealthy()
        async let product = products.isHealthy()
        let database = (try? await db.read { db in try Int.fetchOne(db, sql: "SELECT 1") }) == 1
        let health = API.Health(stage: ThisStage.number, services: [
            "monolith": .up, "database": database ? .up : .down,
            "user": await user ? .up : .down, "product": await product ? .up : .down,
        ])
        return Reply.json(health, status: health.isHealthy ? .ok : .serviceUnavailable)
    }
}
