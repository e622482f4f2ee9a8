"""``RedisFlowStore``: the storage layer of flows, one Redis client, JSON only.

Each concern lives in its own module and is mixed in here:

- ``persistence.SnapshotOps``: ``create``, ``load``, ``require``, ``exists``, ``save``, ``cancel``
- ``leases.LeaseOps``: ``acquire_lease``, ``acquire_lease_or_request_wake``, ``renew_lease``,
  ``release_lease``, ``lease_holder``, ``request_wake``, ``take_wake``
- ``signals.SignalOps``: ``push_signal``, ``pop_signal``, ``peek_signal``,
  ``pending_signal_count``, ``clear_signals``
- ``children.ChildResultOps``: ``put_child_result``, ``get_child_result``, ``delete_child_result``
- ``timers.TimerOps``: ``add_timer``, ``due_timers``, ``claim_timer``, ``next_due_ms``,
  ``remove_timers_for``
- ``listing.ListingOps``: ``list_flows``

Key names come from ``FlowKeys`` only; nothing here scans the keyspace. Building a store never
talks to Redis. The client may be built with ``decode_responses`` true or false.
"""

from __future__ import annotations

from cruxcelery.flows.children import ChildResultOps
from cruxcelery.flows.leases import LeaseOps
from cruxcelery.flows.listing import ListingOps
from cruxcelery.flows.persistence import SnapshotOps
from cruxcelery.flows.signals import SignalOps
from cruxcelery.flows.timers import TimerOps

__all__ = ["RedisFlowStore"]


class RedisFlowStore(SnapshotOps, LeaseOps, SignalOps, ChildResultOps, TimerOps, ListingOps):
    """``RedisFlowStore(redis_client, keys=FlowKeys(prefix), *, signal_ttl_s=30 days,
    wake_ttl_s=1 day, child_result_ttl_s=30 days, idempotency_ttl_s=None)``."""
