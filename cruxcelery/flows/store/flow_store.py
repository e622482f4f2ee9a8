"""``RedisFlowStore``: the storage layer of flows, one Redis client, JSON only.

The store is built from parts, one per concern, each a small class that receives what it works
with (the client, the key layout, the scripts, its TTLs, the other parts it calls) when the store
builds it. Callers reach an operation through its part, ``store.<part>.<op>(...)``:

- ``snapshots`` (``snapshots.Snapshots``): the snapshot, its indexes and idempotency key
- ``listing`` (``listing.Listing``): pages of flows read from those indexes
- ``signals`` (``signals.Signals``): buffered signals and what each wait took
- ``children`` (``children.ChildResults``): the outcomes of durable children and who runs them
- ``leases`` (``leases.Leases``): execution leases, the wake flag, the lease index
- ``timers`` (``timers.Timers``): timeouts, re-checks and delayed wake-ups
- ``deferred`` (``timers.Deferred``): a deferred publish's message while its timer waits
- ``retention`` (``retention.Retention``): retiring, keeping and deleting a flow's keys
- ``outbox``, ``claims``, ``workers`` (``recovery``): what the sweeper recovers from besides the
  lease index: resumes being published, messages workers reserved, heartbeats and the sweeper lock

Key names come from ``FlowKeys`` (keys) only; nothing here scans the keyspace. The Lua scripts
(scripts) are registered once per store. Building a store never talks to Redis. The client may be
built with ``decode_responses`` true or false: replies are narrowed either way.
"""

from __future__ import annotations

from typing import ClassVar, Final

import redis

from cruxcelery.flows.store.children import ChildResults
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.leases import Leases
from cruxcelery.flows.store.listing import Listing
from cruxcelery.flows.store.recovery import Claims, Outbox, Workers
from cruxcelery.flows.store.retention import Retention
from cruxcelery.flows.store.scripts import FlowScripts
from cruxcelery.flows.store.signals import Signals
from cruxcelery.flows.store.snapshots import Snapshots
from cruxcelery.flows.store.timers import Deferred, Timers
from cruxcelery.flows.store.ttl import DAY_S, ttl_ms

__all__ = ["RedisFlowStore"]


class RedisFlowStore:
    """``RedisFlowStore(redis_client, keys=FlowKeys(prefix), *, signal_ttl_s=30 days,
    wake_ttl_s=1 day, idempotency_ttl_s=None)``. Durable children's outcomes have no TTL of their
    own: they expire with the flow (``retention``), so a flow never outlives what its steps wait on."""

    PARTS: ClassVar[tuple[str, ...]] = ("snapshots", "listing", "signals", "children", "leases", "timers",
                                        "deferred", "retention", "outbox", "claims", "workers")

    def __init__(
        self,
        redis_client: redis.Redis,
        keys: FlowKeys | None = None,
        *,
        signal_ttl_s: float = 30 * DAY_S,
        wake_ttl_s: float = DAY_S,
        idempotency_ttl_s: float | None = None,
    ) -> None:
        self.redis: Final = redis_client
        self.keys: Final = keys if keys is not None else FlowKeys()
        scripts = FlowScripts.register(redis_client)
        signal_ttl_ms = ttl_ms(signal_ttl_s, "signal_ttl_s")
        wake_ttl_ms = ttl_ms(wake_ttl_s, "wake_ttl_s")
        idempotency_ttl_ms = 0 if idempotency_ttl_s is None else ttl_ms(idempotency_ttl_s, "idempotency_ttl_s")
        client, k = redis_client, self.keys
        self.snapshots: Final = Snapshots(client, k, scripts, idempotency_ttl_ms=idempotency_ttl_ms)
        self.listing: Final = Listing(client, k, self.snapshots)
        self.signals: Final = Signals(client, k, scripts, ttl_ms=signal_ttl_ms)
        self.children: Final = ChildResults(client, k, scripts)
        self.leases: Final = Leases(client, k, scripts, wake_ttl_ms=wake_ttl_ms)
        self.timers: Final = Timers(client, k, scripts)
        self.deferred: Final = Deferred(client, k)
        self.retention: Final = Retention(client, k, self.timers)
        self.outbox: Final = Outbox(client, k)
        self.claims: Final = Claims(client, k)
        self.workers: Final = Workers(client, k, scripts)
