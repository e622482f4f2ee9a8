"""The reading side of the spool: one consumer group, and an exact count of what was trimmed unread.

Commands (all on the stream ``key``; the group defaults to ``crux-forwarders``):

- ``ensure_group``: ``XGROUP CREATE key group 0 MKSTREAM ENTRIESREAD 0`` when missing.
- ``read_new``: new entries for a consumer (``XREADGROUP ... >``), through a Lua script that also
  counts what ``MAXLEN`` trimmed before the group read it (below).
- ``read_own``: the consumer's own pending entries again (``XREADGROUP ... 0``): what it has not
  acknowledged yet. Re-reading also resets their idle time, so nobody claims them meanwhile.
- ``autoclaim``: entries of other consumers idle for longer than ``min_idle_s`` (``XAUTOCLAIM``).
- ``ack``: ``XACK``.

**Trimmed-unread count.** Stream entries are never deleted (no ``XDEL``), only trimmed from the old
end, so the logical number of the first entry still present is ``entries-added - length + 1``
(``XINFO STREAM``, Redis >= 7.0). The read script keeps the group's position (the logical number of
the last entry delivered to the group) in the hash ``cursor_key(key)`` (``{key}:cursor``: the
stream's slot in a Redis Cluster), field ``pos:{group}``. Before
each read: if ``pos`` is below ``entries-added - length``, the entries in between were trimmed
before anyone in the group read them: that many are added to field ``trimmed:{group}``, and ``pos``
jumps. After the read, ``pos`` grows by the number of entries delivered (new entries are delivered
in order, without gaps). The script is atomic, so a trim racing a read cannot hide entries. Cost:
one ``XINFO STREAM`` per read batch (O(1)), nothing on the writing side. Condition: every read of
new entries in that group goes through ``read_new``. Entries claimed or re-read after being trimmed
(pending, never acknowledged) are counted apart, by the caller, with ``count_lost_pending``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import redis
from redis.exceptions import ResponseError

__all__ = [
    "DEFAULT_GROUP",
    "Entry",
    "SpoolStats",
    "ack",
    "autoclaim",
    "count_lost_pending",
    "cursor_key",
    "ensure_group",
    "read_new",
    "read_own",
    "spool_stats",
]

DEFAULT_GROUP = "crux-forwarders"

Fields = Mapping[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Entry:
    """One stream entry: its id, and its fields (``None`` when it was trimmed while pending)."""

    id: bytes
    fields: Fields | None


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """``unread``: entries not yet delivered to the group; ``pending``: delivered, not acknowledged;
    ``trimmed_unread``: trimmed before the group read them; ``lost_pending``: trimmed while pending."""

    length: int
    entries_added: int | None
    unread: int | None
    pending: int
    trimmed_unread: int
    lost_pending: int


def cursor_key(key: str) -> str:
    """The cursor hash lives in the stream's Redis Cluster slot: its hash tag is the stream's key
    (or the stream key's own hash tag), so the read script touches one slot."""
    return f"{key}:cursor" if _hash_tag(key) else f"{{{key}}}:cursor"


def _hash_tag(key: str) -> str | None:
    start = key.find("{")
    end = key.find("}", start + 1)
    return key[start + 1:end] if start != -1 and end > start + 1 else None


_READ_NEW = """
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local length, added, last_id = 0, nil, '0-0'
for i = 1, #info, 2 do
  local name = info[i]
  if name == 'length' then length = info[i + 1]
  elseif name == 'entries-added' then added = info[i + 1]
  elseif name == 'last-generated-id' then last_id = info[i + 1] end
end
local lost = -1
local field = 'pos:' .. ARGV[1]
local pos = nil
if added then
  lost = 0
  local first = added - length
  pos = tonumber(redis.call('HGET', KEYS[2], field))
  if pos == nil then
    pos = first
    local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
    for _, group in ipairs(groups) do
      local gname, gread = nil, nil
      for j = 1, #group, 2 do
        if group[j] == 'name' then gname = group[j + 1]
        elseif group[j] == 'entries-read' then gread = group[j + 1] end
      end
      if gname == ARGV[1] and type(gread) == 'number' then pos = gread end
    end
  end
  if pos < first then
    lost = first - pos
    pos = first
    redis.call('HINCRBY', KEYS[2], 'trimmed:' .. ARGV[1], lost)
  end
end
local res = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', KEYS[1], '>')
if pos ~= nil then
  local n = 0
  if res then n = #res[1][2] end
  redis.call('HSET', KEYS[2], field, pos + n)
end
return {lost, last_id, res}
"""


def _call(client: redis.Redis) -> Callable[..., Any]:
    call: Callable[..., Any] = client.execute_command
    return call


def ensure_group(client: redis.Redis, key: str, group: str = DEFAULT_GROUP) -> bool:
    """Create the group (and the stream) if missing, reading from the start. True if created."""
    call = _call(client)
    try:
        call("XGROUP", "CREATE", key, group, "0", "MKSTREAM", "ENTRIESREAD", "0")
        return True
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        if "syntax" not in str(exc).lower():  # ENTRIESREAD is Redis >= 7.0
            raise
    try:
        call("XGROUP", "CREATE", key, group, "0", "MKSTREAM")
        return True
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise


class NewEntries:
    """What ``read_new`` returns: the entries, the count just found trimmed unread (``-1``: not
    countable, Redis < 7.0), and the stream's last id (to block on ``XREAD`` after it)."""

    __slots__ = ("entries", "last_id", "trimmed")

    def __init__(self, entries: list[Entry], trimmed: int, last_id: bytes) -> None:
        self.entries = entries
        self.trimmed = trimmed
        self.last_id = last_id


def read_new(client: redis.Redis, key: str, group: str, consumer: str, count: int) -> NewEntries:
    """Up to ``count`` entries never delivered to the group, counting what was trimmed unread."""
    script = _script(client)
    reply = script(keys=[key, cursor_key(key)], args=[group, consumer, count])
    trimmed, last_id, streams = reply[0], reply[1], reply[2]
    return NewEntries(_stream_entries(streams), int(trimmed), _as_bytes(last_id))


def read_own(client: redis.Redis, key: str, group: str, consumer: str, count: int) -> list[Entry]:
    """Up to ``count`` of the consumer's own pending entries (oldest first); resets their idle time."""
    reply = _call(client)("XREADGROUP", "GROUP", group, consumer, "COUNT", count, "STREAMS", key, "0")
    return _stream_entries(reply)


def autoclaim(
    client: redis.Redis, key: str, group: str, consumer: str, min_idle_s: float, start: bytes, count: int
) -> tuple[bytes, list[Entry], int]:
    """Claim entries idle for ``min_idle_s`` from any consumer. Returns the cursor to continue from
    (``b"0-0"``: the scan is complete), the claimed entries, and how many pending ids pointed to
    entries already trimmed (Redis >= 7 removes those from the pending list)."""
    reply = _call(client)(
        "XAUTOCLAIM", key, group, consumer, int(min_idle_s * 1000), start, "COUNT", count
    )
    cursor = _as_bytes(reply[0])
    entries = _entries(reply[1])
    deleted = len(reply[2]) if len(reply) > 2 and reply[2] else 0
    return cursor, entries, deleted


def ack(client: redis.Redis, key: str, group: str, ids: Sequence[bytes]) -> int:
    if not ids:
        return 0
    return int(_call(client)("XACK", key, group, *ids))


def count_lost_pending(client: redis.Redis, key: str, group: str, count: int) -> None:
    """Add ``count`` to the entries lost while pending (trimmed before they were acknowledged)."""
    if count > 0:
        _call(client)("HINCRBY", cursor_key(key), f"lost:{group}", count)


def spool_stats(client: redis.Redis, key: str, group: str = DEFAULT_GROUP) -> SpoolStats:
    """The spool's state for one group (a few O(1) commands)."""
    call = _call(client)
    pipe = client.pipeline(transaction=False)
    queue: Callable[..., Any] = pipe.execute_command
    queue("XLEN", key)
    queue("HMGET", cursor_key(key), f"pos:{group}", f"trimmed:{group}", f"lost:{group}")
    length, (pos, trimmed, lost) = pipe.execute()
    added: int | None = None
    pending = 0
    if length or pos is not None:
        try:
            info = _flat(call("XINFO", "STREAM", key))
            value = info.get(b"entries-added")
            added = int(value) if value is not None else None
            summary = call("XPENDING", key, group)
            pending = int(summary.get("pending", 0) if isinstance(summary, dict) else summary[0])
        except ResponseError:
            pass
    unread = added - int(pos) if added is not None and pos is not None else None
    return SpoolStats(
        length=int(length), entries_added=added, unread=unread, pending=pending,
        trimmed_unread=int(trimmed or 0), lost_pending=int(lost or 0),
    )


# -- replies -----------------------------------------------------------------------------------------

_SCRIPTS: dict[int, Callable[..., Any]] = {}


def _script(client: redis.Redis) -> Callable[..., Any]:
    script = _SCRIPTS.get(id(client))
    if script is None:
        script = cast(Callable[..., Any], client.register_script(_READ_NEW))
        if len(_SCRIPTS) > 64:
            _SCRIPTS.clear()
        _SCRIPTS[id(client)] = script
    return script


def _stream_entries(reply: Any) -> list[Entry]:
    """Entries of a one-stream ``XREADGROUP`` reply, raw (``[[key, [[id, [f, v, ...]], ...]]]``) or
    parsed by redis-py (``[[key, [(id, {f: v}), ...]]]``, or a dict by key under RESP3)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        streams: Iterable[Any] = reply.values()
        return [entry for stream in streams for entry in _entries(stream[0] if stream else [])]
    return [entry for stream in reply for entry in _entries(stream[1])]


def _entries(items: Any) -> list[Entry]:
    out: list[Entry] = []
    for item in items or ():
        if item is None:
            continue
        entry_id, fields = item[0], item[1] if len(item) > 1 else None
        if entry_id is None:
            continue
        out.append(Entry(_as_bytes(entry_id), _fields(fields)))
    return out


def _fields(value: Any) -> Fields | None:
    if not value:
        return None
    if isinstance(value, dict):
        return {_as_bytes(k): _as_bytes(v) for k, v in value.items()}
    return _flat(value)


def _flat(values: Any) -> dict[bytes, Any]:
    if isinstance(values, dict):
        return {_as_bytes(k): v for k, v in values.items()}
    items = list(values)
    return {_as_bytes(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()
