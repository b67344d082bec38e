// streams-bench: what stage 7's streaming parts get out of the broker, next
// to the Kafka client's raw producer on the same broker in the same run.
//
//   swift run -c release streams-bench [--events N] [--bootstrap HOST:PORT]
//
// Three figures:
//   relay    N OrderCreated events (valid CloudEvents, ~700 bytes) written to
//            an outbox table, then sent by the outbox relay to a 3-partition
//            topic through KafkaDestination exactly as stage 7 sends them
//            (acks=all, not idempotent, one request in flight, batches of
//            256 read from SQLite, each deleted once acknowledged): events/s
//            from the relay's start to an empty outbox
//   raw      the same N records sent by a KafkaProducer with the same
//            settings, in batches of 256 awaited one after the other (the
//            relay's pattern without the database): records/s
//   replay   a read model (ReadModel, as stage 7's reporting: one SQLite
//            transaction per event with its position and event id) reads the
//            N events into generation 1, then is replayed into generation 2:
//            events/s for each, from the first record to the switch
//
// The figures are printed, not checked (the machine is shared and noisy).
// Run it against the durable broker (`scripts/infra up kafka`, the default)
// or KAFKA_STORAGE=memory, and say which.

import Events
import Foundation
import GRDB
import Kafka
import Logging
import Messaging
import ServiceLifecycle
import Storage
import Streams

do {
    try RdKafkaLibrary.bootstrap(environment: ProcessInfo.processInfo.environment)
} catch {
    FileHandle.standardError.write(Data("streams-bench: \(error.message)\n".utf8))
    exit(70)
}

struct Options {
    var events = 100_000
    var bootstrap = "127.0.0.1:\(ProcessInfo.processInfo.environment["KAFKA_PORT"] ?? "9092")"

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--events": events = Int(iterator.next() ?? "") ?? events
            case "--bootstrap": bootstrap = iterator.next() ?? bootstrap
            default:
                print("usage: streams-bench [--events N] [--bootstrap HOST:PORT]")
                exit(argument == "-h" || argument == "--help" ? 0 : 1)
            }
        }
    }
}
let options = Options(CommandLine.arguments)
let events = options.events
let bootstrap = options.bootstrap

let logger: Logger = {
    var logger = Logger(label: "streams-bench")
    logger.logLevel = .warning
    return logger
}()

/// OrderCreated v3 as stage 7 publishes it (Stages/stage-7/Messages.swift).
struct OrderCreated: DomainEvent {
    static let name = "OrderCreated"
    static let version = 3
    struct Customer: Codable, Sendable { var userId: String; var email: String; var name: String }
    struct Line: Codable, Sendable { var productId: String; var sku: String?; var quantity: Int; var unitPriceCents: Int? }
    struct Money: Codable, Sendable { var amountCents: Int; var currency: String }
    var orderId: String
    var customer: Customer
    var items: [Line]
    var total: Money
    var card: String
    var subject: String { orderId }
}

func rate(_ count: Int, _ elapsed: Duration) -> String {
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return String(format: "%8.0f/s  (%d in %.2f s)", Double(count) / seconds, count, seconds)
}

func producerConfiguration() -> KafkaProducerConfiguration {
    var configuration = KafkaProducerConfiguration(bootstrapServers: options.bootstrap, clientID: "streams-bench")
    configuration.idempotent = false
    return configuration
}

let catalog = try EventCatalog(schemaRoot: EventCatalog.bundledSchemas)
let suffix = UUID().uuidString.prefix(8).lowercased()
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("streams-bench-\(suffix)")
try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: folder) }

print("streams-bench: \(events) events, broker \(bootstrap)")
let messages: [OutgoingMessage] = try (0..<events).map { index in
    let orderId = "ord_bench\(suffix)\(index)"
    let event = OrderCreated(
        orderId: orderId, customer: .init(userId: "usr_bench\(index % 50)", email: "c\(index % 50)@example.com", name: "Customer"),
        items: [.init(productId: "prd_bench\(index % 20)", sku: "SKU-\(index % 20)", quantity: 1 + index % 3, unitPriceCents: 500)],
        total: .init(amountCents: 500 * (1 + index % 3), currency: "USD"), card: "4242424242424242")
    return try catalog.message(event, source: "/shop/order", correlationId: orderId, requestId: "req_bench")
}

