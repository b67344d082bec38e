import Foundation
import Kafka
import TestSupport

/// confluent-kafka (Python) on the other side of the broker: the reference
/// client that proves what we put on the wire is what others read, and the
/// other way round. Scripts are inline and talk JSON; bytes travel as hex so
/// that keys and values need not be text.
enum ConfluentKafka {
    /// Runs an inline script with JSON on stdin; returns its stdout.
    static func run(_ script: String, input: String = "", timeout: Duration = .seconds(60)) async throws -> String {
        try await PythonPeer.run(script, input: input, timeout: timeout)
    }

    struct Record: Codable, Hashable {
        var partition: Int32
        var offset: Int64
        var key: String?      // hex
        var value: String?    // hex
        var headers: [[String?]]  // [name, hex value or null]
    }

    /// Reads `count` messages of `topic` from the beginning of every
    /// partition (assign, no group: nothing to join, no offsets committed).
    static func consume(topic: String, count: Int, timeout: Double = 30) async throws -> [Record] {
        let script = #"""
        import json, sys, time
        from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
        args = json.load(sys.stdin)
        c = Consumer({"bootstrap.servers": args["bootstrap"], "group.id": "python-peer",
                      "enable.auto.commit": False, "fetch.wait.max.ms": 10})
        md = c.list_topics(args["topic"], timeout=10)
        parts = sorted(md.topics[args["topic"]].partitions)
        c.assign([TopicPartition(args["topic"], p, OFFSET_BEGINNING) for p in parts])
        out, deadline = [], time.time() + args["timeout"]
        while len(out) < args["count"] and time.time() < deadline:
            m = c.poll(0.2)
            if m is None: continue
            if m.error(): print("error", m.error(), file=sys.stderr); continue
            hx = lambda b: None if b is None else b.hex()
            out.append({"partition": m.partition(), "offset": m.offset(), "key": hx(m.key()),
                        "value": hx(m.value()),
                        "headers": [[n, hx(v)] for n, v in (m.headers() or [])]})
        c.close()
        print(json.dumps(out))
        """#
        let input = try json(["bootstrap": KafkaTestEnvironment.bootstrapServers, "topic": topic, "count": count, "timeout": timeout])
        let output = try await run(script, input: input)
        return try JSONDecoder().decode([Record].self, from: Data(output.utf8))
    }

    struct Outgoing: Codable {
        var key: String?
        var value: String?
        var headers: [[String?]]
        var partition: Int32?
    }

    struct Delivered: Codable, Hashable {
        var key: String?
        var partition: Int32
        var offset: Int64
    }

    /// Produces the messages in order (acks=all, the same murmur2
    /// partitioner our producer uses) and returns the delivery reports.
    static func produce(topic: String, messages: [Outgoing]) async throws -> [Delivered] {
        let script = #"""
        import json, sys
        from confluent_kafka import Producer
        args = json.load(sys.stdin)
        p = Producer({"bootstrap.servers": args["bootstrap"], "acks": "all",
                      "enable.idempotence": True, "partitioner": "murmur2_random"})
        reports = [None] * len(args["messages"])
        def report(i):
            def cb(err, m):
                if err is not None: raise SystemExit(f"delivery failed: {err}")
                k = m.key()
                reports[i] = {"key": None if k is None else k.hex(), "partition": m.partition(), "offset": m.offset()}
            return cb
        unhex = lambda s: None if s is None else bytes.fromhex(s)
        for i, m in enumerate(args["messages"]):
            kw = {"partition": m["partition"]} if m.get("partition") is not None else {}
            # JSONEncoder leaves out nil fields: read them with .get().
            p.produce(args["topic"], key=unhex(m.get("key")), value=unhex(m.get("value")),
                      headers=[(n, unhex(v)) for n, v in m["headers"]], on_delivery=report(i), **kw)
            p.poll(0)
        left = p.flush(30)
        if left: raise SystemExit(f"{left} messages not delivered")
        print(json.dumps(reports))
        """#
        let input = try json(["bootstrap": KafkaTestEnvironment.bootstrapServers, "topic": topic, "messages": messages])
        let output = try await run(script, input: input)
        return try JSONDecoder().decode([Delivered].self, from: Data(output.utf8))
    }

    private static func json(_ object: [String: any Encodable]) throws -> String {
        let encoder = JSONEncoder()
        var parts: [String] = []
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            let data = try encoder.encode(AnyEncodable(value))
            parts.append("\"\(key)\":" + String(decoding: data, as: UTF8.self))
        }
        return "{" + parts.joined(separator: ",") + "}"
    }
}

private struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

extension Array where Element == UInt8 {
    var hex: String { map { String(format: "%02x", $0) }.joined() }
}

extension String {
    var hexBytes: [UInt8] {
        var bytes: [UInt8] = []
        var index = startIndex
        while index < endIndex {
            let next = self.index(index, offsetBy: 2)
            bytes.append(UInt8(self[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
}

extension ConfluentKafka {
    /// The offsets `group` has committed for each partition of `topic`
    /// ("next to read"; partitions without a commit are left out), read
    /// with `Consumer.committed`: an OffsetFetch, no group join.
    static func committed(group: String, topic: String, partitions: Int32) async throws -> [Int32: Int64] {
        let script = #"""
        import json, sys
        from confluent_kafka import Consumer, TopicPartition
        args = json.load(sys.stdin)
        c = Consumer({"bootstrap.servers": args["bootstrap"], "group.id": args["group"],
                      "enable.auto.commit": False})
        got = c.committed([TopicPartition(args["topic"], p) for p in range(args["partitions"])], timeout=15)
        c.close()
        print(json.dumps({str(tp.partition): tp.offset for tp in got if tp.offset >= 0}))
        """#
        let input = try json(["bootstrap": KafkaTestEnvironment.bootstrapServers, "group": group, "topic": topic, "partitions": partitions])
        let output = try await run(script, input: input)
        let byName = try JSONDecoder().decode([String: Int64].self, from: Data(output.utf8))
        return Dictionary(uniqueKeysWithValues: byName.map { (Int32($0.key)!, $0.value) })
    }
}
