@testable import AMQP
import Foundation
import TestSupport
import Testing

/// Where the tests find the broker and the tools around it.
enum Broker {
    static let url = ProcessInfo.processInfo.environment["AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5672/"

    static func configuration(heartbeat: Duration = .seconds(10)) throws -> AMQPConfiguration {
        var configuration = try AMQPConfiguration(url: url)
        configuration.heartbeat = heartbeat
        configuration.connectTimeout = .seconds(3)
        configuration.connectionName = "AMQPTests"
        return configuration
    }

    /// Connects, or fails the test with a message that says what to do.
    /// Never skips: a test run without a broker must not look green.
    static func connect(heartbeat: Duration = .seconds(10)) async throws -> AMQPConnection {
        let configuration = try configuration(heartbeat: heartbeat)
        do {
            return try await AMQPConnection.connect(configuration)
        } catch {
            // A local broker that does not answer is started, as the stages do
            // (scripts/infra up rabbitmq), once per test run; then tried again.
            if await LocalBroker.shared.startOnce(address: configuration.address) {
                if let connection = try? await AMQPConnection.connect(configuration) { return connection }
            }
            throw BrokerUnavailable(address: configuration.address, underlying: "\(error)")
        }
    }

    /// A name no other test run uses.
    static func unique(_ prefix: String) -> String {
        "test-\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }
}

struct BrokerUnavailable: Error, CustomStringConvertible {
    let address: String
    let underlying: String
    var description: String {
        "RabbitMQ is not reachable at \(address) (\(underlying)). Start it with `scripts/infra up rabbitmq` "
            + "(or point AMQP_URL at a running broker)."
    }
}

/// pika on the other side of the wire.
enum Pika {
    /// Runs `script` with pika; it gets the broker URL as argv[1] and the
    /// extra arguments after it, and prints one JSON document.
    static func run(_ script: String, _ arguments: [String] = []) async throws -> [String: Any] {
        try await PythonPeer.runJSON(script, arguments: [Broker.url] + arguments)
    }

    /// Shared by the scripts: fetch one message with basic_get, waiting up
    /// to 10 s, and describe it as JSON.
    static let getOne = """
        import json, sys, time, pika
        params = pika.URLParameters(sys.argv[1])
        conn = pika.BlockingConnection(params)
        ch = conn.channel()
        deadline = time.time() + 10
        while True:
            method, props, body = ch.basic_get(sys.argv[2], auto_ack=False)
            if method is not None or time.time() > deadline:
                break
            time.sleep(0.05)
        if method is None:
            print(json.dumps({"found": False}))
            sys.exit(0)
        ch.basic_ack(method.delivery_tag)
        def plain(v):
            if isinstance(v, bytes): return v.decode()
            if isinstance(v, dict): return {k: plain(x) for k, x in v.items()}
            if isinstance(v, list): return [plain(x) for x in v]
            if hasattr(v, "timestamp"): return int(v.timestamp())
            return v
        print(json.dumps({
            "found": True, "body": body.decode(), "routing_key": method.routing_key,
            "content_type": props.content_type, "message_id": props.message_id,
            "correlation_id": props.correlation_id, "timestamp": props.timestamp,
            "type": props.type, "delivery_mode": props.delivery_mode, "app_id": props.app_id,
            "headers": plain(props.headers or {}),
        }))
        conn.close()
        """
}

/// Takes the next element of a consumer within `timeout`.
func next<S: AsyncSequence & Sendable>(_ sequence: S, timeout: Duration = .seconds(10)) async throws -> S.Element?
where S.Element: Sendable {
    try await withThrowingTaskGroup(of: S.Element?.self) { group in
        group.addTask {
            var iterator = sequence.makeAsyncIterator()
            return try await iterator.next()
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// Starts the project's RabbitMQ once per test run when the configured one
/// is local and silent.
actor LocalBroker {
    static let shared = LocalBroker()
    private var attempt: Task<Bool, Never>?

    func startOnce(address: String) async -> Bool {
        guard address.hasPrefix("127.0.0.1:") || address.hasPrefix("localhost:") else { return false }
        if attempt == nil {
            attempt = Task {
                ((try? await runProcess(Repository.infraScript, ["-q", "up", "rabbitmq"], timeout: .seconds(120)))?.status ?? 1) == 0
            }
        }
        return await attempt!.value
    }
}
