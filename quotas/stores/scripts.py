"""The two Redis scripts of the shared limiter: ``ADMIT`` decides every rate limit, parallel
limit and cost quota of one request atomically (and reserves it when everything admits);
``SETTLE`` replaces the reservation by the actual tokens and cost and releases the parallel
slots. The arithmetic is that of ``quotas.algorithms`` and ``quotas.budget``, written in the same
order so both stores decide alike (bucket state is stored with 17 significant digits).

The time is Redis's own (``TIME``), so gateway machines with skewed clocks share one clock; an
explicit time can be passed for tests.

A reservation is a lease: its amount in the quota hash's ``r:<request id>`` field (added into
``reserved``), its deadline as the request's score in the quota's leases set. The set expires
with the hash, never before, so a lease that ended is always found there and released by the
next decision or read of the quota, whatever became of the process that made it.

Every key a script is given is declared in KEYS, in the order of its lines, and all of them
carry the tenant's hash tag (``{t<tenant id>}``, ``quotas.policy``): one call touches one hash
slot, so it runs on Redis Cluster as on one server. (A window counter's key is its line's key
plus the window's index, computed in the script from Redis's clock: the same tag, the same slot.)

ADMIT KEYS: per rate line its key, per parallel line its key, per quota line its key and leases
  key. ARGV: now_ms|'', request_id, lease_ms, n_rates, n_parallel, n_quotas, then
  per rate line:     algorithm (f|s|t|l), limit, window_ms, cost
  per parallel line: limit
  per quota line:    limit_micro, hard (0|1), amount_micro, expire_at_ms (0: never)
returns: admitted, refusal kind (0 none, 1 rate, 2 too large, 3 parallel, 4 quota), refusing
  line (1-based within its kind), retry_ms (-1: never), now_ms, then remaining and reset_ms per
  rate line, then spent and reserved per quota line.

SETTLE KEYS: per token line its key, per parallel line its key, per quota line its key and
  leases key. ARGV: admitted_ms, now_ms|'', request_id, n_tokens, n_parallel, n_quotas, then
  per token line:    algorithm, limit, window_ms, delta (actual - reserved)
  per quota line:    actual_micro, alert_threshold_micro (0: none), expire_at_ms
returns: spent and alert_fired (0|1) per quota line. (The usage event is appended to the
outbox stream by an ``XADD`` sent in the same pipeline: the stream is another slot than the
tenant's counters; see ``quotas.stores.shared``.)
"""

from __future__ import annotations

_COMMON = r"""
local function clock(given)
  if given ~= '' then return tonumber(given) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function fmt(x) return string.format('%.17g', x) end
local function floor0(x) if x < 0 then return 0 end return math.floor(x) end
-- A key's time to live is raised to ms, never lowered: a later, shorter lease must not end an
-- earlier, longer one.
local function extend(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
-- A quota's leases set lives as long as the hash holding the reservations it times (the
-- period's end plus grace; never ending for a lifetime quota). A set expiring with its last
-- lease would take the leases with it and leave their reservations in the hash for good.
local function expire_leases(leases, expire_at)
  if expire_at > 0 then redis.call('PEXPIREAT', leases, expire_at) else redis.call('PERSIST', leases) end
end
local function release(key, member)
  local held = redis.call('HGET', key, 'r:' .. member)
  if held then
    redis.call('HINCRBY', key, 'reserved', -tonumber(held))
    redis.call('HDEL', key, 'r:' .. member)
  end
end
-- Releases every r:<request id> field of the hash whose lease is not live in the leases set
-- (ended, or lost with the set) and sets reserved to what the live ones hold. Returns that,
-- the reserved total before, and the number of fields released.
local function release_orphans(key, leases, now)
  local fields = redis.call('HGETALL', key)
  if #fields == 0 then return 0, 0, 0 end
  local kept, before, released = 0, 0, 0
  for j = 1, #fields, 2 do
    local name = fields[j]
    if name == 'reserved' then
      before = tonumber(fields[j + 1])
    elseif string.sub(name, 1, 2) == 'r:' then
      local deadline = redis.call('ZSCORE', leases, string.sub(name, 3))
      if deadline and tonumber(deadline) > now then
        kept = kept + tonumber(fields[j + 1])
      else
        redis.call('HDEL', key, name)
        released = released + 1
      end
    end
  end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  if kept ~= before then redis.call('HSET', key, 'reserved', kept) end
  return kept, before, released
end
-- A cost quota's spent and reserved, after releasing the reservations whose lease ended (those
-- of a process that crashed expire with their lease). With no lease live at all nothing may
-- stay reserved, whatever the hash still holds.
local function quota_state(key, leases, now)
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now)) do release(key, member) end
  redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
  local totals = redis.call('HMGET', key, 'spent', 'reserved')
  local spent, reserved = tonumber(totals[1] or '0'), tonumber(totals[2] or '0')
  if reserved ~= 0 and redis.call('EXISTS', leases) == 0 then
    reserved = release_orphans(key, leases, now)
  end
  return spent, reserved
end
"""

