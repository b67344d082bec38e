// kafka-bench: what our Kafka client gets out of the broker, next to
// confluent-kafka (Python, the same librdkafka underneath) in the same run.
//
//   swift run -c release kafka-bench [--messages N] [--size BYTES]
//       [--partitions P] [--latency-messages M] [--rate PER_SECOND]
//       [--bootstrap HOST:PORT] [--no-python] [--no-idempotence]
//
// Three figures, each for both clients:
//   produce  N messages of SIZE bytes, acks=all, idempotent: messages/s from
//            the first send to the last acknowledgement. Idempotence allows
//            at most 5 requests in flight per partition, which against Tansu
//            caps both clients near 110,000/s; --no-idempotence lifts that
//            (about 300,000/s for confluent-kafka here)
//   consume  the same N messages by a fresh consumer group: messages/s from
//            the first message received to the last (the group join, about
//            3 s, is not counted)
//   latency  M messages sent at RATE per second while a consumer is already
//            assigned: send-to-receive time, p50 and p99
//
// The figures are printed, not checked: the machine is shared and noisy
// (±30 % between runs is common). Tansu keeps every message in memory until
// it stops, so keep N modest (the default run stores about 200 MB).

import Foundation
import Kafka
import Logging

#if canImport(Glibc)
import Glibc
#endif

// Before anything else: make sure a librdkafka that can talk to Tansu is
// loaded (this may restart the process once; see RdKafkaLibrary).
do {
    try RdKafkaLibrary.bootstrap(environment: ProcessInfo.processInfo.environment)
} catch {
    FileHandle.standardError.write(Data("kafka-bench: \(error.message)\n".utf8))
    exit(70)
}

struct Options {
    var messages = 100_000
    var size = 1024
    var partitions: Int32 = 1
    var latencyMessages = 2_000
    var rate = 1_000
    var bootstrap = "127.0.0.1:\(ProcessInfo.processInfo.environment["KAFKA_PORT"] ?? "9092")"
    var python = true
    var idempotent = true

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        func value(_ name: String) -> String {
            guard let next = iterator.next() else { fail("\(name) needs a value") }
            return next
        }
        func number(_ name: String) -> Int {
            guard let number = Int(value(name)), number > 0 else { fail("\(name) needs a positive number") }
            return number
        }
        while let argument = iterator.next() {
            switch argument {
            case "--messages": messages = number(argument)
            case "--size": size = max(number(argument), 16)
            case "--partitions": partitions = Int32(number(argument))
            case "--latency-messages": latencyMessages = number(argument)
            case "--rate": rate = number(argument)
            case "--bootstrap": bootstrap = value(argument)
            case "--no-python": python = false
            case "--no-idempotence": idempotent = false
            case "-h", "--help":
                print("usage: kafka-bench [--messages N] [--size BYTES] [--partitions P] [--latency-messages M] [--rate PER_SECOND] [--bootstrap HOST:PORT] [--no-python] [--no-idempotence]")
                exit(0)
            default: fail("unknown option \(argument)")
            }
        }
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("kafka-bench: \(message)\n".utf8))
    exit(1)
}

/// Nanoseconds on the monotonic clock: comparable between the sending and
/// the receiving side of one process (and across processes on one machine).
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

struct Figures: Decodable {
    var produce: Double
    var consume: Double
    var p50: Double
    var p99: Double
}

func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.down)))]
}

let options = Options(CommandLine.arguments)
let logger: Logger = {
    var logger = Logger(label: "kafka-bench")
    logger.logLevel = .warning
    return logger
}()

// MARK: Swift

