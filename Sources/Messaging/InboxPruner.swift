import Foundation
import GRDB
import Logging
import ShopServer
import ServiceLifecycle
import Storage

extension Inbox {
    /// How many processed ids one transaction deletes: short transactions,
    /// so the consumers' own writes never wait long behind a prune.
    static let pruneBatch = 1_000

    /// Forgets the ids of messages processed before `cutoff`. Answers how
    /// many were forgotten.
    @discardableResult
    public static func prune(processedBefore cutoff: Date, db: any DatabaseWriter) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await db.write { db in
                try db.run(cached: """
                    DELETE FROM processed_messages WHERE messageId IN (
                        SELECT messageId FROM processed_messages WHERE processedAt < ? ORDER BY processedAt LIMIT ?)
                    """, [cutoff.databaseMilliseconds, pruneBatch])
            }
            total += deleted
            if deleted < pruneBatch { return total }
        }
    }
}

/// Keeps `processed_messages` from growing forever.
///
/// An id only has to be remembered while a copy of its message can still
/// arrive: a redelivery after a consumer died (seconds), a second publish
/// after a lost confirm (seconds), a retry from the ladder (the last step is
/// 5 s by default). A week (`INBOX_RETENTION_HOURS`, default 168) is far
/// past all of them; past it the business keys are the second line (a
/// payment row per order and kind, one reservation per order), so even a
/// copy arriving later would change nothing.
public struct InboxPruner: Service {
    let db: any DatabaseWriter
    let retention: Duration
    let interval: Duration
    let logger: Logger

    public init(db: any DatabaseWriter, retention: Duration, interval: Duration = .seconds(3_600), logger: Logger) {
        self.db = db
        self.retention = retention
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        // Once at start (a service that was down for a while catches up),
        // then every `interval`, until the service group shuts down.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let cutoff = Date().addingTimeInterval(-Double(retention.components.seconds))
                do {
                    let forgotten = try await Inbox.prune(processedBefore: cutoff, db: db)
                    if forgotten > 0 { logger.info("pruned processed message ids", metadata: ["count": "\(forgotten)"]) }
                } catch {
                    logger.warning("could not prune processed message ids; trying again later", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    }
}
