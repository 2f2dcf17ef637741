import Redis

/// The Lua scripts behind every state change, written for BullMQ's key layout (see
/// docs/queues.md). Each takes the queue base (`prefix:name:`) as ARGV[1] and
/// builds key names itself, as BullMQ's scripts do, so all keys of a queue must share one slot.
enum QueueScripts {
    /// Helpers shared by the scripts; prepended so that each script stays a single EVALSHA.
    static let lib = #"""
local function maxEvents(base)
  local m = redis.call('HGET', base .. 'meta', 'opts.maxLenEvents')
  if m then return tonumber(m) end
  redis.call('HSET', base .. 'meta', 'opts.maxLenEvents', 10000)
  return 10000
end
local function isPausedOrMaxed(base)
  local m = redis.call('HMGET', base .. 'meta', 'paused', 'concurrency')
  if m[1] then return true end
  if m[2] then return redis.call('LLEN', base .. 'active') >= tonumber(m[2]) end
  return false
end
local function addReadyMarker(base)
  if not isPausedOrMaxed(base) then redis.call('ZADD', base .. 'marker', 0, '0') end
end
local function addDelayMarker(base)
  local r = redis.call('ZRANGE', base .. 'delayed', 0, 0, 'WITHSCORES')
  if r[2] then redis.call('ZADD', base .. 'marker', tonumber(r[2]) / 4096, '1') end
end
local function delayedScore(base, due)
  local lo = due * 4096
  local r = redis.call('ZREVRANGEBYSCORE', base .. 'delayed', lo + 4095, lo, 'WITHSCORES', 'LIMIT', 0, 1)
  if r[2] then
    local s = tonumber(r[2]) + 1
    if s > lo + 4095 then s = lo + 4095 end
    return s
  end
  return lo
end
local function enqueue(base, id, prio, lifo)
  if prio > 0 then
    local c = redis.call('INCR', base .. 'pc')
    redis.call('ZADD', base .. 'prioritized', prio * 4294967296 + (c % 4294967296), id)
  elseif lifo then
    redis.call('RPUSH', base .. 'wait', id)
  else
    redis.call('LPUSH', base .. 'wait', id)
  end
end
local function jobPriority(jk)
  return tonumber(redis.call('HGET', jk, 'priority') or '0') or 0
end
local function removeJobKeys(jk)
  redis.call('DEL', jk, jk .. ':logs', jk .. ':dependencies', jk .. ':processed', jk .. ':failed', jk .. ':unsuccessful')
end
-- BullMQ's per-minute metrics (docs/queues.md, "Metrics"): `metrics:<target>` counts finishes
-- (`count`) and remembers the count and time of the last data point (`prevCount`, `prevTS`);
-- once whole minutes have passed since then, the finishes since are pushed onto
-- `metrics:<target>:data` (newest first), with a 0 for every further empty minute, trimmed to
-- maxPoints. The count read before this finish is what is pushed, as BullMQ does.
local function collectMetrics(base, target, maxPoints, now)
  local mk = base .. 'metrics:' .. target
  local count = redis.call('HINCRBY', mk, 'count', 1) - 1
  local prevTS = redis.call('HGET', mk, 'prevTS')
  if not prevTS then
    redis.call('HSET', mk, 'prevTS', now, 'prevCount', 0)
    return
  end
  local n = math.min(math.floor((now - tonumber(prevTS)) / 60000), maxPoints)
  if n > 0 then
    local dk = mk .. ':data'
    local points = { count - tonumber(redis.call('HGET', mk, 'prevCount') or '0') }
    for i = 2, n do points[i] = 0 end
    for i = 1, #points, 5000 do redis.call('LPUSH', dk, unpack(points, i, math.min(i + 4999, #points))) end
    redis.call('LTRIM', dk, 0, maxPoints - 1)
    redis.call('HSET', mk, 'prevCount', count, 'prevTS', now)
  end
end
local function zremChunked(key, ids)
  for i = 1, #ids, 5000 do
    redis.call('ZREM', key, unpack(ids, i, math.min(i + 4999, #ids)))
  end
end
local function releaseLock(base, jk, id, token)
  if token ~= '0' then
    local cur = redis.call('GET', jk .. ':lock')
    if not cur then return -2 end
    if cur ~= token then return -6 end
    redis.call('DEL', jk .. ':lock')
    redis.call('SREM', base .. 'stalled', id)
  end
  return 0
end
-- A job that carries a deduplication id (`deid`) finished for good: free the id if this job
-- still owns it, then create the job that keep-last-if-active adds saved in `dn:` while this
-- one was active (BullMQ's moveToFinished does both).
local function finishDeduplicated(base, id, deid, now, me)
  local dk = base .. 'de:' .. deid
  local pttl = redis.call('PTTL', dk)
  if pttl == 0 or (pttl == -1 and redis.call('GET', dk) == id) then redis.call('DEL', dk) end
  local nk = base .. 'dn:' .. deid
  if redis.call('EXISTS', nk) == 0 then return end
  local n = redis.call('HMGET', nk, 'name', 'data', 'opts', 'pk', 'pd', 'pdk', 'rjk', 'jid')
  local counter = redis.call('INCR', base .. 'id')
  local nid = n[8] or tostring(counter)
  local ok, opts = pcall(cjson.decode, n[3] or '{}')
  if not ok or type(opts) ~= 'table' then opts = {} end
  local de = opts['de']
  if type(de) ~= 'table' then de = nil end
  local ttl = de and tonumber(de['ttl'])
  if ttl and ttl > 0 and not de['keepLastIfActive'] then
    redis.call('SET', dk, nid, 'PX', ttl)
  else
    redis.call('SET', dk, nid)
  end
  local jk = base .. nid
  local delay = tonumber(opts['delay']) or 0
  local prio = tonumber(opts['priority']) or 0
  redis.call('HSET', jk, 'name', n[1], 'data', n[2], 'opts', n[3] or '{}', 'timestamp', now, 'delay', delay, 'priority', prio)
  if n[4] then redis.call('HSET', jk, 'parentKey', n[4], 'parent', n[5] or '') end
  if n[7] then redis.call('HSET', jk, 'rjk', n[7]) end
  if de and de['id'] then redis.call('HSET', jk, 'deid', de['id']) end
  redis.call('XADD', base .. 'events', '*', 'event', 'added', 'jobId', nid, 'name', n[1])
  if delay ~= 0 then
    local due = now + delay
    redis.call('ZADD', base .. 'delayed', delayedScore(base, due), nid)
    redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'delayed', 'jobId', nid, 'delay', due)
    addDelayMarker(base)
  else
    enqueue(base, nid, prio, opts['lifo'] == true)
    addReadyMarker(base)
    redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'waiting', 'jobId', nid)
  end
  if n[6] then redis.call('SADD', n[6], jk) end
  redis.call('DEL', nk)
end
-- A job is removed (not finished): its deduplication id is freed, and with it any job saved for
-- after it.
local function removeDeduplication(base, jk, id)
  local deid = redis.call('HGET', jk, 'deid')
  if deid and redis.call('GET', base .. 'de:' .. deid) == id then
    redis.call('DEL', base .. 'de:' .. deid, base .. 'dn:' .. deid)
  end
end
local function promoteDelayed(base, now, me)
  local ids = redis.call('ZRANGEBYSCORE', base .. 'delayed', 0, (now + 1) * 4096 - 1, 'LIMIT', 0, 1000)
  if #ids == 0 then return end
  zremChunked(base .. 'delayed', ids)
  for _, id in ipairs(ids) do
    local jk = base .. id
    enqueue(base, id, jobPriority(jk), false)
    redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
    redis.call('HSET', jk, 'delay', 0)
  end
  addReadyMarker(base)
end
local function takeJob(base, now, token, lockMs, me)
  promoteDelayed(base, now, me)
  local meta = redis.call('HMGET', base .. 'meta', 'paused', 'concurrency', 'max', 'duration')
  local maxJobs = tonumber(meta[3])
  if maxJobs then
    local cnt = tonumber(redis.call('GET', base .. 'limiter') or '0') or 0
    if cnt >= maxJobs then
      local pttl = redis.call('PTTL', base .. 'limiter')
      if pttl > 0 then return {0, 0, pttl, 0} end
      redis.call('DEL', base .. 'limiter')
    end
  end
  if meta[1] or (meta[2] and redis.call('LLEN', base .. 'active') >= tonumber(meta[2])) then return {0, 0, 0, 0} end
  local id = redis.call('RPOPLPUSH', base .. 'wait', base .. 'active')
  while id and string.sub(id, 1, 2) == '0:' do
    redis.call('LREM', base .. 'active', 1, id)
    id = redis.call('RPOPLPUSH', base .. 'wait', base .. 'active')
  end
  if not id then
    local r = redis.call('ZPOPMIN', base .. 'prioritized')
    if r[1] then
      id = r[1]
      redis.call('LPUSH', base .. 'active', id)
    else
      redis.call('DEL', base .. 'pc')
    end
  end
  if id then
    local jk = base .. id
    if redis.call('EXISTS', jk) == 0 then
      -- removed while waiting: drop the dangling id rather than resurrect a partial hash
      redis.call('LREM', base .. 'active', 1, id)
      redis.call('ZADD', base .. 'marker', 0, '0')
      return {0, 0, 0, 0}
    end
    if maxJobs and redis.call('HEXISTS', jk, 'defa') == 0 then
      if redis.call('INCR', base .. 'limiter') == 1 then
        redis.call('PEXPIRE', base .. 'limiter', math.floor(math.abs(tonumber(meta[4] or '0') or 0)))
      end
    end
    if token ~= '0' then redis.call('SET', jk .. ':lock', token, 'PX', lockMs) end
    redis.call('XADD', base .. 'events', '*', 'event', 'active', 'jobId', id, 'prev', 'waiting')
    redis.call('HSET', jk, 'processedOn', now)
    redis.call('HINCRBY', jk, 'ats', 1)
    redis.call('ZADD', base .. 'marker', 0, '0')
    return {redis.call('HGETALL', jk), id, 0, 0}
  end
  local r = redis.call('ZRANGE', base .. 'delayed', 0, 0, 'WITHSCORES')
  if r[2] then return {0, 0, 0, math.floor(tonumber(r[2]) / 4096)} end
  return {0, 0, 0, 0}
end
"""#

    private static func script(_ name: String, _ body: String) -> RedisScript {
        RedisScript(name: name, source: lib + "\n" + body)
    }

    /// ARGV: base, customId ('' for auto), name, timestamp, data, opts, delay, priority, lifo ('1').
    /// Returns {id, 1} when added, {id, 0} when the custom id existed already.
    static let addJob = script("addJob", #"""
local base = ARGV[1]
local counter = redis.call('INCR', base .. 'id')
local me = maxEvents(base)
local id = ARGV[2]
if id == '' then
  id = tostring(counter)
elseif redis.call('EXISTS', base .. id) == 1 then
  redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'duplicated', 'jobId', id)
  return {id, 0}
end
local jk = base .. id
local delay = tonumber(ARGV[7])
redis.call('HSET', jk, 'name', ARGV[3], 'data', ARGV[5], 'opts', ARGV[6], 'timestamp', ARGV[4],
  'delay', ARGV[7], 'priority', ARGV[8])
redis.call('XADD', base .. 'events', '*', 'event', 'added', 'jobId', id, 'name', ARGV[3])
if delay > 0 then
  local due = tonumber(ARGV[4]) + delay
  redis.call('ZADD', base .. 'delayed', delayedScore(base, due), id)
  redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'delayed', 'jobId', id, 'delay', due)
  addDelayMarker(base)
else
  enqueue(base, id, tonumber(ARGV[8]), ARGV[9] == '1')
  addReadyMarker(base)
  redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'waiting', 'jobId', id)
