"""The Lua scripts of the flow store. Each runs atomically in Redis; every key it touches is
passed in ``KEYS`` (built by ``FlowKeys``), never assembled in Lua, and all of them share one
Redis Cluster slot (one flow's hash tag, or one global key). Registering a script computes
its SHA only: nothing talks to Redis until the first call (which loads it on ``NOSCRIPT``)."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from redis.commands.core import Script

# Create a snapshot unless the flow exists (one slot: the flow's hash only).
# KEYS: 1 flow hash. ARGV: 1 snapshot JSON, 2 summary JSON, 3 status, 4 name, 5 version,
#       6 the queue the flow's task is routed to ('' for the default).
# Returns 1 when created, 0 when the flow already existed.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'version', ARGV[5], 'status', ARGV[3], 'name', ARGV[4],
           'data', ARGV[1], 'summary', ARGV[2], 'queue', ARGV[6])
return 1
"""

# Compare-and-set a snapshot (one slot: the flow's hash only). The caller names the status it
# read with that version; the indexes are moved by a second, idempotent call.
# KEYS: 1 flow hash. ARGV: 1 name, 2 expected version, 3 new version, 4 snapshot JSON,
#       5 summary JSON, 6 new status, 7 stored status
# Returns {'ok', new version} | {'missing', ''} | {'conflict', stored version} | {'name', stored name}
SAVE = """
local cur = redis.call('HMGET', KEYS[1], 'version', 'name', 'status')
if not cur[1] then return {'missing', ''} end
if tonumber(cur[1]) ~= tonumber(ARGV[2]) or cur[3] ~= ARGV[7] then return {'conflict', cur[1]} end
if cur[2] ~= ARGV[1] then return {'name', cur[2] or ''} end
redis.call('HSET', KEYS[1], 'version', ARGV[3], 'status', ARGV[6], 'data', ARGV[4], 'summary', ARGV[5])
return {'ok', ARGV[3]}
"""

# KEYS: 1 lease (or the sweeper lock). ARGV: 1 token, 2 ttl ms. Returns 1 if the token holds it
# (and it was extended).
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Release the lease if the token holds it, and take the wake flag unless another execution holds
# the lease (that holder takes it, and owns the flow's lease index entry).
# KEYS: 1 lease, 2 wake flag. ARGV: 1 token.
# Returns {woke, held by another}: woke 1 if a wake was requested.
RELEASE_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('DEL', KEYS[1])
elseif holder then
  return {0, 1}
end
if redis.call('GETDEL', KEYS[2]) then return {1, 0} end
return {0, 0}
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

# Start running a durable child unless its outcome is stored or another execution runs it: the
# outcome check and the take are one step, so an execution that stores the outcome then lets go
# never admits a duplicate between the two. A holder the caller found dead (``ARGV[4]``) is replaced.
# KEYS: 1 children hash, 2 the child's run key. ARGV: 1 step field, 2 holder, 3 ttl ms,
#       4 the holder to replace ('' for none).
# Returns {'done', ''} | {'held', current holder} | {'ok', ''}
START_CHILD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {'done', ''} end
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= ARGV[4] then return {'held', holder} end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {'ok', ''}
"""

# KEYS: 1 key. ARGV: 1 value. Delete the key if it holds the value; returns 1 if deleted.
DELETE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
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
    renew_lease: Script
    release_lease: Script
    acquire_or_wake: Script
    claim_timer: Script
    take_signal: Script
    push_signal: Script
    sweeper_lock: Script
    start_child: Script
    delete_if: Script

    @classmethod
    def register(cls, client: redis.Redis) -> FlowScripts:
        return cls(
            create=client.register_script(CREATE),
            save=client.register_script(SAVE),
            renew_lease=client.register_script(RENEW_LEASE),
            release_lease=client.register_script(RELEASE_LEASE),
            acquire_or_wake=client.register_script(ACQUIRE_OR_WAKE),
            claim_timer=client.register_script(CLAIM_TIMER),
            take_signal=client.register_script(TAKE_SIGNAL),
            push_signal=client.register_script(PUSH_SIGNAL),
            sweeper_lock=client.register_script(SWEEPER_LOCK),
            start_child=client.register_script(START_CHILD),
            delete_if=client.register_script(DELETE_IF),
        )
