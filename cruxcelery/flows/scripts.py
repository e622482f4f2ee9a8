"""The Lua scripts of the flow store. Each runs atomically in Redis; every key it touches is
passed in ``KEYS`` (built by ``FlowKeys``), never assembled in Lua. Registering a script computes
its SHA only: nothing talks to Redis until the first call (which loads it on ``NOSCRIPT``)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.commands.core import Script

# Create a snapshot and its index entries, or return the existing owner.
# KEYS: 1 flow hash, 2 status index, 3 name index, 4 all index, [5 idempotency key]
# ARGV: 1 flow id, 2 snapshot JSON, 3 summary JSON, 4 status, 5 name, 6 version, 7 score,
#       8 idempotency TTL ms (0: no expiry), 9 the queue the flow's task is routed to ('' for default)
# Returns {1, flow id} when created, {0, existing flow id} otherwise.
CREATE = """
if #KEYS == 5 then
  local owner = redis.call('GET', KEYS[5])
  if owner then return {0, owner} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, ARGV[1]} end
redis.call('HSET', KEYS[1], 'version', ARGV[6], 'status', ARGV[4], 'name', ARGV[5],
           'data', ARGV[2], 'summary', ARGV[3], 'queue', ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[1])
if #KEYS == 5 then
  if tonumber(ARGV[8]) > 0 then
    redis.call('SET', KEYS[5], ARGV[1], 'PX', ARGV[8])
  else
    redis.call('SET', KEYS[5], ARGV[1])
  end
end
return {1, ARGV[1]}
"""

# Compare-and-set a snapshot and move it between indexes. The caller names the status it read
# (its index is KEYS[4]): with the version unchanged that is the stored one, so only two status
# indexes are touched.
# KEYS: 1 flow hash, 2 name index, 3 all index, 4 stored status index, 5 new status index
# ARGV: 1 flow id, 2 name, 3 expected version, 4 new version, 5 snapshot JSON, 6 summary JSON,
#       7 new status, 8 score, 9 stored status
# Returns {'ok', new version} | {'missing', ''} | {'conflict', stored version} | {'name', stored name}
SAVE = """
local cur = redis.call('HMGET', KEYS[1], 'version', 'name', 'status')
if not cur[1] then return {'missing', ''} end
if tonumber(cur[1]) ~= tonumber(ARGV[3]) or cur[3] ~= ARGV[9] then return {'conflict', cur[1]} end
if cur[2] ~= ARGV[2] then return {'name', cur[2] or ''} end
redis.call('HSET', KEYS[1], 'version', ARGV[4], 'status', ARGV[7], 'data', ARGV[5], 'summary', ARGV[6])
if ARGV[9] ~= ARGV[7] then redis.call('ZREM', KEYS[4], ARGV[1]) end
redis.call('ZADD', KEYS[5], ARGV[8], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[1])
return {'ok', ARGV[4]}
"""

# Drop an index member whose snapshot is gone or (for a status index) has another status.
# KEYS: 1 index, 2 flow hash. ARGV: 1 flow id, 2 the index's status or ''. Returns 1 if removed.
PRUNE = """
local status = redis.call('HGET', KEYS[2], 'status')
if (not status) or (ARGV[2] ~= '' and status ~= ARGV[2]) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0
"""

# KEYS: 1 lease. ARGV: 1 token, 2 ttl ms. Returns 1 if the token holds the lease (and it was extended).
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Release the lease if the token holds it, and take the wake flag unless another execution holds
# the lease (that holder takes it on its own release).
# KEYS: 1 lease, 2 wake flag. ARGV: 1 token. Returns 1 if a wake was requested.
RELEASE_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
elseif holder then
  return 0
end
if redis.call('GETDEL', KEYS[2]) then return 1 end
return 0
"""

# Take the lease, or else set the wake flag while someone else holds it: never both missed.
# KEYS: 1 lease, 2 wake flag. ARGV: 1 token, 2 lease ttl ms, 3 wake ttl ms. Returns 1 if acquired.
ACQUIRE_OR_WAKE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  return 1
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 0
"""

# Arm a timer and remember it in the flow's timer set (kept at least ARGV[3] ms).
# KEYS: 1 timers, 2 flow timers. ARGV: 1 member, 2 due ms, 3 flow timer set ttl ms.
ADD_TIMER = """
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
"""


# Claim a due timer: push its score CLAIM into the future so no other sweeper takes it; the
# claimer removes it once it fired (a claimer that dies leaves it to fire again).
# KEYS: 1 timers. ARGV: 1 member, 2 now ms, 3 claim ms. Returns 1 if claimed.
CLAIM_TIMER = """
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not due) or tonumber(due) > tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[3]), ARGV[1])
return 1
"""

# Take the oldest pending signal for one wait occurrence and record it as delivered, in one step
# (a crash between the two cannot lose it). An occurrence that took one already returns it again.
# KEYS: 1 pending list, 2 delivered hash. ARGV: 1 occurrence field.
# Returns {1, payload} (taken or taken before) or {0, ''} (none pending).
TAKE_SIGNAL = """
local taken = redis.call('HGET', KEYS[2], ARGV[1])
if taken then return {1, taken} end
local payload = redis.call('LPOP', KEYS[1])
if not payload then return {0, ''} end
redis.call('HSET', KEYS[2], ARGV[1], payload)
return {1, payload}
"""

# Buffer a signal once per signal id. KEYS: 1 pending list, 2 signal ids set.
# ARGV: 1 payload, 2 ttl ms, 3 signal id ('' for none). Returns 1 if stored, 0 if a repeat.
PUSH_SIGNAL = """
if ARGV[3] ~= '' then
  if redis.call('SADD', KEYS[2], ARGV[3]) == 0 then return 0 end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


# KEYS: 1 lock. ARGV: 1 token, 2 ttl ms. Take the sweeper lock, or extend it if the token holds it.
SWEEPER_LOCK = """
local holder = redis.call('GET', KEYS[1])
if (not holder) or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


@dataclass(frozen=True, slots=True)
class FlowScripts:
    """The store's scripts, registered against one client."""

    create: Script
    save: Script
    prune: Script
    renew_lease: Script
    release_lease: Script
    acquire_or_wake: Script
    add_timer: Script
    claim_timer: Script
    take_signal: Script
    push_signal: Script
    sweeper_lock: Script

    @classmethod
    def register(cls, client: redis.Redis) -> FlowScripts:
        return cls(
            create=client.register_script(CREATE),
            save=client.register_script(SAVE),
            prune=client.register_script(PRUNE),
            renew_lease=client.register_script(RENEW_LEASE),
            release_lease=client.register_script(RELEASE_LEASE),
            acquire_or_wake=client.register_script(ACQUIRE_OR_WAKE),
            add_timer=client.register_script(ADD_TIMER),
            claim_timer=client.register_script(CLAIM_TIMER),
            take_signal=client.register_script(TAKE_SIGNAL),
            push_signal=client.register_script(PUSH_SIGNAL),
            sweeper_lock=client.register_script(SWEEPER_LOCK),
        )