end
return {id, 1}
"""#)

    /// ARGV: base, now, token, lockMs. Returns {fields, id, rateLimitTtl, nextDelayedDue}.
    static let moveToActive = script("moveToActive", #"""
local base = ARGV[1]
return takeJob(base, tonumber(ARGV[2]), ARGV[3], ARGV[4], maxEvents(base))
"""#)

    /// ARGV: base, id, token, now, target, field, value, keepCount, keepAge ('' none), keepLimit,
    /// attempts, fetchNext ('1'), nextToken, lockMs, metrics data points ('' none), then
    /// field/value pairs to set first.
    /// Returns 0, a negative code, or the moveToActive answer for the next job.
    static let moveToFinished = script("moveToFinished", #"""
local base, id, token, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local target, field, value = ARGV[5], ARGV[6], ARGV[7]
local jk = base .. id
if redis.call('EXISTS', jk) == 0 then return -1 end
if target == 'completed' then
  if redis.call('SCARD', jk .. ':dependencies') ~= 0 then return -4 end
  if redis.call('ZCARD', jk .. ':unsuccessful') ~= 0 then return -9 end
end
local rc = releaseLock(base, jk, id, token)
if rc < 0 then return rc end
if #ARGV >= 16 then redis.call('HSET', jk, unpack(ARGV, 16, #ARGV)) end
if redis.call('LREM', base .. 'active', -1, id) == 0 then return -3 end
local me = maxEvents(base)
redis.call('XTRIM', base .. 'events', 'MAXLEN', '~', me)
local deid = redis.call('HGET', jk, 'deid')
if deid then finishDeduplicated(base, id, deid, now, me) end
local atm = redis.call('HINCRBY', jk, 'atm', 1)
local keepCount = tonumber(ARGV[8])
local set = base .. target
if keepCount == 0 then
  removeJobKeys(jk)