ADMIT = (
    _COMMON
    + r"""
local now = clock(ARGV[1])
local rid, lease = ARGV[2], tonumber(ARGV[3])
local nr, np, nq = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local i, k = 7, 1
local kind, at, retry = 0, 0, 0
local qkind, qat = 0, 0
local writes = {}
local out = {}

local function refuse(k, idx, wait)
  -- the longest wait wins; "never" (-1) beats any wait
  if kind == 0 or (retry ~= -1 and (wait == -1 or wait > retry)) then kind, at, retry = k, idx, wait end
end

local function window_reset(sliding, cur, prev, until_end, win)
  if cur > 0 then if sliding then return until_end + win end return until_end end
  if sliding and prev > 0 then return until_end end
  return 0
end

for n = 1, nr do
  local key, alg = KEYS[k], ARGV[i]
  local limit, win, cost = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  i, k = i + 4, k + 1
  local remaining, reset
  if alg == 'f' or alg == 's' then
    local sliding = alg == 's'
    local idx = math.floor(now / win)
    local elapsed = now - idx * win
    local until_end = win - elapsed
    local ckey = key .. ':' .. string.format('%d', idx)
    local cur = tonumber(redis.call('GET', ckey) or '0')
    local prev = 0
    local weight = 0
    if sliding then
      prev = tonumber(redis.call('GET', key .. ':' .. string.format('%d', idx - 1)) or '0')
      weight = (win - elapsed) / win
    end
    local used = prev * weight + cur
    if cost > limit then
      remaining, reset = floor0(limit - used), window_reset(sliding, cur, prev, until_end, win)
      refuse(2, n, -1)
    elseif used + cost <= limit then
      remaining = floor0(limit - (used + cost))
      reset = window_reset(sliding, cur + cost, prev, until_end, win)
      local ttl = win
      if sliding then ttl = 2 * win end
      table.insert(writes, function()
        redis.call('INCRBY', ckey, cost)
        redis.call('PEXPIRE', ckey, ttl + 1000)
      end)
    else
      remaining, reset = floor0(limit - used), window_reset(sliding, cur, prev, until_end, win)
      local wait = until_end
      if sliding then
        local room = limit - cur - cost
        if room >= 0 then
          wait = math.ceil(win - room * win / prev - elapsed)
        else
          local later = win - (limit - cost) * win / cur
          if later < 0 then later = 0 end
          wait = math.ceil((win - elapsed) + later)
        end
      end
      refuse(1, n, wait)
    end
  else
    local state = redis.call('HMGET', key, 'v', 't')
    local rate = limit / win
    local value, newv
    if alg == 't' then
      if state[1] then
        value = math.min(limit, tonumber(state[1]) + (now - tonumber(state[2])) * rate)
      else
        value = limit
      end
      if cost > limit then
        remaining, reset = floor0(value), math.ceil((limit - value) / rate)
        refuse(2, n, -1)
      elseif value >= cost then
        newv = value - cost
        remaining, reset = floor0(newv), math.ceil((limit - newv) / rate)
      else
        remaining, reset = floor0(value), math.ceil((limit - value) / rate)
        refuse(1, n, math.ceil((cost - value) / rate))
      end
    else
      local capacity = limit / 60
      if state[1] then
        value = math.max(0, tonumber(state[1]) - (now - tonumber(state[2])) * rate)
      else
        value = 0
      end
      if cost > limit then
        remaining, reset = floor0(capacity - value), math.ceil(value / rate)
        refuse(2, n, -1)
      elseif value + cost <= capacity or value <= 0 then
        newv = value + cost
        remaining, reset = floor0(capacity - newv), math.ceil(newv / rate)
      else
        remaining, reset = floor0(capacity - value), math.ceil(value / rate)
        if cost <= capacity then
          refuse(1, n, math.ceil((value + cost - capacity) / rate))
        else
          refuse(1, n, math.ceil(value / rate))
        end
      end
    end
    if newv ~= nil then
      local missing = newv
      if alg == 't' then missing = limit - newv end
      if missing < 0 then missing = 0 end
      local ttl = math.ceil(missing / rate) + 1000
      table.insert(writes, function()
        redis.call('HSET', key, 'v', fmt(newv), 't', string.format('%d', now))
        redis.call('PEXPIRE', key, ttl)
      end)
    end
  end
  table.insert(out, remaining)
  table.insert(out, reset)
end

for n = 1, np do
  local key, limit = KEYS[k], tonumber(ARGV[i])
  i, k = i + 1, k + 1
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= limit then
    refuse(3, n, 1000)
  else
    table.insert(writes, function()
      redis.call('ZADD', key, now + lease, rid)
      extend(key, lease)
    end)
  end
end

for n = 1, nq do
  local key, leases = KEYS[k], KEYS[k + 1]
  local limit, hard, amount = tonumber(ARGV[i]), ARGV[i + 1] == '1', tonumber(ARGV[i + 2])
  local expire_at = tonumber(ARGV[i + 3])
  i, k = i + 4, k + 2
  local spent, reserved = quota_state(key, leases, now)
  if hard and spent + reserved + amount > limit then
    if qkind == 0 then qkind, qat = 4, n end
  elseif amount > 0 then
    table.insert(writes, function()
      redis.call('HINCRBY', key, 'reserved', amount)
      redis.call('HSET', key, 'r:' .. rid, amount)
      redis.call('ZADD', leases, now + lease, rid)
      if expire_at > 0 then redis.call('PEXPIREAT', key, expire_at) end
      expire_leases(leases, expire_at)
    end)
  end
  table.insert(out, spent)
  table.insert(out, reserved)
end

if qkind ~= 0 then kind, at, retry = qkind, qat, 0 end
local admitted = 0
if kind == 0 then
  admitted = 1
  for _, write in ipairs(writes) do write() end
end
local head = {admitted, kind, at, retry, now}
for _, v in ipairs(out) do table.insert(head, v) end
return head
"""
)

