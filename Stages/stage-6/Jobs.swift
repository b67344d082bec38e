import Common
import Foundation
import Jobs
import Messaging
import Mail
import ShopServer

// The work of stage 5 that is done later, or again: jobs in BullMQ's
// layout on Redis. RabbitMQ still carries the order's messages (a fact
// for whoever listens, now); a job is one piece of work for one kind of
// worker, which may wait (delay), be tried again (attempts and backoff),
// fail for good where an administrator sees it, and be retried by hand.
//
//   queue      added by                         done by                what it does
//   emails     notification (a message about    notification          renders the email, puts it in the
//              a customer's account or order)                          Maildir, records the notification
//   invoices   order (the order is confirmed)   order                 writes the invoice
//   payments   payment (a transient card error) payment               charges again, with exponential backoff
//   orders     order (the order is placed)      order                 cancels the order if it is still pending
//                                                                     after the deadline
//   housekeeping-<service>  a job scheduler    that service          forgets old inbox ids, every hour
//
// Every job is added through the service's outbox, in the transaction of
// the change that causes it, under an id made from its business key
// (`email:order_confirmed:<orderId>`): a relay that sends twice adds once,
// and the worker's effect is idempotent besides.

enum WorkQueue {
    static let emails = "emails"
    static let invoices = "invoices"
    static let payments = "payments"
    static let orders = "orders"
    /// Per service: a job is taken by one worker, and each service prunes
    /// its own database.
    static func housekeeping(_ service: String) -> String { "housekeeping-\(service)" }

    /// What `/admin/jobs` lists.
    static let all = [emails, invoices, payments, orders] + ["order", "inventory", "payment", "notification"].map(housekeeping)
}

/// The knobs of this stage's jobs, from the environment (defaults in brackets).
struct JobPolicy: Sendable {
    /// `ORDER_DEADLINE_SECONDS` [300]: an order still pending this long
    /// after it was placed is cancelled. Well above the payment retries'
    /// total (3.2 s with the defaults: 200 ms before the first, then 200,
    /// 400, 800 and 1,600 ms), so only an order nobody answers reaches it.
    var orderDeadline: Duration
    /// `PAYMENT_ATTEMPTS` [5] and `PAYMENT_RETRY_BASE_MS` [200]: the charge
    /// job's attempts after the first, failed charge, and its backoff
    /// (200 ms, 400 ms, 800 ms, 1.6 s...).
    var paymentAttempts: Int
    var paymentBackoffMilliseconds: Int
    /// `EMAIL_RATE_LIMIT` [50] emails per `EMAIL_RATE_PERIOD_MS` [1000]: as
    /// an email provider would limit a sender.
    var emailRate: (max: Int, per: Duration)
    /// `HOUSEKEEPING_EVERY_SECONDS` [3600]: how often a service prunes its inbox.
    var housekeepingEvery: Duration
    /// `JOB_LOCK_MS` [30000]: how long a worker's lock on a job lasts
    /// unrenewed, which is how long a job whose worker died waits before
    /// another worker takes it back (BullMQ's default; the tests shorten it).
    var lockDuration: Duration

    init(settings: Settings) {
        func positive(_ name: String) -> Int? { settings.int(name).flatMap { $0 > 0 ? $0 : nil } }
        orderDeadline = .seconds(positive("ORDER_DEADLINE_SECONDS") ?? 300)
        paymentAttempts = positive("PAYMENT_ATTEMPTS") ?? 5
        paymentBackoffMilliseconds = settings.paymentRetryBaseMilliseconds ?? 200
        emailRate = (positive("EMAIL_RATE_LIMIT") ?? 50, .milliseconds(positive("EMAIL_RATE_PERIOD_MS") ?? 1_000))
        housekeepingEvery = .seconds(positive("HOUSEKEEPING_EVERY_SECONDS") ?? 3_600)
        lockDuration = .milliseconds(positive("JOB_LOCK_MS") ?? 30_000)
    }

    /// Finished jobs are kept for a while, so `/admin/jobs` and the `jobs`
    /// tool can show them, but not for ever: Redis keeps everything in memory.
    static let keepCompleted: KeepJobs = .count(1_000)
    static let keepFailed: KeepJobs = .count(5_000)
}