func runSwift() async throws -> Figures {
    var adminConfiguration = KafkaAdminConfiguration(bootstrapServers: options.bootstrap)
    adminConfiguration.requestTimeout = .seconds(5)
    let admin = try KafkaAdmin.make(configuration: adminConfiguration, logger: logger)
    defer { admin.close() }
    let suffix = UUID().uuidString.prefix(8).lowercased()
    let topic = "bench-swift-\(suffix)"
    let latencyTopic = "bench-swift-latency-\(suffix)"
    try await admin.createTopic(topic, partitions: options.partitions)
    try await admin.createTopic(latencyTopic, partitions: options.partitions)

    var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: options.bootstrap)
    producerConfiguration.idempotent = options.idempotent
    let producer = try KafkaProducer.make(configuration: producerConfiguration, logger: logger)
    let payload = [UInt8](repeating: 0x61, count: options.size)

    // Produce: a few tasks, each sending batches and awaiting their
    // acknowledgements, keep librdkafka's queue full without one
    // continuation per message. What limits throughput is how many messages
    // are in flight (acks=all: each batch waits for the broker): 8 × 5,000
    // keeps the pipe full, as a producer that never waits would.
    let batch = 5_000, senders = 8
    let start = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for sender in 0..<senders {
            group.addTask {
                var index = sender * batch
                while index < options.messages {
                    let count = min(batch, options.messages - index)
                    _ = try await producer.send((index..<(index + count)).map {
                        KafkaProducerMessage(topic: topic, key: Array("key-\($0 % 100)".utf8), value: payload)
                    })
                    index += senders * batch
                }
            }
        }
        try await group.waitForAll()
    }
    let produceSeconds = (ContinuousClock.now - start).seconds

    // Consume: a fresh group reads it all from the beginning.
    var consumerConfiguration = KafkaConsumerConfiguration(
        bootstrapServers: options.bootstrap, groupID: "bench-\(suffix)", topics: [topic])
    consumerConfiguration.batchSize = 1_000
    let consumer = try KafkaConsumer.make(configuration: consumerConfiguration, logger: logger)
    var received = 0
    var firstAt: ContinuousClock.Instant?
    var last: KafkaConsumerMessage?
    for try await message in consumer.messages {
        if firstAt == nil { firstAt = .now }
        received += 1
        last = message
        if received == options.messages { break }
    }
    let consumeSeconds = (ContinuousClock.now - firstAt!).seconds
    if let last { try consumer.commitAsync(last) }
    await consumer.close()

    // Latency: a consumer already assigned; paced sends carry their send
    // time in the first 8 bytes.
    var latencyConfiguration = KafkaConsumerConfiguration(
        bootstrapServers: options.bootstrap, groupID: "bench-latency-\(suffix)", topics: [latencyTopic])
    latencyConfiguration.offsetResetToEarliest = true
    let latencyConsumer = try KafkaConsumer.make(configuration: latencyConfiguration, logger: logger)
    let latencies = try await withThrowingTaskGroup(of: [Double]?.self) { group in
        let warmUp = KafkaProducerMessage(topic: latencyTopic, key: nil, value: [UInt8](repeating: 0, count: options.size))
        group.addTask {
            var samples: [Double] = []
            var warm = false
            for try await message in latencyConsumer.messages {
                let now = monotonicNanoseconds()
                guard let value = message.value, value.count >= 8 else { continue }
                let sent = value.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                if sent == 0 { warm = true; continue }  // the warm-up message
                guard warm else { continue }
                samples.append(Double(now &- sent) / 1_000_000)
                if samples.count == options.latencyMessages { break }
            }
            return samples
        }
        // Wait until the consumer is in the group and reading: its first
        // message is the warm-up.
        _ = try await producer.send(warmUp)
        while latencyConsumer.assignment.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        try await Task.sleep(for: .milliseconds(500))
        group.addTask {
            let interval = Duration.nanoseconds(1_000_000_000 / options.rate)
            var next = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { sends in
                for _ in 0..<options.latencyMessages {
                    next += interval
                    try await Task.sleep(until: next, clock: .continuous)
                    var value = payload
                    let now = monotonicNanoseconds()
                    withUnsafeBytes(of: now) { value.replaceSubrange(0..<8, with: $0) }
                    sends.addTask { _ = try await producer.send(KafkaProducerMessage(topic: latencyTopic, key: nil, value: value)) }
                }
                try await sends.waitForAll()
            }
            return nil
        }
        var samples: [Double] = []
        for try await result in group {
            if let result { samples = result }
        }
        return samples.sorted()
    }
    await latencyConsumer.close()
    await producer.shutdown()

    return Figures(
        produce: Double(options.messages) / produceSeconds,
        consume: Double(options.messages) / consumeSeconds,
        p50: percentile(latencies, 0.50), p99: percentile(latencies, 0.99))
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

// MARK: confluent-kafka