else
  redis.call('ZADD', set, now, id)
  redis.call('HSET', jk, field, value, 'finishedOn', now)
  if target == 'failed' then redis.call('HDEL', jk, 'defa') end
  if ARGV[9] ~= '' then
    local old = redis.call('ZRANGEBYSCORE', set, '-inf', now - tonumber(ARGV[9]) * 1000, 'LIMIT', 0, tonumber(ARGV[10]))
    for _, x in ipairs(old) do removeJobKeys(base .. x) end
    zremChunked(set, old)
  end
  if keepCount > 0 then
    local old = redis.call('ZRANGE', set, 0, -(keepCount + 1))
    if #old > 0 then
      for _, x in ipairs(old) do removeJobKeys(base .. x) end
      redis.call('ZREMRANGEBYRANK', set, 0, -(keepCount + 1))
    end
  end
end
redis.call('XADD', base .. 'events', '*', 'event', target, 'jobId', id, field, value, 'prev', 'active')
if target == 'failed' and atm >= tonumber(ARGV[11]) then
  redis.call('XADD', base .. 'events', '*', 'event', 'retries-exhausted', 'jobId', id, 'attemptsMade', atm)
end
if ARGV[15] ~= '' then collectMetrics(base, target, tonumber(ARGV[15]), now) end
if ARGV[12] == '1' then
  local r = takeJob(base, now, ARGV[13], ARGV[14], me)
  if r[1] ~= 0 then return r end
