//! The Lua scripts that make the Redis broker's multi-key steps atomic, and the one Rust
//! function that lays out the acknowledgement script's arguments ([`ack_args`]).
//!
//! Every script receives the namespace prefix (`{ns}:`) and builds the keys it needs from
//! it; all of them share the namespace's hash tag, so they live in one cluster slot. State
//! names and dead-letter reasons come from Rust as arguments; [`SET_ASIDE_FN`] is the one
//! Lua copy of the dead-letter shape (the Rust one is [`DeadLetter`](crate::DeadLetter)).

use redis::ScriptInvocation;

use super::wire::{self, encode_dead_letter, encode_message, encode_result};
use super::{Ack, Outcome};
use crate::message::{JobState, ResultRecord, millis};
use crate::monitor::{EVENTS_KEPT, JobReport, MINUTE_TTL_S, MetricsDelta, WRITTEN_TTL_S};

/// Pushes a message that cannot be routed onto the dead-letter list, in the JSON shape of
/// [`DeadLetter`](crate::DeadLetter) (`job_id`, `task` and `queue` unknown).
const SET_ASIDE_FN: &str = r#"
local function set_aside(prefix, kind, message, now, m)
  redis.call('LPUSH', prefix .. 'dead', cjson.encode({
    reason = { kind = kind, message = message },
    failed_at_ms = tonumber(now),
    payload = m,
  }))
end
local function queue_of(m)
  local ok, job = pcall(cjson.decode, m)
  if ok and type(job) == 'table' and type(job.queue) == 'string' and job.queue ~= '' then
    return job.queue
  end
  return nil
end
"#;

/// The list a fetched message goes back to: a native job's queue, or for a Celery envelope
/// the priority list of its routing key it came from (outside the namespace: Celery
/// messages are shared with Python workers, which take them back from there too).
const HOME_FN: &str = r#"
local function home_of(prefix, m)
  local ok, job = pcall(cjson.decode, m)
  if not ok or type(job) ~= 'table' then return nil end
  if type(job.queue) == 'string' and job.queue ~= '' then
    return prefix .. 'queue:' .. job.queue
  end
  local p = job.properties
  if type(p) ~= 'table' or type(p.delivery_info) ~= 'table' then return nil end
  local rk = p.delivery_info.routing_key
  if type(rk) ~= 'string' or rk == '' then return nil end
  local pri = tonumber(p.priority) or 0
  local sep = string.char(6, 22)
  if pri >= 9 then return rk .. sep .. '9' end
  if pri >= 6 then return rk .. sep .. '6' end
  if pri >= 3 then return rk .. sep .. '3' end
  return rk
end
"#;

/// Puts every job of one worker's in-flight list back on its queue, oldest at the head, and
/// sets aside what names no queue. Shared by the reap and unregister scripts.
const REQUEUE_WORKER_FN: &str = r#"
local function requeue_worker(prefix, worker, now, kind, reason)
  local proc = prefix .. 'processing:' .. worker
  local moved = 0
  while true do
    local m = redis.call('LPOP', proc)
    if not m then break end
    local home = home_of(prefix, m)
    if home then
      redis.call('RPUSH', home, m)
    else
      set_aside(prefix, kind, reason, now, m)
    end
    moved = moved + 1
  end
  redis.call('DEL', prefix .. 'worker:' .. worker .. ':hb')
  redis.call('ZREM', prefix .. 'workers', worker)
  return moved
end
"#;

