// amqp-bench: what the Swift client achieves against the local RabbitMQ,
// measured side by side with pika in the same run (the machine is noisy,
// so only figures from one run compare). Figures are printed, not asserted.
//
//   swift run -c release amqp-bench [--url amqp://...] [--messages 20000]
//       [--window1-messages 3000] [--latency-messages 2000] [--pika-messages 2000]
//       [--python path] [--skip-pika]
//
// Every message is 1 KB, persistent (delivery mode 2), published to a
// durable queue on a confirm-mode channel: the broker acks only once the
// message is on disk, which is what an order event needs.

import AMQP
import Foundation

@main
struct AMQPBench {
    static func main() async throws {
        let options = Options(CommandLine.arguments.dropFirst())
        var configuration = try AMQPConfiguration(url: options.url)
        configuration.connectionName = "amqp-bench"
        let connection: AMQPConnection
        do {
            connection = try await AMQPConnection.connect(configuration)
        } catch {
            print("amqp-bench: \(error)\nStart the broker with `scripts/infra up rabbitmq`.")
            exit(1)
        }
        let channel = try await connection.openChannel()
        try await channel.confirmSelect()
        let queue = "amqp-bench-\(getpid())"
        try await channel.queueDeclare(queue, durable: true)
        try await channel.queuePurge(queue)

        let body = [UInt8](repeating: 0x78, count: 1024)
        let message = OutboundMessage(routingKey: queue, body: body, properties: .persistent)

        print("amqp-bench: \(configuration.address), 1 KB persistent messages, durable queue, publisher confirms")
        // Warm-up: the queue process, the disk writer and our code paths.
        try await channel.publish(contentsOf: Array(repeating: message, count: 500), window: 64)
        try await channel.queuePurge(queue)

        // 1. One confirm at a time: each publish waits for its ack.
        let window1 = try await rate(options.window1Messages) {
            for _ in 0..<options.window1Messages { try await channel.publish(message) }
        }
        try await channel.queuePurge(queue)

        // 2. Up to 256 unconfirmed.
        let batch = Array(repeating: message, count: options.messages)
        let window256 = try await rate(options.messages) {
            try await channel.publish(contentsOf: batch, window: 256)
        }

        // 3. Consume what (2) left, acking each delivery.
        let consumerChannel = try await connection.openChannel()
        try await consumerChannel.qos(prefetchCount: 256)
        let consumeRate = try await rate(options.messages) {
            let consumer = try await consumerChannel.consume(queue: queue)
            var count = 0
            for try await delivery in consumer {
                try await delivery.ack()
                count += 1
                if count == options.messages { break }
            }
            try await consumer.cancel()
        }
        try await consumerChannel.close()
        try await channel.queuePurge(queue)

        // 4. Latency: publish (confirmed, one at a time) on one connection,
        // consume on another; each body starts with the monotonic send time.
        let latencies = try await latency(configuration, queue: queue, count: options.latencyMessages, body: body)
        try await channel.queueDelete(queue)
        await connection.close()

        var pika: PikaFigures?
        if !options.skipPika {
            do {
                pika = try runPika(options, queue: queue + "-pika")
            } catch {
                print("pika part failed: \(error)")
            }
        }

        func fmt(_ value: Double) -> String { String(format: "%.0f", value) }
        func ms(_ value: Double) -> String { String(format: "%.2f ms", value) }
        let rows: [(String, String, String, String)] = [
            ("publish, confirm each (window 1)", "\(fmt(window1)) msg/s", pika.map { "\(fmt($0.rate)) msg/s" } ?? "-", "pika ~1,000"),
            ("publish, window 256", "\(fmt(window256)) msg/s", "-", "C client 18,000"),
            ("consume + ack each (prefetch 256)", "\(fmt(consumeRate)) msg/s", "-", "-"),
            ("latency publish->consume p50", ms(latencies.p50), pika.map { ms($0.p50) } ?? "-", "-"),
            ("latency publish->consume p99", ms(latencies.p99), pika.map { ms($0.p99) } ?? "-", "-"),
        ]
        print("")
        print(pad("", 36) + pad("Swift (librabbitmq)", 22) + pad("pika 1.x", 16) + "reference on this box")
        for (name, swift, pikaFigure, reference) in rows {
            print(pad(name, 36) + pad(swift, 22) + pad(pikaFigure, 16) + reference)
        }
        print("")
        print("window 1: \(options.window1Messages) msgs; window 256 and consume: \(options.messages) msgs; "
            + "latency: \(latencies.count) msgs (Swift), \(pika?.count ?? 0) msgs (pika)")
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    @MainActor
    static func rate(_ count: Int, _ body: () async throws -> Void) async throws -> Double {
        let started = ContinuousClock.now
        try await body()
        let elapsed = ContinuousClock.now - started
        return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
    }

    struct Latencies {
        let p50: Double
        let p99: Double
        let count: Int
    }

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    static func latency(_ configuration: AMQPConfiguration, queue: String, count: Int, body: [UInt8]) async throws -> Latencies {
        let publisherConnection = try await AMQPConnection.connect(configuration)
        let consumerConnection = try await AMQPConnection.connect(configuration)
        let publisher = try await publisherConnection.openChannel()
        try await publisher.confirmSelect()
        let consumerChannel = try await consumerConnection.openChannel()
        try await consumerChannel.qos(prefetchCount: 100)
        let consumer = try await consumerChannel.consume(queue: queue)

        let collecting = Task {
            var samples: [Double] = []
            samples.reserveCapacity(count)
            for try await delivery in consumer {
                let sent = delivery.body.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                samples.append(Double(monotonicNanoseconds() - sent) / 1e6)
                try await delivery.ack()
                if samples.count == count { break }
            }
            return samples
        }
        var stamped = body
        for _ in 0..<count {
            withUnsafeBytes(of: monotonicNanoseconds()) { stamped.replaceSubrange(0..<8, with: $0) }
            try await publisher.publish(OutboundMessage(routingKey: queue, body: stamped, properties: .persistent))
        }
        let samples = try await collecting.value.sorted()
        try await consumer.cancel()
        await publisherConnection.close()
        await consumerConnection.close()
        return Latencies(
            p50: samples[samples.count / 2], p99: samples[min(samples.count - 1, samples.count * 99 / 100)],
            count: samples.count)
    }

    // MARK: pika

    struct PikaFigures: Decodable {
        let rate: Double
        let p50: Double
        let p99: Double
        let count: Int
    }

    static let pikaScript = """
        import json, sys, threading, time, pika
        url, queue, n, lat_n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        params = pika.URLParameters(url)
        body = b"x" * 1024
        props = pika.BasicProperties(delivery_mode=2)
        conn = pika.BlockingConnection(params)
        ch = conn.channel()
        ch.queue_declare(queue, durable=True)
        ch.queue_purge(queue)
        ch.confirm_delivery()  # every basic_publish now waits for its confirm
        for _ in range(200):
            ch.basic_publish("", queue, body, props)
        ch.queue_purge(queue)
        t0 = time.perf_counter()
        for _ in range(n):
            ch.basic_publish("", queue, body, props)
        rate = n / (time.perf_counter() - t0)
        ch.queue_purge(queue)
        samples, ready = [], threading.Event()
        def consume():
            c2 = pika.BlockingConnection(params)
            ch2 = c2.channel()
            ch2.basic_qos(prefetch_count=100)
            def on_message(chx, method, properties, data):
                samples.append((time.monotonic_ns() - int.from_bytes(data[:8], "little")) / 1e6)
                chx.basic_ack(method.delivery_tag)
                if len(samples) >= lat_n:
                    chx.stop_consuming()
            ch2.basic_consume(queue, on_message)
            ready.set()
            ch2.start_consuming()
            c2.close()
        consumer = threading.Thread(target=consume)
        consumer.start()
        ready.wait()
        for _ in range(lat_n):
            ch.basic_publish("", queue, time.monotonic_ns().to_bytes(8, "little") + body[8:], props)
        consumer.join(60)
        samples.sort()
        ch.queue_delete(queue)
        conn.close()
        print(json.dumps({"rate": rate, "p50": samples[len(samples) // 2],
                          "p99": samples[min(len(samples) - 1, len(samples) * 99 // 100)], "count": len(samples)}))
        """

    /// Blocking on purpose: the Swift measurements are over, and this runs on
    /// the main thread, not on a task of the cooperative pool.
    static func runPika(_ options: Options, queue: String) throws -> PikaFigures {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: options.python)
        process.arguments = ["-c", pikaScript, options.url, queue, String(options.pikaMessages), String(options.latencyMessages)]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw AMQPError.protocolError("pika exited with \(process.terminationStatus) (is pika installed in \(options.python)? run scripts/setup)")
        }
        let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last ?? ""
        return try JSONDecoder().decode(PikaFigures.self, from: Data(line.utf8))
    }
}