end
if redis.call('LLEN', base .. 'wait') == 0 and redis.call('LLEN', base .. 'active') == 0
  and redis.call('ZCARD', base .. 'prioritized') == 0 then
  redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'drained')
end
return 0
"""#)

    /// Retry after a backoff. ARGV: base, id, token, now, delayMs, then field/value pairs.
    static let moveToDelayed = script("moveToDelayed", #"""
local base, id, token, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local jk = base .. id
if redis.call('EXISTS', jk) == 0 then return -1 end
local rc = releaseLock(base, jk, id, token)
if rc < 0 then return rc end
if #ARGV >= 6 then redis.call('HSET', jk, unpack(ARGV, 6, #ARGV)) end
if redis.call('LREM', base .. 'active', -1, id) == 0 then return -3 end
local me = maxEvents(base)
local delay = tonumber(ARGV[5])
local due = now + delay
redis.call('HINCRBY', jk, 'atm', 1)
redis.call('HSET', jk, 'delay', delay)
redis.call('ZADD', base .. 'delayed', delayedScore(base, due), id)
redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'delayed', 'jobId', id, 'delay', due)
addDelayMarker(base)
return 0
"""#)

    /// Retry at once. ARGV: base, id, token, now, lifo ('1'), then field/value pairs.
    static let retryJob = script("retryJob", #"""
