"""Live updates: a publish/subscribe hub for server-sent events, and the 1 s reconciliation pass.

Messages are small JSON objects: ``{"type": "run", "runId", "new"}`` when records of a run arrive,
``{"type": "lifecycle", "runId", "previous", "status", "endedAt"}`` when a run's reconciled status
changes (records arrived, or a lease, deadline or staleness threshold passed). A subscriber scoped to
one run only gets that run's messages. A slow subscriber loses its oldest messages, never blocks
the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.concurrency import run_in_threadpool

from cruxcelery.devtools.store import DevtoolsService, LifecycleChange

__all__ = ["Hub", "reconcile_forever"]

_log = logging.getLogger("cruxcelery.devtools")
PASS_INTERVAL_S = 1.0


class _Subscriber:
    def __init__(self, run_id: str | None, size: int) -> None:
        self.run_id = run_id
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(size)


class Hub:
    """Fan-out of messages to subscribers; used from the event loop only."""

    def __init__(self, queue_size: int = 256) -> None:
        self._subscribers: set[_Subscriber] = set()
        self._size = queue_size
        self.closed = False

    def publish(self, message: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            if sub.run_id is not None and sub.run_id != message.get("runId"):
                continue
            if sub.queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
            sub.queue.put_nowait(message)

    def publish_runs(self, touched: Iterable[str], new: Iterable[str]) -> None:
        fresh = set(new)
        for run_id in sorted(touched):
            self.publish({"type": "run", "runId": run_id, "new": run_id in fresh})

    def publish_changes(self, changes: Iterable[LifecycleChange]) -> None:
        for change in changes:
            self.publish({"type": "lifecycle", "runId": change.run_id, "previous": change.previous,
                          "status": change.status, "endedAt": change.ended_at})

    async def subscribe(self, run_id: str | None, keepalive_s: float = 15.0) -> AsyncIterator[dict[str, Any] | None]:
        """Messages for ``run_id`` (all when ``None``); ``None`` items are keep-alive ticks."""
        sub = _Subscriber(run_id, self._size)
        self._subscribers.add(sub)
        try:
            while not self.closed:
                try:
                    message = await asyncio.wait_for(sub.queue.get(), keepalive_s)
                except TimeoutError:
                    message = None
                if self.closed:
                    return
                yield message
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """Ends every subscription (at shutdown)."""
        self.closed = True
        for sub in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)


async def reconcile_forever(service: DevtoolsService, hub: Hub, interval_s: float = PASS_INTERVAL_S) -> None:
    """The background pass: every ``interval_s``, reconcile what changed or came due and publish
    the lifecycle changes. Runs until cancelled."""
    while True:
        try:
            changes = await run_in_threadpool(service.refresh)
            hub.publish_changes(changes)
        except asyncio.CancelledError:
            raise
        except Exception:  # the pass must survive anything; the next one retries
            _log.exception("devtools reconciliation pass failed")
        await asyncio.sleep(interval_s)