// MARK: The jobs' data
//
// What a job carries is visible to anyone who can read Redis, and shown by
// `/admin/jobs`: never a full card number (the payment service keeps the
// card in its own database, for the retries).

struct EmailJob: Codable, Sendable {
    var kind: API.NotificationKind
    var orderId: String?
    var userId: String
    var to: String
    var name: String

    /// The business key: one email of a kind per order (per user for welcome).
    var key: String { "email:\(kind.rawValue):\(orderId ?? userId)" }
}

struct InvoiceJob: Codable, Sendable {
    var orderId: String
}

struct ChargeJob: Codable, Sendable {
    var orderId: String
    var amountCents: Int
    var cardLast4: String
    /// Stage 6: the event the charge answers (`InventoryReserved`), for the
    /// envelope of the payment's outcome.
    var causationId: String?
}

struct DeadlineJob: Codable, Sendable {
    var orderId: String
}

/// The one line of data a finished job keeps as its return value.
struct JobOutcome: Codable, Sendable {
    var outcome: String
}

extension OutgoingMessage {
    static func email(_ email: EmailJob) throws -> OutgoingMessage {
        try .job(queue: WorkQueue.emails, name: "send", payload: email, options: JobOptions(
            jobId: email.key, attempts: 5, backoff: .exponential(milliseconds: 1_000),
            removeOnComplete: JobPolicy.keepCompleted, removeOnFail: JobPolicy.keepFailed))
    }

    static func invoice(orderId: String) throws -> OutgoingMessage {
        try .job(queue: WorkQueue.invoices, name: "generate", payload: InvoiceJob(orderId: orderId), options: JobOptions(
            jobId: "invoice:\(orderId)", attempts: 5, backoff: .exponential(milliseconds: 1_000),
            removeOnComplete: JobPolicy.keepCompleted, removeOnFail: JobPolicy.keepFailed))
    }

    static func charge(_ charge: ChargeJob, policy: JobPolicy) throws -> OutgoingMessage {
        try .job(queue: WorkQueue.payments, name: "charge", payload: charge, options: JobOptions(
            jobId: "payment:charge:\(charge.orderId)", delay: .milliseconds(policy.paymentBackoffMilliseconds),
            attempts: policy.paymentAttempts, backoff: .exponential(milliseconds: policy.paymentBackoffMilliseconds),
            removeOnComplete: JobPolicy.keepCompleted, removeOnFail: JobPolicy.keepFailed))
    }

    static func deadline(orderId: String, policy: JobPolicy) throws -> OutgoingMessage {
        try .job(queue: WorkQueue.orders, name: "deadline", payload: DeadlineJob(orderId: orderId), options: JobOptions(
            jobId: "order:deadline:\(orderId)", delay: policy.orderDeadline, attempts: 5, backoff: .exponential(milliseconds: 1_000),
            removeOnComplete: JobPolicy.keepCompleted, removeOnFail: JobPolicy.keepFailed))
    }
}

// MARK: The emails

/// What the shop writes to its customers: the notification's subject, a
/// few lines of text, and the same as simple HTML.
enum EmailText {
    static let sender = Email.Address(name: "The Shop", email: "orders@shop.local")

    static func render(_ job: EmailJob, at date: Date) -> Email {
        let subject = NotificationText.subject(job.kind, orderId: job.orderId, userName: job.name)
        let order = job.orderId ?? ""
        let lines: [String] = switch job.kind {
        case .welcome: ["Your account is ready.", "You can sign in with \(job.to) and place your first order."]
        case .orderConfirmed: ["We have your payment and your items are set aside.", "Your invoice for order \(order) is at GET /orders/\(order)/invoice."]
        case .orderCancelled: ["Order \(order) was cancelled. Anything you paid is refunded in full."]
        case .orderShipped: ["Order \(order) is on its way."]
        }
        let text = (["Hello \(job.name),", ""] + lines + ["", "The Shop"]).joined(separator: "\n")
        let html = "<html><body><p>Hello \(escape(job.name)),</p>"
            + lines.map { "<p>\(escape($0))</p>" }.joined()
            + "<p>The Shop</p></body></html>"
        return Email(
            from: sender, to: Email.Address(name: job.name, email: job.to), subject: subject, text: text, html: html,
            messageId: "\(job.key.replacingOccurrences(of: ":", with: "."))@shop.local", date: date)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