let pythonScript = #"""
import json, sys, threading, time, uuid
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
a = json.loads(sys.argv[1])
bootstrap, n, size, parts, m, rate = a["bootstrap"], a["messages"], a["size"], a["partitions"], a["latency"], a["rate"]
suffix = uuid.uuid4().hex[:8]
topic, ltopic = f"bench-python-{suffix}", f"bench-python-latency-{suffix}"
admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive its futures
for f in admin.create_topics([NewTopic(topic, parts, 1), NewTopic(ltopic, parts, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": a["idempotent"], "linger.ms": 5})
payload = b"a" * size
failed = []
def dr(err, msg):
    if err is not None: failed.append(err)
start = time.monotonic()
for i in range(n):
    while True:
        try:
            p.produce(topic, key=b"key-%d" % (i % 100), value=payload, on_delivery=dr); break
        except BufferError:
            p.poll(0.001)
    p.poll(0)
p.flush(60)
produce = n / (time.monotonic() - start)
if failed: raise SystemExit(f"{len(failed)} deliveries failed: {failed[0]}")
conf = {"bootstrap.servers": bootstrap, "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "fetch.wait.max.ms": 10}
c = Consumer(dict(conf, **{"group.id": f"bench-python-{suffix}"}))
c.subscribe([topic])
got, first = 0, None
while got < n:
    batch = c.consume(1000, 1.0)
    for msg in batch:
        if msg.error(): continue
        if first is None: first = time.monotonic()
        got += 1
consume = got / (time.monotonic() - first)
c.close()
lc = Consumer(dict(conf, **{"group.id": f"bench-python-latency-{suffix}"}))
lc.subscribe([ltopic])
samples, ready = [], threading.Event()
def reader():
    warm = False
    while len(samples) < m:
        msg = lc.poll(0.1)
        if msg is None or msg.error(): continue
        now = time.monotonic_ns()
        sent = int.from_bytes(msg.value()[:8], "little")
        if sent == 0: warm = True; ready.set(); continue
        if warm: samples.append((now - sent) / 1e6)
t = threading.Thread(target=reader); t.start()
p.produce(ltopic, value=b"\0" * size); p.flush(10)
if not ready.wait(30): raise SystemExit("latency consumer never got the warm-up message")
time.sleep(0.5)
interval, nxt = 1.0 / rate, time.monotonic()
for i in range(m):
    nxt += interval
    d = nxt - time.monotonic()
    if d > 0: time.sleep(d)
    p.produce(ltopic, value=time.monotonic_ns().to_bytes(8, "little") + payload[8:])
    p.poll(0)
p.flush(30)
t.join(60)
lc.close()
samples.sort()
pct = lambda f: samples[min(len(samples) - 1, int(len(samples) * f))]
print(json.dumps({"produce": produce, "consume": consume, "p50": pct(0.5), "p99": pct(0.99)}))
"""#

/// The project's Python environment: walk up from the executable and the
/// current directory to the folder holding `.venv/bin/python`.
func findPython() -> String? {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    for start in [URL(fileURLWithPath: executable).deletingLastPathComponent(), URL(fileURLWithPath: FileManager.default.currentDirectoryPath)] {
        var folder = start
        while folder.path != "/" {
            let python = folder.appendingPathComponent(".venv/bin/python").path
            if FileManager.default.isExecutableFile(atPath: python) { return python }
            folder = folder.deletingLastPathComponent()
        }
    }
    return nil
}

func runPython() throws -> Figures? {
    guard let python = findPython() else {
        print("(no .venv/bin/python found: run scripts/setup for the confluent-kafka column)")
        return nil
    }
    let arguments: [String: Any] = [
        "bootstrap": options.bootstrap, "messages": options.messages, "size": options.size,
        "partitions": Int(options.partitions), "latency": options.latencyMessages, "rate": options.rate,
        "idempotent": options.idempotent,
    ]
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", pythonScript, String(decoding: try JSONSerialization.data(withJSONObject: arguments), as: UTF8.self)]
    var environment = ProcessInfo.processInfo.environment
    environment["LD_LIBRARY_PATH"] = nil  // the wheel loads its own librdkafka
    process.environment = environment
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        print("(confluent-kafka run failed with status \(process.terminationStatus))")
        return nil
    }
    return try JSONDecoder().decode(Figures.self, from: data)
}

// MARK: Report

func rate(_ value: Double) -> String {
    value.isFinite ? String(format: "%9.0f", value) : "        -"
}

func milliseconds(_ value: Double) -> String {
    value.isFinite ? String(format: "%6.1f ms", value) : "       -"
}

print("kafka-bench: \(options.messages) × \(options.size) B, \(options.partitions) partition(s), acks=all, \(options.idempotent ? "idempotent" : "not idempotent"); latency: \(options.latencyMessages) at \(options.rate)/s, fetch.wait.max.ms=10")
print("broker \(options.bootstrap); librdkafka \(RdKafkaLibrary.loadedVersion) (\(RdKafkaLibrary.loadedPath ?? "?"))")
let swift: Figures
do {
    swift = try await runSwift()
} catch let error as KafkaError {
    fail(error.message)
}
let python = options.python ? try runPython() : nil

print("")
print("                          Swift (Kafka)   confluent-kafka   reference (infra.md)")
print("produce msgs/s               \(rate(swift.produce))         \(rate(python?.produce ?? .nan))            216,000")
print("consume msgs/s               \(rate(swift.consume))         \(rate(python?.consume ?? .nan))            273,000")
print("latency p50                 \(milliseconds(swift.p50))        \(milliseconds(python?.p50 ?? .nan))              ~6 ms")
print("latency p99                 \(milliseconds(swift.p99))        \(milliseconds(python?.p99 ?? .nan))             ~16 ms")
