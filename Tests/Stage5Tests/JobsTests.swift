import AsyncStageSupport
import Common
import Foundation
import Mail
import Messaging
import ShopClient
import TestSupport
import Testing

/// Stage 5 against real Redis, RabbitMQ and processes: the workers killed
/// in the middle of their jobs, the order deadline, the administrator's
/// view of the queues and a retry. Each test runs a deployment of its own
/// (own queues in RabbitMQ, own key prefix in Redis); one test at a time,
/// as they are heavy on a two-core machine.
@Suite("Stage 5: jobs", .serialized)
struct JobsTests {
    /// Locks of 2 s instead of BullMQ's 30: a job whose worker was killed
    /// comes back within about 4 s, which keeps the tests short.
    static let quickLocks = ["JOB_LOCK_MS": "2000"]

    @Test("kill -9 the email and payment workers under traffic, during backoffs too: every order decided; one charge, one email of each kind, one invoice per order")
    func killWorkers() async throws {
        let deployment = try await Deployment.start(stage: 5, Self.quickLocks)
        defer { deployment.stage.requestStop() }
        let traffic = try await Traffic.prepare(deployment, scarceStock: 6, label: "jobkill")
        let running = traffic.run()

        // A quarter of the orders use the card that fails twice, so at any
        // moment some charge jobs wait out their backoff: a kill lands among
        // them. Each worker is killed twice: the second time it is the copy
        // started by hand after the first.
        let restarted = try await traffic.killInTurn(["payment", "notification", "payment", "notification"], before: 10, after: 6)
        defer { for process in restarted { process.requestStop() } }
        try await traffic.waitFor(10)
        running.cancel()
        await running.value

        let orders = await traffic.ledger.orders
        #expect(orders.count >= 50)
        try await verifyEverythingAppliedOnce(
            deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 6)],
            customers: traffic.customers, within: .seconds(90))
        try await verifyMailAndInvoices(deployment, customers: traffic.customers)
        #expect(try await deployment.deadLetters().isEmpty, "a crash is not a reason to dead-letter anything")
        for process in restarted { await process.stop() }
        try await deployment.finish()
    }

    @Test("the order nobody answers: with the payment service down, the deadline cancels the order and gives its stock back; a late charge is refunded")
    func orderDeadline() async throws {
        let deployment = try await Deployment.start(stage: 5, ["ORDER_DEADLINE_SECONDS": "3"])
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let customer = try await api.newCustomer("deadline")
        let product = try await api.createProduct(
            .init(sku: "DL-\(ID.make("x").dropFirst(2))", name: "Waiting", priceCents: 2_500, initialStock: 4), adminToken: deployment.admin.token)

        let payment = try #require(deployment.stage.child(serving: "payment"))
        kill(payment, SIGKILL)
        let placed: API.Order = try await api.placeOrder([(product.id, 2)], token: customer.token).expect(201)
        #expect(placed.status == .pending)

        let cancelled = try await api.decidedOrder(placed.id, token: customer.token, within: .seconds(20))
        #expect(cancelled.status == .cancelled && cancelled.cancelReason == .paymentDeclined, "\(cancelled.status) \(String(describing: cancelled.cancelReason))")
        #expect(cancelled.payment.chargedCents - cancelled.payment.refundedCents == 0)
        let stock = try await Poll.until("the units are back", within: .seconds(10)) {
            let stock = try await api.inventory(product.id)
            return stock.reserved == 0 ? stock : nil
        }
        #expect(stock.available == 4)
        let job = try await deployment.job("orders", "order:deadline:\(placed.id)")
        #expect(job.state == "completed")

        // The payment service comes back and charges the order it had not
        // heard of: the order service refunds the late capture.
        let restarted = try await deployment.restart("payment")
        defer { restarted.requestStop() }
        let settled = try await Poll.until("the late charge is refunded", within: .seconds(20)) {
            let order = try await api.order(placed.id, token: customer.token)
            return order.payment.status == .refunded ? order : nil
        }
        #expect(settled.status == .cancelled && settled.payment.chargedCents == 5_000 && settled.payment.refundedCents == 5_000)
        let movements = try await Poll.until("the refund is recorded", within: .seconds(10)) {
            let rows = try deployment.moneyMovements().filter { $0.orderId == placed.id }
            return rows.count == 2 ? rows : nil
        }
        #expect(Set(movements.map(\.kind)) == ["charge", "refund"])
        #expect(try await api.inventory(product.id).available == 4, "stock stays given back")
        await restarted.stop()
        try await deployment.finish()
    }

    @Test("/admin/jobs: counts, a failed payment job listed with its reason, retried by the administrator, and the order confirmed")
    func adminJobsAndRetry() async throws {
        // One attempt for the charge job: the card that fails twice fails it.
        let deployment = try await Deployment.start(stage: 5, ["PAYMENT_ATTEMPTS": "1", "PAYMENT_RETRY_BASE_MS": "50"])
        defer { deployment.stage.requestStop() }
        let api = deployment.api
        let admin = deployment.admin.token
        let customer = try await api.newCustomer("retry")
        let product = try await api.createProduct(
            .init(sku: "JR-\(ID.make("x").dropFirst(2))", name: "Retried", priceCents: 1_200, initialStock: 2), adminToken: admin)
        let placed: API.Order = try await api.placeOrder([(product.id, 1)], card: SimulatedCardProcessor.flakyCard, token: customer.token).expect(201)
        let jobId = "payment:charge:\(placed.id)"

        let failed = try await Poll.until("the charge job has failed", within: .seconds(15)) {
            let page: JobList = try await api.call("GET", "/admin/jobs/payments?state=failed&limit=100", token: admin).expect(200)
            return page.items.first { $0.id == jobId }
        }
        #expect(failed.state == "failed" && failed.queue == "payments" && failed.name == "charge")
        #expect(failed.attemptsMade == 1 && failed.maxAttempts == 1)
        #expect(failed.failedReason?.contains("transient error (attempt 2)") == true, "\(failed.failedReason ?? "-")")
        #expect(failed.data["orderId"] == .string(placed.id) && failed.data["card"] == nil, "the job has the order, not the card")
        #expect(try await api.order(placed.id, token: customer.token).status == .pending, "the order waits, within its deadline")

        let summary: QueueSummaries = try await api.call("GET", "/admin/jobs", token: admin).expect(200)
        #expect(Set(summary.queues.map(\.name)).isSuperset(of: ["emails", "invoices", "payments", "orders"]))
        #expect((summary.queues.first { $0.name == "payments" }?.counts["failed"] ?? 0) >= 1)
        #expect((summary.queues.first { $0.name == "orders" }?.counts["delayed"] ?? 0) >= 1, "the order's deadline waits in orders")

        let retried: JobEntry = try await api.call("POST", "/admin/jobs/payments/\(jobId)/retry", token: admin).expect(202)
        #expect(retried.id == jobId && retried.attemptsMade == 1)
        let order = try await api.decidedOrder(placed.id, token: customer.token, within: .seconds(15))
        #expect(order.status == .confirmed && order.payment.chargedCents == 1_200)
        let done = try await Poll.until("the job completes", within: .seconds(10)) {
            let job = try await deployment.job("payments", jobId)
            return job.state == "completed" ? job : nil
        }
        #expect(done.returnValue?["outcome"] == .string("approved on attempt 3"), "\(String(describing: done.returnValue))")

        // The errors the contract names.
        let again = try await api.call("POST", "/admin/jobs/payments/\(jobId)/retry", token: admin)
        #expect(again.status == 409 && again.text.contains("job_not_failed"), "\(again.status) \(again.text)")
        #expect(try await api.call("GET", "/admin/jobs/nosuchqueue", token: admin).status == 404)
        #expect(try await api.call("GET", "/admin/jobs/payments/nosuchjob", token: admin).status == 404)
        #expect(try await api.call("POST", "/admin/jobs/payments/nosuchjob/retry", token: admin).status == 404)
        let badState = try await api.call("GET", "/admin/jobs/payments?state=sleeping", token: admin)
        #expect(badState.status == 400 && badState.text.contains("state"))
        #expect(try await api.call("GET", "/admin/jobs/payments?limit=0", token: admin).status == 400)
        #expect(try await api.call("GET", "/admin/jobs", token: customer.token).status == 403)
        #expect(try await api.call("GET", "/admin/jobs").status == 401)
        try await deployment.finish()
    }
}

