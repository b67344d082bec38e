import Redis

/// Every change of a job's state is one Lua script: Redis runs a script
/// whole, with nothing else in between, so a job can never be seen half
/// moved (out of `wait` but not yet in `active`, say) even with many
/// workers and producers at once.
///
/// The scripts are ours, written for this layout; the layout, the field
/// names and the events are BullMQ's, so BullMQ's own clients can share the
/// queues. Each script is a shared prelude of helpers plus its own body.
/// All of them take the queue's keys in `QueueKeys.all`'s order, then any
/// keys of their own, and the key prefix as ARGV[1].
enum JobScripts {
    /// Names for the keys, and the helpers several scripts use.
    static let prelude = """
    local rcall = redis.call
    local waitKey, activeKey, prioritizedKey, delayedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
    local completedKey, failedKey, eventsKey, metaKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
    local markerKey, priorityCounterKey, stalledKey, limiterKey = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
    local idKey, repeatKey, stalledCheckKey, pausedKey = KEYS[13], KEYS[14], KEYS[15], KEYS[16]
    local prefix = ARGV[1]

    -- The events stream is capped (approximately, which is cheap) at the
    -- length the queue's meta asks for; BullMQ's default is 10000.
    local function maxEvents()
      local n = rcall("HGET", metaKey, "opts.maxLenEvents")
      if not n then
        n = 10000
        rcall("HSET", metaKey, "opts.maxLenEvents", n)
      end
      return n
    end

    local function emit(...)
      rcall("XADD", eventsKey, "MAXLEN", "~", maxEvents(), "*", ...)
    end

    -- A paused queue keeps its jobs in `wait` but gives workers no marker.
    -- `concurrency` in meta is BullMQ's queue-wide cap on active jobs.
    local function isPausedOrMaxed()
      local meta = rcall("HMGET", metaKey, "paused", "concurrency")
      if meta[1] then return true end
      if meta[2] then return rcall("LLEN", activeKey) >= tonumber(meta[2]) end
      return false
    end

    -- Wakes a worker blocked on the marker: member "0" at score 0 means
    -- "a job is ready now".
    local function signalReady()
      if not isPausedOrMaxed() then rcall("ZADD", markerKey, 0, "0") end
    end

    -- Member "1" scored with the earliest due time in `delayed` tells an idle
    -- worker how long it may block.
    local function signalNextDelayed()
      local first = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
      if first[2] then
        rcall("ZADD", markerKey, math.floor(tonumber(first[2]) / 0x1000), "1")
      end
    end

    -- Puts a ready job in line: `wait` for no priority, else `prioritized`
    -- with the priority in the high bits and a counter in the low 32 bits.
    local function enqueue(jobId, priority, pushCommand)
      if priority == 0 then
        rcall(pushCommand, waitKey, jobId)
      else
        local counter = rcall("INCR", priorityCounterKey)
        rcall("ZADD", prioritizedKey, priority * 0x100000000 + counter % 0x100000000, jobId)
      end
      signalReady()
    end

    -- Due time × 4096 plus a sequence: jobs due in the same millisecond keep
    -- the order they were delayed in.
    local function delay(jobId, dueAt)
      local lowest = dueAt * 0x1000
      local highest = lowest + 0xfff
      local last = rcall("ZREVRANGEBYSCORE", delayedKey, highest, lowest, "WITHSCORES", "LIMIT", 0, 1)
      local score = lowest
      if last[2] then score = math.min(tonumber(last[2]) + 1, highest) end
      rcall("ZADD", delayedKey, score, jobId)
      signalNextDelayed()
    end

    -- The job hash, in BullMQ's field names.
    local function storeJob(jobId, name, data, opts, timestamp, delayMs, priority, schedulerId)
      local jobKey = prefix .. jobId
      rcall("HSET", jobKey, "name", name, "data", data, "opts", opts,
        "timestamp", timestamp, "delay", delayMs, "priority", priority)
      if schedulerId then rcall("HSET", jobKey, "rjk", schedulerId) end
      emit("event", "added", "jobId", jobId, "name", name)
    end

    -- Stores a new job and puts it where it belongs: delayed, or in line.
    local function addNewJob(jobId, name, data, opts, timestamp, delayMs, priority, schedulerId)
      storeJob(jobId, name, data, opts, timestamp, delayMs, priority, schedulerId)
      if delayMs > 0 then
        delay(jobId, timestamp + delayMs)
        emit("event", "delayed", "jobId", jobId, "delay", timestamp + delayMs)
      else
        enqueue(jobId, priority, "LPUSH")
        emit("event", "waiting", "jobId", jobId)
      end
    end

    local function removeJobKeys(jobKey)
      rcall("DEL", jobKey, jobKey .. ":logs", jobKey .. ":lock", jobKey .. ":dependencies",
        jobKey .. ":processed", jobKey .. ":failed", jobKey .. ":unsuccessful")
    end

    -- Takes a job that has not started out of wherever it waits; true if it was there.
    local function removeIfPending(jobId)
      local removed = rcall("ZREM", delayedKey, jobId) + rcall("ZREM", prioritizedKey, jobId)
        + rcall("LREM", waitKey, 0, jobId) + rcall("LREM", pausedKey, 0, jobId)
      if removed > 0 then removeJobKeys(prefix .. jobId) end
      return removed > 0
    end

    -- The job a scheduler makes for the time `millis`: id
    -- `repeat:<schedulerId>:<millis>`, data and opts from the scheduler's
    -- hash, and in its opts the `repeat` block BullMQ's workers read to
    -- make the next one.
    local function addSchedulerJob(schedulerId, millis, now)
      local jobId = "repeat:" .. schedulerId .. ":" .. millis
      if rcall("EXISTS", prefix .. jobId) == 1 then
        emit("event", "duplicated", "jobId", jobId)
        return nil
      end
      local scheduler = repeatKey .. ":" .. schedulerId
      local fields = rcall("HMGET", scheduler, "name", "data", "opts", "every", "offset", "ic")
      local opts = cjson.decode(fields[3] or "{}")
      local delayMs = math.max(millis - now, 0)
      opts["repeat"] = {every = tonumber(fields[4]), offset = tonumber(fields[5]) or 0, count = tonumber(fields[6]) or 1}
      opts["jobId"] = jobId
      opts["delay"] = delayMs
      opts["prevMillis"] = millis
      opts["repeatJobKey"] = schedulerId
      if opts["attempts"] == nil then opts["attempts"] = 1 end
      rcall("INCR", idKey)
      addNewJob(jobId, fields[1], fields[2] or "{}", cjson.encode(opts), now, delayMs,
        tonumber(opts["priority"]) or 0, schedulerId)
      return jobId
    end

    -- When a scheduler's job starts, the scheduler makes the next one: one
    -- `every` later, or the next slot after now if the worker was away.
    -- Only the job of the scheduler's current slot may do it, so a job
    -- retried or recovered from a stall does not make a second one.
    local function advanceScheduler(schedulerId, jobId, now)
      local previous = rcall("ZSCORE", repeatKey, schedulerId)
      if not previous then return end
      previous = tonumber(previous)
      if jobId ~= "repeat:" .. schedulerId .. ":" .. previous then return end
      local scheduler = repeatKey .. ":" .. schedulerId
      local every = tonumber(rcall("HGET", scheduler, "every"))
      if not every or every <= 0 then return end
      local offset = tonumber(rcall("HGET", scheduler, "offset")) or 0
      local nextMillis = previous + every
      if nextMillis < now then
        nextMillis = math.floor(now / every) * every + offset
        if nextMillis <= now then nextMillis = nextMillis + every end
      end
      if rcall("EXISTS", prefix .. "repeat:" .. schedulerId .. ":" .. nextMillis) == 1 then return end
      rcall("ZADD", repeatKey, nextMillis, schedulerId)
      rcall("HINCRBY", scheduler, "ic", 1)
      addSchedulerJob(schedulerId, nextMillis, now)
    end

    -- Moves the delayed jobs that are due into line (at most 1000 at once,
    -- to keep the script short).
    local function promoteDueJobs(now)
      local due = rcall("ZRANGEBYSCORE", delayedKey, 0, (now + 1) * 0x1000 - 1, "LIMIT", 0, 1000)
      if #due == 0 then return end
      rcall("ZREM", delayedKey, unpack(due))
      for _, jobId in ipairs(due) do
        local priority = tonumber(rcall("HGET", prefix .. jobId, "priority")) or 0
        enqueue(jobId, priority, "LPUSH")
        emit("event", "waiting", "jobId", jobId, "prev", "delayed")
        rcall("HSET", prefix .. jobId, "delay", 0)
      end
    end

    -- How long the queue's rate limit still holds (ms), 0 if it does not.
    local function rateLimitWait(maxJobs)
      if maxJobs and maxJobs <= tonumber(rcall("GET", limiterKey) or 0) then
        local ttl = rcall("PTTL", limiterKey)
        if ttl > 0 then return ttl end
        if ttl == 0 then rcall("DEL", limiterKey) end
      end
      return 0
    end

    -- The next job for a worker, locked with its token. Answers
    -- {fields, id, 0, 0} for a job, {0, 0, ttl, 0} when rate limited,
    -- {0, 0, 0, dueAt} when only delayed jobs remain, {0, 0, 0, 0} for none.
    local function takeNextJob(now, token, lockMs)
      promoteDueJobs(now)
      local meta = rcall("HMGET", metaKey, "max", "duration")
      local maxJobs = tonumber(meta[1])
      local wait = rateLimitWait(maxJobs)
      if wait > 0 then return {0, 0, wait, 0} end
      if isPausedOrMaxed() then return {0, 0, 0, 0} end
      local jobId = rcall("RPOPLPUSH", waitKey, activeKey)
      -- "0:…" entries are markers older BullMQ versions kept in `wait`.
      while jobId and string.sub(jobId, 1, 2) == "0:" do
        rcall("LREM", activeKey, 1, jobId)
        jobId = rcall("RPOPLPUSH", waitKey, activeKey)
      end
      if not jobId then
        local popped = rcall("ZPOPMIN", prioritizedKey)
        if popped[1] then
          jobId = popped[1]
          rcall("LPUSH", activeKey, jobId)
        else
          rcall("DEL", priorityCounterKey)
        end
      end
      if not jobId then
        local first = rcall("ZRANGE", delayedKey, 0, 0, "WITHSCORES")
        if first[2] then return {0, 0, 0, math.floor(tonumber(first[2]) / 0x1000)} end
        return {0, 0, 0, 0}
      end
      local jobKey = prefix .. jobId
      if maxJobs and rcall("INCR", limiterKey) == 1 then
        rcall("PEXPIRE", limiterKey, math.floor(tonumber(meta[2]) or 1000))
      end
      rcall("SET", jobKey .. ":lock", token, "PX", lockMs)
      rcall("HSET", jobKey, "processedOn", now)
      rcall("HINCRBY", jobKey, "ats", 1)
      emit("event", "active", "jobId", jobId, "prev", "waiting")
      -- Another idle worker may take the next one.
      if rcall("LLEN", waitKey) + rcall("ZCARD", prioritizedKey) > 0 then signalReady() end
      local schedulerId = rcall("HGET", jobKey, "rjk")
      if schedulerId then advanceScheduler(schedulerId, jobId, now) end
      return {rcall("HGETALL", jobKey), jobId, 0, 0}
    end

    -- Checks that `token` holds the job's lock and releases it. 0 when it
    -- did; -2 when there was no lock, -6 when another worker holds it.
    local function releaseLock(jobId, token)
      local lockKey = prefix .. jobId .. ":lock"
      local holder = rcall("GET", lockKey)
      if holder ~= token then
        if holder then return -6 end
        return -2
      end
      rcall("DEL", lockKey)
      rcall("SREM", stalledKey, jobId)
      return 0
    end

    -- Drops the oldest finished jobs beyond a count and those older than an
    -- age (seconds): BullMQ's removeOnComplete / removeOnFail.
    local function pruneFinished(setKey, keepCount, keepAge, now)
      if keepAge >= 0 then
        local cutoff = now - keepAge * 1000
        local old = rcall("ZRANGEBYSCORE", setKey, "-inf", cutoff, "LIMIT", 0, 1000)
        for _, jobId in ipairs(old) do
          removeJobKeys(prefix .. jobId)
          rcall("ZREM", setKey, jobId)
        end
      end
      if keepCount > 0 then
        local extra = rcall("ZREVRANGE", setKey, keepCount, -1)
        for _, jobId in ipairs(extra) do removeJobKeys(prefix .. jobId) end
        if #extra > 0 then rcall("ZREMRANGEBYRANK", setKey, 0, -(keepCount + 1)) end
      end
    end

    """

