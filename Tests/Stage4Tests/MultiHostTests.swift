import AsyncStageSupport
import Foundation
import TestSupport
import Testing

/// Stage 4 spread over several hosts: scripts/multihost makes them (network
/// namespaces joined by veth pairs: the brokers on one, the services on
/// two, the gateway on a fourth) and runs this test against them. Outside
/// that script there are no such hosts, and the test is skipped.
@Suite("Stage 4 on several hosts")
struct MultiHostTests {
    /// What scripts/multihost tells the test about the hosts it made.
    struct Hosts {
        let gatewayURL: String
        let namespace: String
        let paymentData: URL
        let script: String
        /// The host whose services the test kills.
        let victim: String

        static var current: Hosts? {
            let env = ProcessInfo.processInfo.environment
            guard let url = env["MULTIHOST_GATEWAY_URL"], let namespace = env["MULTIHOST_NAMESPACE"],
                let payment = env["MULTIHOST_PAYMENT_DATA"], let script = env["MULTIHOST_SCRIPT"], let victim = env["MULTIHOST_VICTIM"]
            else { return nil }
            return Hosts(gatewayURL: url, namespace: namespace, paymentData: URL(fileURLWithPath: payment), script: script, victim: victim)
        }

        /// `scripts/multihost kill|start <host>`.
        func run(_ verb: String) async throws {
            let result = try await runProcess(script, [verb, victim], timeout: .seconds(120))
            guard result.status == 0 else {
                throw LaunchError("scripts/multihost \(verb) \(victim) failed (\(result.status)): \(result.stderr.suffix(2000))")
            }
            print(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    @Test(
        "kill -9 every service of one host under traffic, then start them again there: every order is decided; stock, charges and emails apply once",
        .enabled(if: Hosts.current != nil, "runs only under scripts/multihost, which makes the hosts"))
    func multiHostKillOneHost() async throws {
        let hosts = try #require(Hosts.current)
        let deployment = try await Deployment.attach(
            stage: 4, baseURL: hosts.gatewayURL, namespace: hosts.namespace, paymentData: hosts.paymentData)
        let traffic = try await Traffic.prepare(deployment, scarceStock: 6, label: "hosts")
        let running = traffic.run()

        try await traffic.waitFor(20)
        try await hosts.run("kill")
        // Orders are still accepted while the host is away: the order
        // service keeps them in its outbox and RabbitMQ keeps the messages.
        try await traffic.waitFor(40)
        try await hosts.run("start")
        try await traffic.waitFor(20)
        running.cancel()
        await running.value

        let orders = await traffic.ledger.orders
        #expect(orders.count >= 80)
        try await verifyEverythingAppliedOnce(
            deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 6)], customers: traffic.customers)
        #expect(try await deployment.deadLetters().isEmpty, "a crash is not a reason to dead-letter anything")
    }
}