// MARK: relay

let relayTopic = "bench-relay-\(suffix)"
let outbox = try SQLiteStore.openPool(at: folder.appendingPathComponent("outbox.sqlite"), migrations: MessagingSchema.migrations)
for chunk in stride(from: 0, to: messages.count, by: 5_000) {
    let slice = Array(messages[chunk..<min(chunk + 5_000, messages.count)])
    try await outbox.write { db in try Outbox.add(slice, in: db) }
}
let destination = KafkaDestination(configuration: producerConfiguration(), topic: relayTopic, partitions: 3, logger: logger)
await destination.prepare()
let relay = OutboxRelay(db: outbox, destination: destination, logger: logger)
let relayStart = ContinuousClock.now
let relayTask = Task { try await relay.run() }
relay.wake()
while try await outbox.read({ db in try Int.fetchOne(db, sql: "SELECT count(*) FROM outbox") ?? 0 }) > 0 {
    try await Task.sleep(for: .milliseconds(20))
}
let relayElapsed = ContinuousClock.now - relayStart
relayTask.cancel()
print("relay    outbox → Kafka, stage 7's way          \(rate(events, relayElapsed))")

// MARK: raw

let rawTopic = "bench-raw-\(suffix)"
try await StreamSetup.createTopics([rawTopic], partitions: 3, bootstrap: bootstrap)
let producer = try KafkaProducer.make(configuration: producerConfiguration(), logger: logger)
let records = messages.map { EventRecords.record($0, topic: rawTopic) }
let rawStart = ContinuousClock.now
for chunk in stride(from: 0, to: records.count, by: 256) {
    _ = try await producer.send(Array(records[chunk..<min(chunk + 256, records.count)]))
}
let rawElapsed = ContinuousClock.now - rawStart
await producer.shutdown()
print("raw      KafkaProducer, batches of 256          \(rate(events, rawElapsed))")

// MARK: replay

let model = try SQLiteStore.openPool(
    at: folder.appendingPathComponent("model.sqlite"),
    migrations: ReadModel.migrations + [Migration("bench model", sql: """
        CREATE TABLE units (generation INTEGER NOT NULL, productId TEXT NOT NULL, units INTEGER NOT NULL,
                            PRIMARY KEY (generation, productId)) WITHOUT ROWID;
        """)])
var consumer = KafkaConsumerConfiguration(bootstrapServers: bootstrap, groupID: "bench-model-\(suffix)", topics: [relayTopic], clientID: "streams-bench")
consumer.fetchWaitMax = .milliseconds(500)
consumer.autoCommitStoredEvery = .seconds(1)
let readModel = ReadModel(
    name: "bench", db: model, consumer: consumer,
    deadLetters: DeadLetterTopic(topic: "bench-dead-letters-\(suffix)", partitions: 1, producer: producerConfiguration(), logger: logger),
    catalog: catalog, tables: ["units"], logger: logger
) { event, generation, db in
    let order = try event.decode(OrderCreated.self)
    for line in order.items {
        try db.execute(sql: """
            INSERT INTO units (generation, productId, units) VALUES (?, ?, ?)
            ON CONFLICT (generation, productId) DO UPDATE SET units = units + excluded.units
            """, arguments: [generation, line.productId, line.quantity])
    }
}
func applied(_ generation: Int) async throws -> Int {
    try await model.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM read_model_events WHERE generation = ?", arguments: [generation]) ?? 0 }
}
let modelTask = Task { try await readModel.run() }
// The first read starts when the first event is applied (the group join,
// about 3 s, is not counted).
while try await applied(1) == 0 { try await Task.sleep(for: .milliseconds(5)) }
let firstStart = ContinuousClock.now
while try await applied(1) < events { try await Task.sleep(for: .milliseconds(20)) }
print("read     read model, generation 1               \(rate(events, ContinuousClock.now - firstStart))")
try await readModel.replay()
let replayStart = ContinuousClock.now
while try await readModel.status().live != 2 { try await Task.sleep(for: .milliseconds(20)) }
print("replay   read model rebuilt beside the live one \(rate(events, ContinuousClock.now - replayStart))  (from the replay request to the switch)")
modelTask.cancel()
try await StreamSetup.deleteTopics([relayTopic, rawTopic, "bench-dead-letters-\(suffix)"], bootstrap: bootstrap)
exit(0)