    private static func script(_ body: String) -> RedisScript { RedisScript(prelude + body) }

    /// ARGV: prefix, custom id ("" for the next number), name, timestamp,
    /// data, opts JSON, delay ms, priority. Answers the job's id.
    static let addJob = script("""
    local customId, name, timestamp = ARGV[2], ARGV[3], tonumber(ARGV[4])
    local counter = rcall("INCR", idKey)
    local jobId = customId
    if jobId == "" then jobId = tostring(counter) end
    -- A second add of the same custom id changes nothing: that is what makes
    -- an add that may be repeated (a relay sending again) harmless.
    if rcall("EXISTS", prefix .. jobId) == 1 then
      emit("event", "duplicated", "jobId", jobId)
      return jobId
    end
    addNewJob(jobId, name, ARGV[5], ARGV[6], timestamp, tonumber(ARGV[7]), tonumber(ARGV[8]), nil)
    return jobId
    """)

    /// ARGV: prefix, now, token, lock ms. See `takeNextJob`.
    static let takeNext = script("""
    return takeNextJob(tonumber(ARGV[2]), ARGV[3], ARGV[4])
    """)

    /// Completes a job, or fails it for good. ARGV: prefix, job id, now,
    /// token, "completed"/"failed", return value JSON or failed reason,
    /// stacktrace JSON ("" to leave it), keep count (-1: all), keep age
    /// (-1: any), attempts, fetch next ("1"), lock ms, next token.
    /// Answers a negative code, 0, or the next job as `takeNextJob` does.
    static let finish = script("""
    local jobId, now, token, outcome = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
    local jobKey = prefix .. jobId
    if rcall("EXISTS", jobKey) == 0 then return -1 end
    local released = releaseLock(jobId, token)
    if released < 0 then return released end
    if rcall("LREM", activeKey, -1, jobId) == 0 then return -3 end
    local attemptsMade = rcall("HINCRBY", jobKey, "atm", 1)
    local field, setKey = "returnvalue", completedKey
    if outcome == "failed" then field, setKey = "failedReason", failedKey end
    local keepCount, keepAge = tonumber(ARGV[8]), tonumber(ARGV[9])
    if keepCount == 0 then
      removeJobKeys(jobKey)
    else
      rcall("ZADD", setKey, now, jobId)
      rcall("HSET", jobKey, field, ARGV[6], "finishedOn", now)
      if ARGV[7] ~= "" then rcall("HSET", jobKey, "stacktrace", ARGV[7]) end
      rcall("HDEL", jobKey, "defa")
      pruneFinished(setKey, keepCount, keepAge, now)
    end
    emit("event", outcome, "jobId", jobId, field, ARGV[6], "prev", "active")
    if outcome == "failed" and attemptsMade >= tonumber(ARGV[10]) then
      emit("event", "retries-exhausted", "jobId", jobId, "attemptsMade", attemptsMade)
    end
    local nextJob = {0, 0, 0, 0}
    if ARGV[11] == "1" then nextJob = takeNextJob(now, ARGV[13], ARGV[12]) end
    if nextJob[1] == 0 and rcall("LLEN", waitKey) + rcall("ZCARD", prioritizedKey) == 0 then
      emit("event", "drained")
    end
    return nextJob
    """)

