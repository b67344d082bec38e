import CoreMetrics
import Foundation
import Metrics
import Prometheus
import Synchronization

/// What every process measures, and how Prometheus reads it.
///
/// The shop's code records through swift-metrics (`Counter`, `Timer`,
/// `Gauge`, `Recorder`), the API every server-side Swift library measures
/// with; swift-prometheus is the backend that keeps the figures and writes
/// them in Prometheus' text format for `GET /metrics`. Nothing here formats
/// an exposition by hand.
///
/// The names follow Prometheus' conventions: `snake_case`, a counter ends
/// in `_total`, a duration is a histogram in seconds (`_seconds`), and a
/// label takes a handful of values (a queue, a route template, an outcome),
/// never an id: every label value is a time series of its own.
public enum Observability {
    /// The figures of this process. One per process: `GET /metrics` shows it.
    public static let registry = PrometheusCollectorRegistry()

    /// The swift-metrics backend over `registry`. The shop's code passes it
    /// to every metric it makes, so that a library or a tool using
    /// `ShopClient` never installs a process-wide metrics system by
    /// accident; a server installs it with `installProcessWide()`.
    public static let factory: PrometheusMetricsFactory = {
        var factory = PrometheusMetricsFactory(registry: registry)
        // From a millisecond (a read served from memory) to ten seconds (an
        // order's decision under load); Prometheus interpolates between them.
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .microseconds(2_500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10),
        ]
        return factory
    }()

    /// Makes `factory` the process's metrics system, so that a library
    /// measuring through swift-metrics' global (Hummingbird's own
    /// middleware, for one) lands on the same page. Once per process; the
    /// server runner calls it.
    public static func installProcessWide() {
        let first = installed.withLock { done in defer { done = true }; return !done }
        if first { MetricsSystem.bootstrap(factory) }
    }

    private static let installed = Mutex(false)

    // MARK: Making metrics

    /// A counter (`name` ends in `_total`).
    public static func counter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
        handles.counters.find(name, labels) { CoreMetrics.Counter(label: name, dimensions: labels, factory: factory) }
    }

    /// A value that goes up and down (a backlog, a lag, instances up).
    public static func gauge(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Gauge {
        handles.gauges.find(name, labels) { CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory) }
    }

    /// A duration, kept as a histogram in seconds (`name` ends in `_seconds`).
    public static func timer(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Timer {
        handles.timers.find(name, labels) {
            CoreMetrics.Timer(label: name, dimensions: labels, preferredDisplayUnit: .seconds, factory: factory)
        }
    }

    /// The handles made so far, by name and labels.
    ///
    /// A request, a delivery or a service call records under labels known
    /// only when it happens (its route and status, its queue and outcome),
    /// so the call sites ask for their handle each time. Making one through
    /// swift-metrics checks the name and every label name, takes the
    /// registry's lock and allocates the handle; a stage 4 order is some
    /// 30 requests and 11 deliveries across the processes, each recording
    /// two or three figures. Keeping each handle once made leaves one
    /// dictionary lookup. The labels are bounded by design (never an id), so
    /// the cache is too.
    static let handles = Handles()

    final class Handles: Sendable {
        let counters = Cache<CoreMetrics.Counter>()
        let gauges = Cache<CoreMetrics.Gauge>()
        let timers = Cache<CoreMetrics.Timer>()
    }

    final class Cache<Handle: Sendable>: Sendable {
        /// The name, then each label's name and value, in order: the same
        /// figure asked for with its labels in another order is another
        /// series to swift-metrics too, so nothing is lost by not sorting.
        struct Key: Hashable { let parts: [String] }

        private let made = Mutex<[Key: Handle]>([:])

        func find(_ name: String, _ labels: [(String, String)], make: () -> Handle) -> Handle {
            var parts = [name]
            parts.reserveCapacity(1 + 2 * labels.count)
            for (label, value) in labels { parts.append(label); parts.append(value) }
            let key = Key(parts: parts)
            if let handle = made.withLock({ $0[key] }) { return handle }
            // Made outside the lock (swift-prometheus takes its own); two
            // threads racing here get the same series from the registry,
            // and the first handle stored is the one kept.
            let handle = make()
            return made.withLock { made in
                if let first = made[key] { return first }
                made[key] = handle
                return handle
            }
        }
    }

    // MARK: Reading them

    /// Figures that are cheaper to read when asked than to keep up to date
    /// (a table's backlog, a consumer's lag): each hook sets its gauges, and
    /// every scrape runs them all first. A hook must be quick and must not
    /// block a thread (it runs on the cooperative pool).
    public static func beforeEachScrape(_ hook: @escaping @Sendable () async -> Void) {
        hooks.withLock { $0.append(Hook(hook)) }
    }

    /// Everything this process measured, in Prometheus' text format.
    ///
    /// The hooks run side by side, and the page is written after at most
    /// `hookDeadline` whether they have finished or not: one that waits on
    /// a broker that is down (its lag, its queue lengths) must not make the
    /// whole scrape time out. Its gauges keep their last figures, and a
    /// hook still running is not started again by the next scrape, which
    /// waits for the same run instead.
    public static func exposition() async -> [UInt8] {
        _ = factory
        let runs = hooks.withLock { $0 }.map { $0.run() }
        if !runs.isEmpty {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumed = Mutex(false)
                let resume: @Sendable () -> Void = {
                    if resumed.withLock({ done in defer { done = true }; return !done }) { continuation.resume() }
                }
                let deadline = Task {
                    try? await Task.sleep(for: hookDeadline)
                    resume()
                }
                Task {
                    for run in runs { await run.value }
                    deadline.cancel()
                    resume()
                }
            }
        }
        return registry.emitToBuffer()
    }

    /// How long a scrape waits for its hooks (Prometheus gives a scrape 2 s
    /// in `scripts/infra`'s configuration).
    static let hookDeadline: Duration = .seconds(1)

    /// A hook, and its run under way, if any.
    final class Hook: Sendable {
        let body: @Sendable () async -> Void
        let current = Mutex<Task<Void, Never>?>(nil)

        init(_ body: @escaping @Sendable () async -> Void) { self.body = body }

        /// The run under way (a scrape that comes while another's hooks
        /// still run waits for the same run, within its own deadline), or
        /// a new one.
        func run() -> Task<Void, Never> {
            current.withLock { current in
                if let running = current { return running }
                let task = Task {
                    await body()
                    self.current.withLock { $0 = nil }
                }
                current = task
                return task
            }
        }
    }

    /// The content type of `exposition()`: Prometheus' text format 0.0.4.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private static let hooks = Mutex<[Hook]>([])
}

extension CoreMetrics.Timer {
    /// Records the time since `start` (a `ContinuousClock` instant).
    public func record(since start: ContinuousClock.Instant) {
        record(duration: ContinuousClock.now - start)
    }
}