/// Restarts the shared Redis, so scripts/test runs it on its own, after
/// everything else (its name starts with `brokerRestart`).
@Suite("Stage 5: Redis restart")
struct RedisRestartTests {
    @Test("restart Redis in the middle of a burst: every order decided, no job lost or doubled")
    func brokerRestartRedisMidBurst() async throws {
        let deployment = try await Deployment.start(stage: 5, JobsTests.quickLocks)
        defer { deployment.stage.requestStop() }
        let traffic = try await Traffic.prepare(deployment, scarceStock: 5, label: "redis")
        let running = traffic.run()
        try await traffic.waitFor(20)

        let down = try await runProcess(Repository.infraScript, ["down", "redis"], timeout: .seconds(60))
        #expect(down.status == 0, "infra down: \(down.stderr)")
        // Orders are still taken, and decided (RabbitMQ carries them); their
        // jobs wait in the outboxes.
        try await traffic.waitFor(15)
        let up = try await runProcess(Repository.infraScript, ["up", "redis"], timeout: .seconds(60))
        #expect(up.status == 0, "infra up: \(up.stderr)")
        try await traffic.waitFor(15)
        running.cancel()
        await running.value

        let orders = await traffic.ledger.orders
        let failures = await traffic.ledger.failures
        #expect(failures.isEmpty, "placing never failed: \(failures)")
        try await verifyEverythingAppliedOnce(
            deployment, orders: orders, products: [(traffic.plenty, Traffic.plentyStock), (traffic.scarce, 5)],
            customers: traffic.customers, within: .seconds(120))
        try await verifyMailAndInvoices(deployment, customers: traffic.customers)
        try await deployment.finish()
    }
}