    /// A failed attempt with attempts left: back in line at once, or delayed
    /// by the backoff. ARGV: prefix, job id, now, token, delay ms, failed
    /// reason, stacktrace JSON.
    static let retryLater = script("""
    local jobId, now, token, delayMs = ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
    local jobKey = prefix .. jobId
    if rcall("EXISTS", jobKey) == 0 then return -1 end
    local released = releaseLock(jobId, token)
    if released < 0 then return released end
    if rcall("LREM", activeKey, -1, jobId) == 0 then return -3 end
    rcall("HINCRBY", jobKey, "atm", 1)
    rcall("HSET", jobKey, "failedReason", ARGV[6], "stacktrace", ARGV[7])
    if delayMs > 0 then
      rcall("HSET", jobKey, "delay", delayMs)
      delay(jobId, now + delayMs)
      emit("event", "delayed", "jobId", jobId, "delay", now + delayMs)
    else
      enqueue(jobId, tonumber(rcall("HGET", jobKey, "priority")) or 0, "LPUSH")
      emit("event", "waiting", "jobId", jobId, "prev", "active")
    end
    return 0
    """)

    /// Gives an active job back to the front of `wait` (a worker shutting
    /// down past its grace period). ARGV: prefix, job id, token.
    static let handBack = script("""
    local jobId = ARGV[2]
    local released = releaseLock(jobId, ARGV[3])
    if released < 0 then return released end
    if rcall("LREM", activeKey, -1, jobId) == 0 then return -3 end
    -- The tail of `wait` is taken next: the job is not sent to the back of the line.
    rcall("RPUSH", waitKey, jobId)
    signalReady()
    emit("event", "waiting", "jobId", jobId, "prev", "active")
    return 0
    """)

