import Foundation
import Testing

@testable import Observability

/// The process-wide registry is shared by every test here, so each test
/// uses metric names of its own.
@Suite("Observability")
struct ObservabilityTests {
    /// The text of the page, for looking lines up.
    static func page() async -> String {
        String(decoding: await Observability.exposition(), as: UTF8.self)
    }

    @Test("a handle asked for twice with the same name and labels is the same handle, and both record into one series")
    func handlesAreKept() async {
        let first = Observability.counter("test_kept_total", [("queue", "a"), ("outcome", "handled")])
        let again = Observability.counter("test_kept_total", [("queue", "a"), ("outcome", "handled")])
        let other = Observability.counter("test_kept_total", [("queue", "b"), ("outcome", "handled")])
        #expect(first === again)
        #expect(first !== other)
        first.increment()
        again.increment(by: 2)
        other.increment()
        let text = await Self.page()
        #expect(text.contains(#"test_kept_total{queue="a",outcome="handled"} 3"#))
        #expect(text.contains(#"test_kept_total{queue="b",outcome="handled"} 1"#))

        let timer = Observability.timer("test_kept_seconds", [("queue", "a")])
        #expect(timer === Observability.timer("test_kept_seconds", [("queue", "a")]))
        timer.record(duration: .milliseconds(3))
        Observability.timer("test_kept_seconds", [("queue", "a")]).record(duration: .milliseconds(30))
        #expect(await Self.page().contains(#"test_kept_seconds_count{queue="a"} 2"#))
    }

    @Test("handles made from many tasks at once for the same series count every increment")
    func handlesUnderRace() async {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<200 {
                group.addTask { Observability.counter("test_raced_total", [("route", "/x")]).increment() }
            }
        }
        #expect(await Self.page().contains(#"test_raced_total{route="/x"} 200"#))
    }

    @Test("a scrape hook that never finishes delays the page by its deadline, not longer, and is not started again while it runs")
    func stuckHook() async {
        let starts = Counts()
        let gauge = Observability.gauge("test_hooked_messages")
        Observability.beforeEachScrape {
            await starts.add()
            gauge.record(7)
            // A broker that never answers.
            try? await Task.sleep(for: .seconds(3600))
        }
        let clock = ContinuousClock()
        let started = clock.now
        let first = await Self.page()
        let second = await Self.page()
        let took = clock.now - started
        #expect(first.contains("test_hooked_messages 7"))
        #expect(second.contains("test_hooked_messages 7"))
        // Two scrapes, each waiting at most the deadline (1 s) for the hook.
        #expect(took < .seconds(3))
        #expect(await starts.value == 1)
    }
}

actor Counts {
    var value = 0
    func add() { value += 1 }
}
