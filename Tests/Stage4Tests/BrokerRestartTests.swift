import AsyncStageSupport
import Common
import Foundation
import ShopClient
import TestSupport
import Testing

/// Restarts the shared RabbitMQ, so scripts/test runs it on its own, after
/// everything else (its name starts with `brokerRestart`).
@Suite("Stage 4: RabbitMQ restart")
struct BrokerRestartTests {
    @Test("restart RabbitMQ in the middle of a burst: every order is placed and decided, nothing lost or doubled")
    func brokerRestartMidBurst() async throws {
        let deployment = try await Deployment.start(stage: 4)
        defer { deployment.stage.requestStop() }
        let traffic = try await Traffic.prepare(deployment, scarceStock: 5, label: "burst")
        let running = traffic.run()
        try await traffic.waitFor(20)

        let down = try await runProcess(Repository.infraScript, ["down", "rabbitmq"], timeout: .seconds(90))
        #expect(down.status == 0, "infra down: \(down.stderr)")
        let stillUp = (try? await runProcess("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/5672"], timeout: .seconds(5)))?.status == 0
        #expect(!stillUp, "the RabbitMQ on 5672 was not this checkout's, so it was not restarted")
        // Orders are still taken while the broker is away: they wait in the
        // order service's outbox.
        try await traffic.waitFor(15)
        let up = try await runProcess(Repository.infraScript, ["up", "rabbitmq"], timeout: .seconds(120))
        #expect(up.status == 0, "infra up: \(up.stderr)")
        try await traffic.waitFor(15)
        running.cancel()
        await running.value

        let orders = await traffic.ledger.orders
        let failures = await traffic.ledger.failures
        #expect(failures.isEmpty, "placing never failed: \(failures)")
        try await verifyEverythingAppliedOnce(deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 5)], customers: traffic.customers, within: .seconds(120))
        #expect(try await deployment.deadLetters().isEmpty)
        try await deployment.finish()
    }
}
