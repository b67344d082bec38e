import Foundation
import GRDB
import Kafka
import Messaging
import Storage
@testable import Streams
import Testing

/// The mechanisms of Sources/Streams that need no broker: how an event
/// sits in a record, when a rebuild may take over, what the monitor keeps.
/// (Against the real broker they are exercised by Tests/Stage7Tests.)
@Suite struct StreamsTests {
    @Test func aRecordIsKeyedByItsEnvelopesSubjectAndSaysItIsACloudEvent() {
        let body = Array(#"{"specversion":"1.0","id":"evt_1","subject":"ord_42","data":{}}"#.utf8)
        let record = EventRecords.record(OutgoingMessage(id: "evt_1", type: "shop.OrderCreated", body: body), topic: "ns.orders")
        #expect(record.topic == "ns.orders")
        #expect(record.key == Array("ord_42".utf8))
        #expect(record.value == body)
        #expect(record.headers == [KafkaHeader(name: "content-type", value: "application/cloudevents+json")])
        // No subject: no key (the producer picks a partition).
        let unkeyed = EventRecords.record(OutgoingMessage(type: "x", body: Array(#"{"id":"e"}"#.utf8)), topic: "t")
        #expect(unkeyed.key == nil)
        #expect(EventRecords.subject(of: Array("not json".utf8)) == nil)
    }

    @Test func aDeadLetterIdIsTheSameForTheSameRecordAndGroup() {
        let record = KafkaConsumerMessage(topic: "ns.users", partition: 1, offset: 7, key: nil, value: nil, headers: [], timestampMilliseconds: nil)
        let again = KafkaConsumerMessage(topic: "ns.users", partition: 1, offset: 7, key: nil, value: Array("x".utf8), headers: [], timestampMilliseconds: 5)
        #expect(DeadLetterTopic.letterId(group: "ns.notification", record: record) == DeadLetterTopic.letterId(group: "ns.notification", record: again))
        #expect(DeadLetterTopic.letterId(group: "ns.flow", record: record) != DeadLetterTopic.letterId(group: "ns.notification", record: record))
        #expect(DeadLetterTopic.letterId(group: "ns.notification", record: record).hasPrefix("dlt_"))
    }

    func database() throws -> DatabaseQueue {
        let db = try DatabaseQueue()
        var migrator = DatabaseMigrator()
        for migration in ReadModel.migrations + [Migration("model", sql: "CREATE TABLE counts (generation INTEGER NOT NULL, n INTEGER NOT NULL)")] {
            migrator.registerMigration(migration.name) { db in try db.execute(sql: migration.sql) }
        }
        try migrator.migrate(db)
        return db
    }

    func position(_ db: Database, generation: Int, partition: Int, next: Int) throws {
        try db.execute(sql: "INSERT OR REPLACE INTO read_model_positions (generation, topic, partition, nextOffset) VALUES (?, 't', ?, ?)",
                       arguments: [generation, partition, next])
    }

    @Test func aRebuildTakesOverOnlyOnceItHasReachedTheLiveGenerationInEveryPartition() throws {
        let db = try database()
        try db.write { db in
            try position(db, generation: 1, partition: 0, next: 10)
            try position(db, generation: 1, partition: 1, next: 4)
            try db.execute(sql: "INSERT INTO counts VALUES (1, 14), (2, 3)")
            try db.execute(sql: "UPDATE read_model_generations SET building = 2")
            // Not started: behind everywhere.
            #expect(try ReadModel.switchIfCaughtUp(db, tables: ["counts"]) == nil)
            // Past the live one in one partition, behind in the other.
            try position(db, generation: 2, partition: 0, next: 12)
            try position(db, generation: 2, partition: 1, next: 3)
            #expect(try ReadModel.switchIfCaughtUp(db, tables: ["counts"]) == nil)
            #expect(try ReadModel.liveGeneration(db) == 1)
            // Caught up: generation 2 is live, generation 1's rows are gone.
            try position(db, generation: 2, partition: 1, next: 4)
            #expect(try ReadModel.switchIfCaughtUp(db, tables: ["counts"]) == 2)
            #expect(try ReadModel.liveGeneration(db) == 2)
            #expect(try Int.fetchAll(db, sql: "SELECT generation FROM counts") == [2])
            #expect(try Int.fetchAll(db, sql: "SELECT DISTINCT generation FROM read_model_positions") == [2])
            #expect(try Int.fetchOne(db, sql: "SELECT building FROM read_model_generations") == nil)
            // No replay under way: nothing to switch.
            #expect(try ReadModel.switchIfCaughtUp(db, tables: ["counts"]) == nil)
        }
    }

    @Test func theMonitorKnowsWhereEachPartitionEndsAndWhenEachRecordWasWritten() {
        let monitor = StreamMonitor(bootstrapServers: "127.0.0.1:1", group: "g", topics: ["t"], logger: .init(label: "test"))
        func record(_ partition: Int32, _ offset: Int64, _ time: Int64) -> KafkaConsumerMessage {
            KafkaConsumerMessage(topic: "t", partition: partition, offset: offset, key: nil, value: nil, headers: [], timestampMilliseconds: time)
        }
        monitor.see(record(0, 0, 1_000))
        monitor.see(record(0, 1, 2_000))
        monitor.see(record(0, 1, 9_999))  // read again after a rejoin: known already
        monitor.see(record(0, 4, 5_000))  // a gap: the missing offsets take this one's time
        monitor.see(record(1, 3, 7_000))  // a partition first seen past its start
        let seen = monitor.snapshot
        let first = seen[KafkaTopicPartition(topic: "t", partition: 0)]
        #expect(first?.end == 5)
        #expect(first?.time(at: 0) == 1_000)
        #expect(first?.time(at: 1) == 2_000)
        #expect(first?.time(at: 3) == 5_000)
        #expect(first?.time(at: 5) == nil)
        let second = seen[KafkaTopicPartition(topic: "t", partition: 1)]
        #expect(second?.end == 4)
        #expect(second?.time(at: 3) == 7_000)
        #expect(second?.time(at: 2) == nil)
    }

    /// A consumer handling records side by side stores a partition's
    /// offset only over a run of finished records: never past one still
    /// being handled, each partition on its own. A partition read again
    /// from an earlier offset (a rebalance gave it back) starts a new run.
    @Test func aPartitionsOffsetMovesOnlyOverFinishedRecords() {
        let progress = PartitionProgress()
        func finished(_ record: KafkaConsumerMessage) -> Int64? {
            var moved: Int64?
            progress.finished(record) { partition, offset in
                #expect(partition == record.topicPartition)
                moved = offset
            }
            return moved
        }
        func record(_ partition: Int32, _ offset: Int64) -> KafkaConsumerMessage {
            KafkaConsumerMessage(topic: "t", partition: partition, offset: offset, key: nil, value: nil, headers: [], timestampMilliseconds: nil)
        }
        for offset in 0..<5 { progress.received(record(0, Int64(offset))) }
        progress.received(record(1, 7))
        #expect(finished(record(0, 2)) == nil, "0 and 1 are still being handled")
        #expect(finished(record(0, 0)) == 0, "0 alone: the offset may move to 1")
        #expect(finished(record(1, 7)) == 7, "partition 1 does not wait for partition 0")
        #expect(finished(record(0, 1)) == 2, "1 done, and 2 was: the offset may move to 3")
        // Partition 0 read again from 3 while 3 and 4 are still being handled.
        progress.received(record(0, 3))
        #expect(finished(record(0, 4)) == nil, "4 belongs to the reading before: it moves nothing")
        #expect(finished(record(0, 3)) == 3)
        #expect(finished(record(0, 3)) == nil, "nothing left to move over")
        // Held: the oldest unfinished record and every one after it.
        for offset in 5..<9 { progress.received(record(0, Int64(offset))) }
        #expect(finished(record(0, 6)) == nil)
        #expect(progress.held(KafkaTopicPartition(topic: "t", partition: 0)) == 4)
        // Given away in a rebalance: records still in hand move nothing.
        progress.forget([KafkaTopicPartition(topic: "t", partition: 0)])
        #expect(progress.held(KafkaTopicPartition(topic: "t", partition: 0)) == 0)
        #expect(finished(record(0, 5)) == nil)
    }
}