SETTLE = (
    _COMMON
    + r"""
local admitted_ms = tonumber(ARGV[1])
local now = clock(ARGV[2])
local rid = ARGV[3]
local nt, np, nq = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local i, k = 7, 1
local out = {}

for n = 1, nt do
  local key, alg = KEYS[k], ARGV[i]
  local limit, win, delta = tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  i, k = i + 4, k + 1
  if alg == 'f' or alg == 's' then
    local ckey = key .. ':' .. string.format('%d', math.floor(admitted_ms / win))
    if redis.call('EXISTS', ckey) == 1 then
      if redis.call('INCRBY', ckey, delta) < 0 then redis.call('SET', ckey, 0, 'KEEPTTL') end
    end
  else
    local state = redis.call('HMGET', key, 'v', 't')
    if state[1] then
      local rate = limit / win
      local value, missing
      if alg == 't' then
        value = math.min(limit, tonumber(state[1]) + (now - tonumber(state[2])) * rate)
        value = math.min(limit, value - delta)
        missing = limit - value
      else
        value = math.max(0, tonumber(state[1]) - (now - tonumber(state[2])) * rate)
        value = math.max(0, value + delta)
        missing = value
      end
      if missing < 0 then missing = 0 end
      redis.call('HSET', key, 'v', fmt(value), 't', string.format('%d', now))
      redis.call('PEXPIRE', key, math.ceil(missing / rate) + 1000)
    end
  end
end

for n = 1, np do
  redis.call('ZREM', KEYS[k], rid)
  k = k + 1
end

for n = 1, nq do
  local key, leases = KEYS[k], KEYS[k + 1]
  local actual, threshold, expire_at = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  i, k = i + 3, k + 2
  release(key, rid)
  redis.call('ZREM', leases, rid)
  local spent = redis.call('HINCRBY', key, 'spent', actual)
  if expire_at > 0 then redis.call('PEXPIREAT', key, expire_at) end
  local fired = 0
  if threshold > 0 and spent >= threshold then
    fired = redis.call('HSETNX', key, 'alerted', 1)
  end
  table.insert(out, spent)
  table.insert(out, fired)
end
return out
"""
)

# A quota line's current spend and live reservations (``/v1/usage``), releasing the expired
# ones as admission would. KEYS: key, leases_key per quota line; ARGV: now_ms|''. Returns
# spent and reserved per line.
QUOTA_STATES = (
    _COMMON
    + r"""
local now = clock(ARGV[1])
local out = {}
for i = 1, #KEYS, 2 do
  local spent, reserved = quota_state(KEYS[i], KEYS[i + 1], now)
  table.insert(out, spent)
  table.insert(out, reserved)
end
return out
"""
)

# Reconciliation: raise (or, exactly, set) a period's settled spend, and release the orphaned
# reservations: r:<request id> fields whose lease is not live in the leases set (it ended, or the
# set was lost), correcting reserved to what the live ones hold. KEYS: the quota hash, its
# leases set. ARGV: spent_micro, exact (0|1), expire_at_ms (0: never), now_ms|''. Returns the
# spend before and after, reserved before and after, and the number of reservations released.
RECONCILE = (
    _COMMON
    + r"""
local key, leases = KEYS[1], KEYS[2]
local target, exact, expire_at = tonumber(ARGV[1]), ARGV[2] == '1', tonumber(ARGV[3])
local now = clock(ARGV[4])
local before = tonumber(redis.call('HGET', key, 'spent') or '0')
local current = before
if exact or target > current then
  redis.call('HSET', key, 'spent', target)
  current = target
end
local kept, held, released = release_orphans(key, leases, now)
if expire_at > 0 then redis.call('PEXPIREAT', key, expire_at) end
expire_leases(leases, expire_at)
return {before, current, held, kept, released}
"""
)
