//! The Lua scripts that make the Redis broker's multi-key steps atomic.
//!
//! Every script receives the namespace prefix (`{ns}:`) and builds the keys it needs from
//! it; all of them share the namespace's hash tag, so they live in one cluster slot.

/// Puts every job of one worker's in-flight list back on its queue, oldest at the head, and
/// dead-letters what cannot be decoded. Shared by the reap and unregister scripts.
const REQUEUE_WORKER_FN: &str = r#"
local function requeue_worker(prefix, worker, now)
  local proc = prefix .. 'processing:' .. worker
  local moved = 0
  while true do
    local m = redis.call('LPOP', proc)
    if not m then break end
    local ok, job = pcall(cjson.decode, m)
    if ok and type(job) == 'table' and type(job.queue) == 'string' and job.queue ~= '' then
      redis.call('RPUSH', prefix .. 'queue:' .. job.queue, m)
    else
      redis.call('LPUSH', prefix .. 'dead', cjson.encode({
        reason = { kind = 'MalformedMessage', message = 'an in-flight message of a dead worker is not a job message' },
        failed_at_ms = tonumber(now),
        payload = m,
      }))
    end
    moved = moved + 1
  end
  redis.call('DEL', prefix .. 'worker:' .. worker .. ':hb')
  redis.call('ZREM', prefix .. 'workers', worker)
  return moved
end
"#;

/// KEYS: queue, processing. ARGV: max. Moves up to `max` jobs without blocking, oldest
/// first, as repeated `LMOVE queue processing RIGHT LEFT` would, but with three commands
/// per batch instead of one per job.
pub(super) const FETCH: &str = r#"
local max = tonumber(ARGV[1])
if max < 1 then return {} end
local taken = redis.call('LRANGE', KEYS[1], -max, -1)
local n = #taken
if n == 0 then return {} end
redis.call('LTRIM', KEYS[1], 0, -n - 1)
local out = {}
for i = n, 1, -1 do out[#out + 1] = taken[i] end
-- In chunks: Lua's C stack bounds how many arguments unpack may pass.
for i = 1, n, 1000 do
  redis.call('LPUSH', KEYS[2], unpack(out, i, math.min(i + 999, n)))
end
return out
"#;

/// ARGV: prefix, state ttl ms, job ids. Records STARTED unless the job already has a
/// result: the worker sends this without waiting, so it may arrive after the ack.
pub(super) const MARK_STARTED: &str = r#"
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', ARGV[1] .. 'result:' .. id) == 0 then
    redis.call('SET', ARGV[1] .. 'state:' .. id, 'STARTED', 'PX', ARGV[2])
  end
end
return 0
"#;

/// KEYS: processing. ARGV: prefix, inline record limit, then groups of seven: op, payload,
/// a, b, c, d, e.
///
/// - `S` success / `F` failure: a = job id ('' when unknown), b = record, c = ttl ms,
///   d = dead letter ('' for none; failures only), e = '1' when a transient state may
///   exist and must be deleted.
/// - `R` retry: a = job id, b = retry payload, c = due ms, d = state ttl ms.
/// - `Q` requeue: a = queue.
///
/// The notification pushed for a stored result is the record itself when it is no larger
/// than the inline limit (the waiter needs no second round trip), else `1`.
pub(super) const ACK: &str = r#"
local prefix = ARGV[1]
local inline_limit = tonumber(ARGV[2])
local proc = KEYS[1]
local processed, failed, retried = 0, 0, 0
for i = 3, #ARGV, 7 do
  local op, payload, a, b, c, d, e = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  redis.call('LREM', proc, -1, payload)
  if op == 'S' or op == 'F' then
    if a ~= '' then
      redis.call('SET', prefix .. 'result:' .. a, b, 'PX', c)
      if e == '1' then redis.call('DEL', prefix .. 'state:' .. a) end
      local notify = prefix .. 'notify:' .. a
      if #b <= inline_limit then
        redis.call('RPUSH', notify, b)
      else
        redis.call('RPUSH', notify, '1')
      end
      redis.call('PEXPIRE', notify, c)
    end
    processed = processed + 1
    if op == 'F' then
      failed = failed + 1
      if d ~= '' then redis.call('LPUSH', prefix .. 'dead', d) end
    end
  elseif op == 'R' then
    redis.call('ZADD', prefix .. 'delayed', c, b)
    redis.call('SET', prefix .. 'state:' .. a, 'RETRY', 'PX', d)
    retried = retried + 1
  elseif op == 'Q' then
    redis.call('RPUSH', prefix .. 'queue:' .. a, payload)
  end
end
if processed > 0 then redis.call('INCRBY', prefix .. 'stats:processed', processed) end
if failed > 0 then redis.call('INCRBY', prefix .. 'stats:failed', failed) end
if retried > 0 then redis.call('INCRBY', prefix .. 'stats:retried', retried) end
return processed + retried
"#;

/// KEYS: unique claim, target (queue list or delayed set), queues set.
/// ARGV: job id, claim ttl ms, payload, due ms ('' = now), queue name.
pub(super) const ENQUEUE_UNIQUE: &str = r#"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
if ARGV[4] == '' then
  redis.call('LPUSH', KEYS[2], ARGV[3])
else
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
end
redis.call('SADD', KEYS[3], ARGV[5])
return 1
"#;

/// KEYS: delayed. ARGV: prefix, now ms, limit. Moves due jobs to their queues.
pub(super) const PROMOTE: &str = r#"
local prefix = ARGV[1]
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local ok, job = pcall(cjson.decode, m)
  if ok and type(job) == 'table' and type(job.queue) == 'string' and job.queue ~= '' then
    redis.call('LPUSH', prefix .. 'queue:' .. job.queue, m)
    redis.call('SADD', prefix .. 'queues', job.queue)
  else
    redis.call('LPUSH', prefix .. 'dead', cjson.encode({
      reason = { kind = 'MalformedMessage', message = 'a delayed message is not a job message' },
      failed_at_ms = tonumber(ARGV[2]),
      payload = m,
    }))
  end
end
return #due
"#;

/// KEYS: workers. ARGV: prefix, cutoff ms, now ms, max workers per call.
pub(super) fn reap() -> String {
    format!(
        "{REQUEUE_WORKER_FN}{}",
        r#"
local moved = 0
local stale = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
for _, w in ipairs(stale) do
  if redis.call('EXISTS', ARGV[1] .. 'worker:' .. w .. ':hb') == 0 then
    moved = moved + requeue_worker(ARGV[1], w, ARGV[3])
  end
end
return moved
"#
    )
}

/// KEYS: workers. ARGV: prefix, worker id, now ms.
pub(super) fn unregister() -> String {
    format!(
        "{REQUEUE_WORKER_FN}{}",
        "\nreturn requeue_worker(ARGV[1], ARGV[2], ARGV[3])\n"
    )
}

/// KEYS: dead, queue, queues set. ARGV: dead record, payload, queue name.
pub(super) const REQUEUE_DEAD: &str = r#"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"#;
