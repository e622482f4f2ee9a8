"""``RedisFlowStore``: the storage layer of flows, one Redis client, JSON only.

Each concern lives in its own module and is mixed in here:

- ``persistence.SnapshotOps``: ``create``, ``load``, ``require``, ``exists``, ``save``, ``cancel``
- ``leases.LeaseOps``: ``acquire_lease_or_request_wake``, ``renew_lease``, ``release_lease``
- ``recovery.RecoveryOps``: the lease index, the outbox, claims, worker heartbeats, the sweeper lock
- ``signals.SignalOps``: ``push_signal``, ``take_signal``, ``delivered_signals``,
  ``forget_delivered``, ``pending_signal_count``
- ``children.ChildResultOps``: ``put_child_result``, ``get_child_result``
- ``timers.TimerOps``: ``add_timer``, ``due_timers``, ``claim_timer``, ``drop_timer``,
  ``next_due_ms``, ``remove_timers_for``, deferred publishes
- ``retention.RetentionOps``: ``retire``, ``delete_flow``, ``flows_older_than``
- ``listing.ListingOps``: ``list_flows``

Key names come from ``FlowKeys`` only; nothing here scans the keyspace. Building a store never
talks to Redis. The client may be built with ``decode_responses`` true or false.
"""

from __future__ import annotations

from cruxcelery.flows.store.children import ChildResultOps
from cruxcelery.flows.store.leases import LeaseOps
from cruxcelery.flows.store.listing import ListingOps
from cruxcelery.flows.store.retention import RetentionOps
from cruxcelery.flows.store.signals import SignalOps

__all__ = ["RedisFlowStore"]


class RedisFlowStore(ListingOps, LeaseOps, SignalOps, ChildResultOps, RetentionOps):
    """``RedisFlowStore(redis_client, keys=FlowKeys(prefix), *, signal_ttl_s=30 days,
    wake_ttl_s=1 day, child_result_ttl_s=30 days, idempotency_ttl_s=None)``."""
