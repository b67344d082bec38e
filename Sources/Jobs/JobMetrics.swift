import Observability

/// What the job queues hold and what their workers did, for `GET /metrics`
/// (stage 5 on):
///
/// - `shop_jobs{queue, state}`: jobs in each state (`waiting`, `active`,
///   `delayed`, `prioritized`, `completed`, `failed`, `paused`), read from
///   Redis at each scrape by the process that shows them to the
///   administrator (`JobOffice`), so that each queue is counted once;
/// - `shop_job_duration_seconds{queue, outcome}`: each run of a job by a
///   worker of this process, by how it ended: `completed`, `retried` (it
///   failed and has attempts left; it waits out its backoff) or `failed`.
///   Its `_count` is the number of runs.
public enum JobMetrics {
    static func ran(queue: String, outcome: String, since started: ContinuousClock.Instant) {
        Observability.timer("shop_job_duration_seconds", [("queue", queue), ("outcome", outcome)]).record(since: started)
    }

    static func watch(_ office: JobOffice) {
        Observability.beforeEachScrape {
            // Redis down: the gauges keep their last figures, and
            // `/admin/jobs` says what is wrong.
            guard let summary = try? await office.summary() else { return }
            for queue in summary.queues {
                let counts = queue.counts
                for (state, count) in [
                    ("waiting", counts.waiting), ("active", counts.active), ("delayed", counts.delayed),
                    ("prioritized", counts.prioritized), ("completed", counts.completed),
                    ("failed", counts.failed), ("paused", counts.paused),
                ] {
                    Observability.gauge("shop_jobs", [("queue", queue.name), ("state", state)]).record(count)
                }
            }
        }
    }
}