local base, id, token, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local jk = base .. id
local me = maxEvents(base)
promoteDelayed(base, now, me)
if redis.call('EXISTS', jk) == 0 then return -1 end
local rc = releaseLock(base, jk, id, token)
if rc < 0 then return rc end
if #ARGV >= 6 then redis.call('HSET', jk, unpack(ARGV, 6, #ARGV)) end
if redis.call('LREM', base .. 'active', -1, id) == 0 then return -3 end
enqueue(base, id, jobPriority(jk), ARGV[5] == '1')
addReadyMarker(base)
redis.call('HINCRBY', jk, 'atm', 1)
redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
return 0
"""#)

    /// Gives an active job back to the front of `wait` (worker shutdown). ARGV: base, id, token.
    static let releaseJob = script("releaseJob", #"""
local base, id, token = ARGV[1], ARGV[2], ARGV[3]
local jk = base .. id
if redis.call('EXISTS', jk) == 0 then return -1 end
local rc = releaseLock(base, jk, id, token)
if rc < 0 then return rc end
if redis.call('LREM', base .. 'active', -1, id) == 0 then return -3 end
redis.call('RPUSH', base .. 'wait', id)
addReadyMarker(base)
redis.call('XADD', base .. 'events', 'MAXLEN', '~', maxEvents(base), '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
return 0
"""#)

    /// ARGV: base, lockMs, then id/token pairs. Returns the id/token pairs (flat) whose lock was
    /// not theirs any more.
    static let extendLocks = script("extendLocks", #"""
local base = ARGV[1]
local failed = {}
for i = 3, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local lk = base .. id .. ':lock'
  if redis.call('GET', lk) == token then
    redis.call('SET', lk, token, 'PX', ARGV[2])
    redis.call('SREM', base .. 'stalled', id)
  else
    table.insert(failed, id)
    table.insert(failed, token)
  end
end
return failed
"""#)

    /// ARGV: base, now, maxStalledCount, stalledIntervalMs. Returns the ids moved back to wait.
    static let moveStalledJobsToWait = script("moveStalledJobsToWait", #"""
local base = ARGV[1]
if redis.call('EXISTS', base .. 'stalled-check') == 1 then return {} end
redis.call('SET', base .. 'stalled-check', ARGV[2], 'PX', ARGV[4])
local me = maxEvents(base)
redis.call('XTRIM', base .. 'events', 'MAXLEN', '~', me)
local recovered = {}
local stalled = redis.call('SMEMBERS', base .. 'stalled')
if #stalled > 0 then
  redis.call('DEL', base .. 'stalled')
  for _, id in ipairs(stalled) do
    if string.sub(id, 1, 2) == '0:' then
      redis.call('LREM', base .. 'active', 1, id)
    else
      local jk = base .. id
      if redis.call('EXISTS', jk .. ':lock') == 0 and redis.call('LREM', base .. 'active', 1, id) > 0 then
        local stc = redis.call('HINCRBY', jk, 'stc', 1)
        if stc > tonumber(ARGV[3]) then
          local rjk = redis.call('HGET', jk, 'rjk')
          if not (rjk and redis.call('EXISTS', base .. 'repeat:' .. rjk) == 1) then
            redis.call('HSET', jk, 'defa', 'job stalled more than allowable limit')
          end
        end
        redis.call('RPUSH', base .. 'wait', id)
        addReadyMarker(base)
        redis.call('XADD', base .. 'events', '*', 'event', 'waiting', 'jobId', id, 'prev', 'active')
        redis.call('XADD', base .. 'events', '*', 'event', 'stalled', 'jobId', id)
        table.insert(recovered, id)
      end
    end
  end
end
local active = redis.call('LRANGE', base .. 'active', 0, -1)
for i = 1, #active, 7000 do
  redis.call('SADD', base .. 'stalled', unpack(active, i, math.min(i + 6999, #active)))
end
return recovered
"""#)

    /// ARGV: base, '1' to pause or '0' to resume.
    static let pause = script("pause", #"""
local base = ARGV[1]
local me = maxEvents(base)
if ARGV[2] == '1' then
  redis.call('HSET', base .. 'meta', 'paused', 1)
  redis.call('DEL', base .. 'marker')
  redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'paused')
  return 0
end
redis.call('HDEL', base .. 'meta', 'paused')
-- jobs parked in the legacy `paused` list by BullMQ 5 peers go back to wait
if redis.call('EXISTS', base .. 'paused') == 1 then
  if redis.call('EXISTS', base .. 'wait') == 0 then
    redis.call('RENAME', base .. 'paused', base .. 'wait')
  else
    for _ = 1, 7000 do
      if not redis.call('RPOPLPUSH', base .. 'paused', base .. 'wait') then break end
    end
  end
end
if redis.call('LLEN', base .. 'wait') + redis.call('ZCARD', base .. 'prioritized') > 0 then
  redis.call('ZADD', base .. 'marker', 0, '0')
else
  addDelayMarker(base)
end
redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'resumed')
return 0
"""#)

    /// ARGV: base, id, progress JSON.
    static let updateProgress = script("updateProgress", #"""
local base, id = ARGV[1], ARGV[2]
if redis.call('EXISTS', base .. id) == 0 then return -1 end
redis.call('HSET', base .. id, 'progress', ARGV[3])
redis.call('XADD', base .. 'events', 'MAXLEN', '~', maxEvents(base), '*', 'event', 'progress', 'jobId', id, 'data', ARGV[3])
return 0
"""#)

    /// ARGV: base, id, line, keepLogs (0 = all). Returns the number of lines.
    static let addLog = script("addLog", #"""
local jk = ARGV[1] .. ARGV[2]
if redis.call('EXISTS', jk) == 0 then return -1 end
local n = redis.call('RPUSH', jk .. ':logs', ARGV[3])
local keep = tonumber(ARGV[4])
if keep > 0 then
  redis.call('LTRIM', jk .. ':logs', -keep, -1)
  if n > keep then n = keep end
end
return n
"""#)

    /// ARGV: base, id. Delayed job runs now.
    static let promote = script("promote", #"""
local base, id = ARGV[1], ARGV[2]
local jk = base .. id
if redis.call('ZREM', base .. 'delayed', id) == 0 then return -3 end
redis.call('HSET', jk, 'delay', 0)
enqueue(base, id, jobPriority(jk), false)
addReadyMarker(base)
redis.call('XADD', base .. 'events', 'MAXLEN', '~', maxEvents(base), '*', 'event', 'waiting', 'jobId', id, 'prev', 'delayed')
return 0
"""#)

    /// Re-runs finished jobs. ARGV: base, state (failed|completed), count, one id ('' = oldest
    /// `count`), resetAttempts ('1'). Returns how many remain in the state (0 for one id), or -3.
    static let reprocess = script("reprocess", #"""
local base, state = ARGV[1], ARGV[2]
local set = base .. state
local ids
if ARGV[4] ~= '' then
  if not redis.call('ZSCORE', set, ARGV[4]) then return -3 end
  ids = {ARGV[4]}
else
  ids = redis.call('ZRANGE', set, 0, tonumber(ARGV[3]) - 1)
end
local me = maxEvents(base)
for _, id in ipairs(ids) do
  local jk = base .. id
  redis.call('ZREM', set, id)
  if redis.call('EXISTS', jk) == 1 then
    local resultField = 'returnvalue'
    if state == 'failed' then resultField = 'failedReason' end
    redis.call('HDEL', jk, 'finishedOn', 'processedOn', resultField)
    if ARGV[5] == '1' then redis.call('HDEL', jk, 'atm', 'ats', 'stc') end
    enqueue(base, id, jobPriority(jk), false)
    redis.call('XADD', base .. 'events', 'MAXLEN', '~', me, '*', 'event', 'waiting', 'jobId', id, 'prev', state)
  end
end
if #ids > 0 then addReadyMarker(base) end
if ARGV[4] ~= '' then return 0 end
return redis.call('ZCARD', set)
"""#)

    /// ARGV: base, id. Returns 1 removed, 0 locked (a worker holds it), -1 unknown, -8 scheduler job.
    static let remove = script("remove", #"""
local base, id = ARGV[1], ARGV[2]
local jk = base .. id
if redis.call('EXISTS', jk .. ':lock') == 1 then return 0 end
local rjk = redis.call('HGET', jk, 'rjk')
if rjk and redis.call('EXISTS', base .. 'repeat:' .. rjk) == 1 then return -8 end
local prev = 'unknown'
for _, s in ipairs({'completed', 'failed', 'delayed', 'prioritized', 'waiting-children'}) do
  if redis.call('ZREM', base .. s, id) == 1 then prev = s end
end
-- list states are named as BullMQ's removeJob names them (`wait`, not `waiting`)
if redis.call('LREM', base .. 'wait', 0, id) > 0 then prev = 'wait' end
if redis.call('LREM', base .. 'paused', 0, id) > 0 then prev = 'paused' end
if redis.call('LREM', base .. 'active', 0, id) > 0 then prev = 'active' end
redis.call('SREM', base .. 'stalled', id)
removeDeduplication(base, jk, id)
local existed = redis.call('EXISTS', jk)
removeJobKeys(jk)
if existed == 0 and prev == 'unknown' then return -1 end
redis.call('XADD', base .. 'events', 'MAXLEN', '~', maxEvents(base), '*', 'event', 'removed', 'jobId', id, 'prev', prev)
return 1
"""#)

    /// ARGV: base, state, cutoff ms, limit (0 = no limit). Returns the removed ids.
    static let clean = script("clean", #"""
local base, state, cutoff = ARGV[1], ARGV[2], tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
if limit <= 0 then limit = 1000000000 end
local removed = {}
local function older(jk, fields)
  local v = redis.call('HMGET', jk, unpack(fields))
  for _, x in ipairs(v) do
    if x then return tonumber(x) <= cutoff end
  end
  return true
end
if state == 'completed' or state == 'failed' then
  local ids = redis.call('ZRANGEBYSCORE', base .. state, '-inf', cutoff, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    removeDeduplication(base, base .. id, id)
    removeJobKeys(base .. id)
    table.insert(removed, id)
  end
  zremChunked(base .. state, ids)
elseif state == 'delayed' or state == 'prioritized' then
  local fields = {'timestamp'}
  if state == 'delayed' then fields = {'processedOn', 'timestamp'} end
  for _, id in ipairs(redis.call('ZRANGE', base .. state, 0, -1)) do
    if #removed >= limit then break end
    if older(base .. id, fields) then
      redis.call('ZREM', base .. state, id)
      removeDeduplication(base, base .. id, id)
      removeJobKeys(base .. id)
      table.insert(removed, id)
    end
  end
else
  local list = base .. 'wait'
  if state == 'active' then list = base .. 'active' elseif state == 'paused' then list = base .. 'paused' end
  for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do
    if #removed >= limit then break end
    local jk = base .. id
    if not (state == 'active' and redis.call('EXISTS', jk .. ':lock') == 1) and older(jk, {'finishedOn', 'processedOn', 'timestamp'}) then
      redis.call('LREM', list, 0, id)
      removeDeduplication(base, jk, id)
      removeJobKeys(jk)
      table.insert(removed, id)
    end
  end
end
redis.call('XADD', base .. 'events', 'MAXLEN', '~', maxEvents(base), '*', 'event', 'cleaned', 'count', #removed)
return removed
"""#)

    /// ARGV: base, id. Returns the state name BullMQ's getState would give.
    static let getState = script("getState", #"""
local base, id = ARGV[1], ARGV[2]
for _, s in ipairs({'completed', 'failed', 'delayed', 'prioritized'}) do
  if redis.call('ZSCORE', base .. s, id) then return s end
end
if redis.call('LPOS', base .. 'active', id) then return 'active' end
if redis.call('LPOS', base .. 'wait', id) then return 'waiting' end
if redis.call('LPOS', base .. 'paused', id) then return 'waiting' end
if redis.call('ZSCORE', base .. 'waiting-children', id) then return 'waiting-children' end
return 'unknown'
"""#)
}
