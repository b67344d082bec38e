import Observability

/// What the event store's writers did, for `GET /metrics`:
/// `shop_event_store_appended_events_total` (events committed by commands)
/// and `shop_event_store_conflicts_total` (a command decided on a state
/// another writer had moved past, and decided again). Conflicts that grow
/// with the appends mean writers crowding the same streams.
enum StoreMetrics {
    static let appendedEvents = Observability.counter("shop_event_store_appended_events_total")
    static let conflicts = Observability.counter("shop_event_store_conflicts_total")

    /// Both counters on the page from the start, at 0: a query for
    /// conflicts should find none, not nothing.
    static func announce() {
        _ = appendedEvents
        _ = conflicts
    }

    static func appended(_ count: Int) { appendedEvents.increment(by: count) }
    static func conflict() { conflicts.increment() }
}