    /// Renews a lock if `token` still holds it. KEYS: lock, stalled.
    /// ARGV: token, lock ms, job id. Answers 1 if renewed.
    static let extendLock = RedisScript("""
    if redis.call("GET", KEYS[1]) == ARGV[1] then
      redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
      -- Renewed, so not stalled: the next check must not suspect it.
      redis.call("SREM", KEYS[2], ARGV[3])
      return 1
    end
    return 0
    """)

    /// The stalled-job check, in two rounds: each check first recovers the
    /// jobs the previous check marked (in `stalled`) whose lock has expired
    /// since, then marks every active job. A job whose worker keeps
    /// renewing its lock is unmarked by the renewal. The `stalled-check`
    /// key with a TTL makes one check per interval across all workers.
    /// ARGV: prefix, now, max stalled count, interval ms. Answers the ids
    /// moved back to wait.
    static let recoverStalled = script("""
    local now, maxStalled, interval = ARGV[2], tonumber(ARGV[3]), ARGV[4]
    if rcall("SET", stalledCheckKey, now, "PX", interval, "NX") == false then return {} end
    rcall("XTRIM", eventsKey, "MAXLEN", "~", maxEvents())
    local recovered = {}
    for _, jobId in ipairs(rcall("SMEMBERS", stalledKey)) do
      local jobKey = prefix .. jobId
      if rcall("EXISTS", jobKey .. ":lock") == 0 and rcall("LREM", activeKey, 1, jobId) > 0 then
        local count = rcall("HINCRBY", jobKey, "stc", 1)
        -- Too many stalls: the next worker to take it fails it at once
        -- (BullMQ's deferred failure; its wording is what its clients expect).
        if count > maxStalled and not rcall("HGET", jobKey, "rjk") then
          rcall("HSET", jobKey, "defa", "job stalled more than allowable limit")
        end
        rcall("RPUSH", waitKey, jobId)
        signalReady()
        emit("event", "waiting", "jobId", jobId, "prev", "active")
        emit("event", "stalled", "jobId", jobId)
        recovered[#recovered + 1] = jobId
      end
    end
    rcall("DEL", stalledKey)
    local active = rcall("LRANGE", activeKey, 0, -1)
    for i = 1, #active, 5000 do
      rcall("SADD", stalledKey, unpack(active, i, math.min(i + 4999, #active)))
    end
    return recovered
    """)