/// KEYS: source lists in order, then processing. ARGV: max. Moves up to `max` jobs without
/// blocking, oldest first and draining earlier sources first, as repeated
/// `LMOVE source processing RIGHT LEFT` would, but with three commands per source instead
/// of one per job.
pub(super) const FETCH: &str = r#"
local max = tonumber(ARGV[1])
local proc = KEYS[#KEYS]
local out = {}
for s = 1, #KEYS - 1 do
  local want = max - #out
  if want < 1 then break end
  local taken = redis.call('LRANGE', KEYS[s], -want, -1)
  local n = #taken
  if n > 0 then
    redis.call('LTRIM', KEYS[s], 0, -n - 1)
    local first = #out + 1
    for i = n, 1, -1 do out[#out + 1] = taken[i] end
    -- In chunks: Lua's C stack bounds how many arguments unpack may pass.
    for i = first, #out, 1000 do
      redis.call('LPUSH', proc, unpack(out, i, math.min(i + 999, #out)))
    end
  end
end
return out
"#;

/// KEYS[1]: a key of the namespace, unused but for routing the call to the namespace's
/// Cluster slot. ARGV: prefix, state ttl ms, the STARTED state's name, job ids. Records STARTED unless
/// the job already has a result: the worker sends this without waiting, so it may arrive
/// after the ack.
pub(super) const MARK_STARTED: &str = r#"
for i = 4, #ARGV do
  local id = ARGV[i]
  if redis.call('EXISTS', ARGV[1] .. 'result:' .. id) == 0 then
    redis.call('SET', ARGV[1] .. 'state:' .. id, ARGV[3], 'PX', ARGV[2])
  end
end
return 0
"#;

/// Stores a Celery result record as Celery's Redis backend does (`SETEX` and `PUBLISH` on
/// the key's name, so waiting clients wake), unless a SUCCESS is stored there already.
const CELERY_STORE_FN: &str = r#"
local function celery_store(key, record, ttl)
  local old = redis.call('GET', key)
  if old then
    local ok, v = pcall(cjson.decode, old)
    if ok and type(v) == 'table' and v.status == 'SUCCESS' then return end
  end
  redis.call('SETEX', key, ttl, record)
  redis.call('PUBLISH', key, record)
end
"#;

/// KEYS: processing. ARGV: see [`ack_args`], which is the only code that builds them.
///
/// The notification pushed for a stored result is the record itself when it is no larger
/// than the inline limit (the waiter needs no second round trip), else `1`.
pub(super) fn ack() -> String {
    format!(
        "local minute_ttl = {MINUTE_TTL_S}\nlocal written_ttl = {WRITTEN_TTL_S}\n{HOME_FN}{CELERY_STORE_FN}{ACK_BODY}"
    )
}

const ACK_BODY: &str = r#"
local prefix = ARGV[1]
local inline_limit = tonumber(ARGV[2])
local retry_state = ARGV[3]
local events_kept = tonumber(ARGV[5])
local events_from = 7 + 7 * tonumber(ARGV[6])
local proc = KEYS[1]
local processed, failed, retried = 0, 0, 0
for i = 7, events_from - 1, 7 do
  local op, payload, a, b, c, d, e = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  if redis.call('LREM', proc, -1, payload) == 0 then
    -- Applied before (a batch retried after its reply or its replication was lost), or
    -- the job was taken back from this worker and is someone else's now: nothing to do.
  elseif op == 'S' or op == 'F' then
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
    if op == 'F' then failed = failed + 1 end
    if d ~= '' then redis.call('LPUSH', prefix .. 'dead', d) end
  elseif op == 'R' then
    redis.call('ZADD', prefix .. 'delayed', c, b)
    redis.call('SET', prefix .. 'state:' .. a, retry_state, 'PX', d)
    retried = retried + 1
  elseif op == 'Q' then
    redis.call('RPUSH', home_of(prefix, payload) or (prefix .. 'queue:' .. a), payload)
  elseif op == 'D' then
    redis.call('ZADD', prefix .. 'delayed', c, b)
  elseif op == 'C' or op == 'X' then
    if a ~= '' then celery_store(a, b, c) end
    if e ~= '' then
      local extras = cjson.decode(e)
      for _, kv in ipairs(extras.store) do celery_store(kv[1], kv[2], c) end
      for _, kv in ipairs(extras.push) do redis.call('LPUSH', kv[1], kv[2]) end
    end
    processed = processed + 1
    if op == 'X' then failed = failed + 1 end
    if d ~= '' then redis.call('LPUSH', prefix .. 'dead', d) end
  end
end
if events_from <= #ARGV then
  -- In chunks: Lua's C stack bounds how many arguments unpack may pass.
  for i = events_from, #ARGV, 1000 do
    redis.call('LPUSH', prefix .. 'events', unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  redis.call('LTRIM', prefix .. 'events', 0, events_kept - 1)
end
if ARGV[4] ~= '' then
  local m = cjson.decode(ARGV[4])
  for _, kv in ipairs(m.j) do redis.call('HINCRBY', prefix .. 'metrics:jobs', kv[1], kv[2]) end
  for _, kv in ipairs(m.d) do redis.call('HINCRBY', prefix .. 'metrics:durations', kv[1], kv[2]) end
  for _, mk in ipairs(m.m) do
    local key = prefix .. 'metrics:minute:' .. string.format('%d', mk[1])
    -- The minute's first count sets its expiry; later ones leave it.
    if redis.call('HINCRBY', key, mk[2], mk[3]) == mk[3] then redis.call('EXPIRE', key, minute_ttl) end
  end
  for _, kv in ipairs(m.x) do
    local longest = tonumber(redis.call('HGET', prefix .. 'metrics:durations', kv[1]) or '0')
    if kv[2] > longest then redis.call('HSET', prefix .. 'metrics:durations', kv[1], kv[2]) end
  end
  for _, kv in ipairs(m.w) do redis.call('SET', prefix .. 'written:' .. kv[1], kv[2], 'EX', written_ttl) end
end
if processed > 0 then redis.call('INCRBY', prefix .. 'stats:processed', processed) end
if failed > 0 then redis.call('INCRBY', prefix .. 'stats:failed', failed) end
if retried > 0 then redis.call('INCRBY', prefix .. 'stats:retried', retried) end
return processed + retried
"#;

/// Lays out [`ACK`]'s arguments: the header `prefix, inline record limit, RETRY state
/// name, metrics delta (JSON, see [`MetricsDelta`]; `''` for none), events kept, number of
/// acknowledgements`, then one group of seven per acknowledgement, `op, delivery, a, b, c,
/// d, e`, then `events`, stored [`JobEvent`](crate::monitor::JobEvent)s oldest first, for the
/// `{ns}:events` list (pushed in one command, so the newest ends up first). The groups:
///
/// - `S` success / `F` failure: a = job id (`''` when unreadable), b = encoded record,
///   c = ttl ms, d = encoded dead letter (`''` for none), e = `'1'` when a transient state
///   may exist and must be deleted.
/// - `R` retry: a = job id, b = encoded next message, c = due ms, d = state ttl ms.
/// - `Q` requeue: a = queue (for a native job; a Celery message goes back to its list).
/// - `D` defer: b = encoded message, c = due ms.
/// - `C` Celery success / `X` Celery failure: a = result key (`''`: ignored result),
///   b = record, c = ttl s, d = encoded dead letter (`''` for none), e = JSON
///   `{"store": [[key, record], ...], "push": [[list, message], ...]}` (`''` for none).
pub(super) fn ack_args(
    invocation: &mut ScriptInvocation<'_>,
    prefix: &str,
    inline_limit: usize,
    acks: &[Ack],
    reports: &[JobReport],
    events: &[String],
) {
    let metrics = MetricsDelta::of(reports.iter())
        .map(|delta| delta.encode())
        .unwrap_or_default();
    invocation
        .arg(prefix)
        .arg(inline_limit)
        .arg(JobState::Retry.as_str())
        .arg(metrics)
        .arg(EVENTS_KEPT)
        .arg(acks.len());
    for ack in acks {
        let delivery = ack.tag.as_stored();
        match &ack.outcome {
            Outcome::Finished {
                record,
                ttl,
                clears_state,
                dead_letter,
            } => {
                let (op, id) = match record {
                    ResultRecord::Success { job_id, .. } => ("S", job_id),
                    ResultRecord::Failure { job_id, .. } => ("F", job_id),
                };
                invocation
                    .arg(op)
                    .arg(delivery)
                    .arg(id.as_str())
                    .arg(encode_result(record))
                    .arg(ttl_ms(*ttl))
                    .arg(
                        dead_letter
                            .as_ref()
                            .map(encode_dead_letter)
                            .unwrap_or_default(),
                    )
                    .arg(if *clears_state { "1" } else { "" });
            }
            Outcome::Unreadable { dead_letter } => {
                invocation
                    .arg("F")
                    .arg(delivery)
                    .arg("")
                    .arg("")
                    .arg("")
                    .arg(encode_dead_letter(dead_letter))
                    .arg("");
            }
            Outcome::Retry { next, ttl, .. } => {
                invocation
                    .arg("R")
                    .arg(delivery)
                    .arg(next.id.as_str())
                    .arg(encode_message(next))
                    .arg(next.eta_ms.unwrap_or(0))
                    .arg(ttl_ms(*ttl))
                    .arg("");
            }
            Outcome::Requeue { queue } => {
                invocation
                    .arg("Q")
                    .arg(delivery)
                    .arg(queue.as_str())
                    .arg("")
                    .arg("")
                    .arg("")
                    .arg("");
            }
            Outcome::Defer { next } => {
                invocation
                    .arg("D")
                    .arg(delivery)
                    .arg(next.id.as_str())
                    .arg(encode_message(next))
                    .arg(next.eta_ms.unwrap_or(0))
                    .arg("")
                    .arg("");
            }
            Outcome::Celery(reply) => {
                let extras = if reply.pushes.is_empty() && reply.extra_records.is_empty() {
                    String::new()
                } else {
                    serde_json::json!({"store": reply.extra_records, "push": reply.pushes})
                        .to_string()
                };
                invocation
                    .arg(if reply.failed { "X" } else { "C" })
                    .arg(delivery)
                    .arg(reply.result_key.as_deref().unwrap_or(""))
                    .arg(&reply.record)
                    .arg(reply.ttl.as_secs().max(1))
                    .arg(
                        reply
                            .dead_letter
                            .as_ref()
                            .map(encode_dead_letter)
                            .unwrap_or_default(),
                    )
                    .arg(extras);
            }
        }
    }
    for event in events {
        invocation.arg(event);
    }
}

/// A TTL in whole milliseconds, at least 1 (Redis refuses `PX 0`).
pub(super) fn ttl_ms(ttl: std::time::Duration) -> u64 {
    millis(ttl).max(1)
}

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

/// KEYS: delayed. ARGV: prefix, now ms, limit, dead-letter kind, dead-letter reason.
/// Moves due jobs to their queues.
pub(super) fn promote() -> String {
    format!(
        "{SET_ASIDE_FN}{}",
        r#"
local prefix = ARGV[1]
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local queue = queue_of(m)
  if queue then
    redis.call('LPUSH', prefix .. 'queue:' .. queue, m)
    redis.call('SADD', prefix .. 'queues', queue)
  else
    set_aside(prefix, ARGV[4], ARGV[5], ARGV[2], m)
  end
end
return #due
"#
    )
}

/// KEYS: workers. ARGV: prefix, cutoff ms, now ms, max workers per call, dead-letter kind,
/// dead-letter reason.
pub(super) fn reap() -> String {
    format!(
        "{SET_ASIDE_FN}{HOME_FN}{REQUEUE_WORKER_FN}{}",
        r#"
local moved = 0
local stale = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[4]))
for _, w in ipairs(stale) do
  if redis.call('EXISTS', ARGV[1] .. 'worker:' .. w .. ':hb') == 0 then
    moved = moved + requeue_worker(ARGV[1], w, ARGV[3], ARGV[5], ARGV[6])
  end
end
return moved
"#
    )
}

/// KEYS: workers. ARGV: prefix, worker id, now ms, dead-letter kind, dead-letter reason.
pub(super) fn unregister() -> String {
    format!(
        "{SET_ASIDE_FN}{HOME_FN}{REQUEUE_WORKER_FN}{}",
        "\nreturn requeue_worker(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])\n"
    )
}

/// The dead-letter kind and reason the reap and unregister scripts set aside unroutable
/// in-flight messages with.
pub(super) fn in_flight_reason() -> [&'static str; 2] {
    [wire::MALFORMED_KIND, wire::UNROUTABLE_IN_FLIGHT]
}

/// The dead-letter kind and reason the promote script sets aside unroutable delayed
/// messages with.
pub(super) fn delayed_reason() -> [&'static str; 2] {
    [wire::MALFORMED_KIND, wire::UNROUTABLE_DELAYED]
}

/// KEYS: dead, queue, queues set. ARGV: dead record, payload, queue name.
pub(super) const REQUEUE_DEAD: &str = r#"
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], ARGV[3])
return 1
"#;

/// KEYS: result key. ARGV: STARTED record, ttl s. Stores a Celery STARTED record (`SETEX` and
/// `PUBLISH`) unless the task already has a final one: the worker sends it without waiting,
/// so it may arrive after the result.
pub(super) const CELERY_STARTED: &str = r#"
local old = redis.call('GET', KEYS[1])
if old then
  local ok, v = pcall(cjson.decode, old)
  if ok and type(v) == 'table' and (v.status == 'SUCCESS' or v.status == 'FAILURE' or v.status == 'REVOKED') then
    return 0
  end
end
redis.call('SETEX', KEYS[1], ARGV[2], ARGV[1])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"#;