struct Options {
    var url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"
    var messages = 20_000
    var window1Messages = 3_000
    var latencyMessages = 2_000
    var pikaMessages = 2_000
    var python = ProcessInfo.processInfo.environment["PIKA_PYTHON"] ?? Options.defaultPython
    var skipPika = false

    static var defaultPython: String {
        let local = FileManager.default.currentDirectoryPath + "/.venv/bin/python"
        return FileManager.default.isExecutableFile(atPath: local) ? local : "/work/main/.venv/bin/python"
    }

    init(_ arguments: ArraySlice<String>) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--url": url = iterator.next() ?? url
            case "--messages": messages = iterator.next().flatMap(Int.init) ?? messages
            case "--window1-messages": window1Messages = iterator.next().flatMap(Int.init) ?? window1Messages
            case "--latency-messages": latencyMessages = iterator.next().flatMap(Int.init) ?? latencyMessages
            case "--pika-messages": pikaMessages = iterator.next().flatMap(Int.init) ?? pikaMessages
            case "--python": python = iterator.next() ?? python
            case "--skip-pika": skipPika = true
            default:
                print("usage: amqp-bench [--url URL] [--messages N] [--window1-messages N] [--latency-messages N] [--pika-messages N] [--python PATH] [--skip-pika]")
                exit(2)
            }
        }
    }
}
