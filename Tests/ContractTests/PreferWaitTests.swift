import HTTPTypes
import ShopServer
import Testing

/// `Prefer: wait=N` as the contract reads it, and the wait list that holds
/// a request until its news (the acceptance side is the characterization
/// suite's "Prefer: wait" test, against every stage).
@Suite("Prefer: wait")
struct PreferWaitTests {
    func wait(_ values: String...) -> Int? {
        var headers = HTTPFields()
        for value in values { headers.append(HTTPField(name: .prefer, value: value)) }
        return PreferredWait(headers)?.seconds
    }

    @Test("1 to 30 whole seconds are honoured, among other preferences, quoted or not, any case")
    func honoured() {
        #expect(wait("wait=1") == 1)
        #expect(wait("wait=30") == 30)
        #expect(wait("respond-async, wait=10") == 10)
        #expect(wait("WAIT = 7") == 7)
        #expect(wait("wait=\"12\"") == 12)
        #expect(wait("handling=lenient", "wait=5") == 5)
        #expect(wait("wait=5;foo=bar") == 5)
        #expect(wait("wait=4, wait=9") == 4, "the first wait counts")
    }

    @Test("anything else is ignored, not refused")
    func ignored() {
        #expect(wait() == nil)
        for value in ["wait=0", "wait=31", "wait=-1", "wait=1.5", "wait=soon", "wait=", "wait", "respond-async", "waiting=5", "wait=٣"] {
            #expect(wait(value) == nil, "\(value)")
        }
    }

    @Test("news posted between the read and the wait is not missed")
    func ticketBeforeRead() async {
        let list = WaitList()
        let ticket = list.ticket(for: "ord_1")
        list.post("ord_1")  // the decision lands after the read, before the wait
        let clock = ContinuousClock()
        let started = clock.now
        await ticket.wait(upTo: .seconds(30))
        #expect(clock.now - started < .seconds(5))
        #expect(list.count == 0)
    }

    @Test("a waiter is resumed by its key's news, not by another's, and gives its ticket back at the deadline")
    func resumedByItsKey() async throws {
        let list = WaitList()
        let reads = Counter()
        let decided = Counter()
        let answer = Task {
            try await list.read("ord_a", waitingUpTo: .seconds(30), recheck: .seconds(30), until: { $0 }) {
                await reads.add()
                return await decided.value > 0
            }
        }
        while list.count == 0 { try await Task.sleep(for: .milliseconds(5)) }
        list.post("ord_b")
        try await Task.sleep(for: .milliseconds(50))
        #expect(await reads.value == 1, "news of another order does not wake it")
        await decided.add()
        list.post("ord_a")
        #expect(try await answer.value == true)
        #expect(await reads.value == 2)
        #expect(list.count == 0)

        let clock = ContinuousClock()
        let started = clock.now
        let pending = try await list.read("ord_c", waitingUpTo: .milliseconds(200), until: { $0 }) { false }
        #expect(pending == false)
        #expect(clock.now - started >= .milliseconds(200))
        #expect(list.count == 0)
    }
}

private actor Counter {
    var value = 0
    func add() { value += 1 }
}