    /// A failed job back in line, its attempts kept. ARGV: prefix, job id.
    /// Answers 1, -1 (no such job) or -3 (not failed).
    static let retryFailed = script("""
    local jobId = ARGV[2]
    local jobKey = prefix .. jobId
    if rcall("EXISTS", jobKey) == 0 then return -1 end
    if rcall("ZREM", failedKey, jobId) == 0 then return -3 end
    rcall("HDEL", jobKey, "finishedOn", "processedOn", "failedReason")
    enqueue(jobId, tonumber(rcall("HGET", jobKey, "priority")) or 0, "LPUSH")
    emit("event", "waiting", "jobId", jobId, "prev", "failed")
    return 1
    """)

    /// ARGV: prefix, "paused" or "resumed".
    static let pause = script("""
    if ARGV[2] == "paused" then
      rcall("HSET", metaKey, "paused", 1)
      rcall("DEL", markerKey)
    else
      rcall("HDEL", metaKey, "paused")
      -- Jobs an older BullMQ parked in `paused` go back in line.
      while rcall("RPOPLPUSH", pausedKey, waitKey) do end
      if rcall("LLEN", waitKey) + rcall("ZCARD", prioritizedKey) > 0 then
        signalReady()
      else
        signalNextDelayed()
      end
    end
    emit("event", ARGV[2])
    return 0
    """)

