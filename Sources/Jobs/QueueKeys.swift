/// The Redis keys of one queue, BullMQ's layout: everything under
/// `<prefix>:<queue>:`, so a BullMQ client given the same prefix and queue
/// name sees the same jobs.
///
/// - `wait` (list): jobs ready to run; added at the head (LPUSH), taken from
///   the tail (RPOPLPUSH into `active`), so the oldest goes first.
/// - `active` (list): jobs a worker holds; each has a `<id>:lock` key.
/// - `prioritized` (sorted set): ready jobs with a priority, lowest score first.
/// - `delayed` (sorted set): jobs not due yet, scored by due time (see `DelayedScore`).
/// - `completed`, `failed` (sorted sets): finished jobs, scored by finish time.
/// - `events` (stream): what happened, for listeners (BullMQ's QueueEvents).
/// - `meta` (hash): `paused`, the rate limit `max`/`duration`, `opts.maxLenEvents`.
/// - `marker` (sorted set): what an idle worker blocks on with BZPOPMIN (member
///   "0" at score 0: a job is ready; member "1" at a time: the next delayed job's due time).
/// - `stalled` (set), `stalled-check` (string with a TTL): the stalled-job check.
/// - `limiter` (counter with a TTL): jobs started in the current rate-limit window.
/// - `id` (counter): the next automatic job id.
/// - `pc` (counter): keeps equal priorities in the order they were added.
/// - `repeat` (sorted set) and `repeat:<schedulerId>` (hash): job schedulers.
struct QueueKeys: Sendable {
    let queue: String
    /// `<prefix>:<queue>:`, which a job id completes into its hash's key.
    let base: String

    init(prefix: String, queue: String) {
        self.queue = queue
        base = "\(prefix):\(queue):"
    }

    func key(_ name: String) -> String { base + name }

    /// The order every script of ours expects its first KEYS in (see
    /// `JobScripts.prelude`).
    var all: [String] {
        ["wait", "active", "prioritized", "delayed", "completed", "failed", "events", "meta",
         "marker", "pc", "stalled", "limiter", "id", "repeat", "stalled-check", "paused"].map(key)
    }

    func job(_ id: String) -> String { base + id }

    var marker: String { key("marker") }
    var meta: String { key("meta") }
    var repeatSet: String { key("repeat") }
    func scheduler(_ id: String) -> String { key("repeat:\(id)") }
}