/// Every decided order's email is in the Maildir exactly once (one file per
/// kind and order, and no other), and every confirmed order has its invoice.
func verifyMailAndInvoices(_ deployment: Deployment, customers: [Session]) async throws {
    let api = deployment.api
    let maildir = Maildir(root: deployment.stage.dataDir.appendingPathComponent("notification/mail"))
    for customer in customers {
        let notifications = try await api.call("GET", "/notifications", token: customer.token).expect(200, as: API.ItemList<API.Notification>.self).items
        for note in notifications {
            let key = "email:\(note.kind.rawValue):\(note.orderId ?? customer.user.id)"
            let file = try #require(try maildir.find(key), "the email \(key) is in the Maildir")
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.contains("To: ") && text.contains(customer.user.email) && text.contains("multipart/alternative"), "\(key) is a real email")
        }
        let orders: API.OrderList = try await api.call("GET", "/orders?limit=1000", token: customer.token).expect(200)
        for order in orders.items where order.status == .confirmed || order.status == .shipped {
            _ = try await Poll.until("the invoice of \(order.id) is written", within: .seconds(20)) {
                try await api.call("GET", "/orders/\(order.id)/invoice", token: customer.token).status == 200 ? true : nil
            }
        }
    }
    let files = try maildir.messages().map(\.lastPathComponent)
    #expect(files.count == Set(files).count)
    var expected = 0
    for customer in customers {
        expected += try await api.call("GET", "/notifications", token: customer.token).expect(200, as: API.ItemList<API.Notification>.self).items.count
    }
    // Other users (the administrator has no welcome) send nothing else.
    #expect(files.count == expected, "one email per notification, no more: \(files.count) files, \(expected) notifications")
}

// MARK: /admin/jobs as the tests read it

struct JobEntry: Codable, Sendable {
    var id: String
    var queue: String
    var name: String
    var state: String
    var data: JSONValue
    var attemptsMade: Int
    var maxAttempts: Int
    var failedReason: String?
    var returnValue: JSONValue?
    var createdAt: Date
    var processedAt: Date?
    var finishedAt: Date?
    var delayUntil: Date?
}

struct JobList: Codable, Sendable { var items: [JobEntry] }

struct QueueSummaries: Codable, Sendable {
    struct Queue: Codable, Sendable {
        var name: String
        var counts: [String: Int]
    }
    var queues: [Queue]
}

extension Deployment {
    func job(_ queue: String, _ id: String) async throws -> JobEntry {
        try await api.call("GET", "/admin/jobs/\(queue)/\(id)", token: admin.token).expect(200)
    }
}