    /// ARGV: prefix, job id. Answers the state's name (`JobState`).
    static let state = script("""
    local jobId = ARGV[2]
    if rcall("ZSCORE", completedKey, jobId) then return "completed" end
    if rcall("ZSCORE", failedKey, jobId) then return "failed" end
    if rcall("ZSCORE", delayedKey, jobId) then return "delayed" end
    if rcall("ZSCORE", prioritizedKey, jobId) then return "prioritized" end
    if rcall("LPOS", activeKey, jobId) then return "active" end
    if rcall("LPOS", waitKey, jobId) or rcall("LPOS", pausedKey, jobId) then
      if rcall("HEXISTS", metaKey, "paused") == 1 then return "paused" end
      return "waiting"
    end
    return "unknown"
    """)

    /// Creates or replaces a scheduler and makes its first job, due now.
    /// ARGV: prefix, scheduler id, now, every ms, job name, data JSON, job
    /// opts JSON. Answers the first job's id.
    static let upsertScheduler = script("""
    local schedulerId, now, every = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
    local scheduler = repeatKey .. ":" .. schedulerId
    local nextMillis = now
    local previous = rcall("ZSCORE", repeatKey, schedulerId)
    local iterations = tonumber(rcall("HGET", scheduler, "ic")) or 1
    if previous then
      -- The job waiting for the old slot is replaced; if it had not started,
      -- the new job keeps its slot, as BullMQ does.
      local removed = removeIfPending("repeat:" .. schedulerId .. ":" .. previous)
      local sameEvery = tonumber(rcall("HGET", scheduler, "every")) == every
      if removed and sameEvery then nextMillis = tonumber(previous) end
    end
    rcall("DEL", scheduler)
    rcall("HSET", scheduler, "name", ARGV[5], "every", every, "offset", nextMillis % every,
      "data", ARGV[6], "opts", ARGV[7], "ic", iterations)
    rcall("ZADD", repeatKey, nextMillis, schedulerId)
    return addSchedulerJob(schedulerId, nextMillis, now) or ("repeat:" .. schedulerId .. ":" .. nextMillis)
    """)

    /// ARGV: prefix, scheduler id. Answers 1 if it existed.
    static let removeScheduler = script("""
    local schedulerId = ARGV[2]
    local previous = rcall("ZSCORE", repeatKey, schedulerId)
    if previous then removeIfPending("repeat:" .. schedulerId .. ":" .. previous) end
    rcall("DEL", repeatKey .. ":" .. schedulerId)
    return rcall("ZREM", repeatKey, schedulerId)
    """)
}
