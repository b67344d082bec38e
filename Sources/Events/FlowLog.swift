import Foundation
import GRDB
import Storage

/// Every event of a deployment, kept by the story it belongs to (its
/// correlation id), so that a story no single service holds can be read in
/// one place: in a choreography the flow of an order is spread over four
/// services, and this is where it is put back together.
///
/// It is fed by a consumer bound to every producer's exchange; recording an
/// event twice (a redelivery) changes nothing, as the event id is the key.
public struct FlowLog: Sendable {
    public struct Entry: Codable, Sendable, Equatable {
        public var id: String
        /// The event's name (`OrderCreated`), whatever its envelope's type says.
        public var type: String
        public var source: String
        public var time: Date
        public var causationid: String?

        /// `causationid` is written as `null` when there is none (an event a
        /// request caused), as the contract lists the field.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id); try c.encode(type, forKey: .type); try c.encode(source, forKey: .source)
            try c.encode(time, forKey: .time); try c.encode(causationid, forKey: .causationid)
        }
    }

    let db: any DatabaseWriter

    public init(db: any DatabaseWriter) { self.db = db }

    public static func open(at url: URL) throws -> DatabasePool {
        try SQLiteStore.openPool(at: url, migrations: migrations)
    }

    public static let migrations = [
        Migration("flow v1", sql: """
            -- seq: the order in which events reached the log, which breaks ties
            -- between events stamped in the same millisecond.
            CREATE TABLE flow_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                correlationId TEXT,
                name TEXT NOT NULL,
                source TEXT NOT NULL,
                time INTEGER NOT NULL,
                causationId TEXT
            );
            CREATE INDEX flow_events_by_story ON flow_events(correlationId, time, seq);
            """),
    ]

    public func record(_ event: ReceivedEvent) async throws {
        try await db.write { db in
            try db.execute(sql: """
                INSERT OR IGNORE INTO flow_events (id, correlationId, name, source, time, causationId) VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [event.id, event.envelope.correlationid, event.name, event.envelope.source,
                                 event.envelope.time.databaseMilliseconds, event.envelope.causationid])
        }
    }

    /// The story's events, oldest first; empty when none was seen.
    public func flow(correlationId: String) async throws -> [Entry] {
        try await db.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, name, source, time, causationId FROM flow_events WHERE correlationId = ? ORDER BY time, seq
                """, arguments: [correlationId]).map { row in
                Entry(id: row["id"], type: row["name"], source: row["source"],
                      time: Date(databaseMilliseconds: row["time"]), causationid: row["causationId"])
            }
        }
    }
}
