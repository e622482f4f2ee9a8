"""Snapshot reads and writes: create (with indexes, idempotency), load, versioned save, cancel."""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import redis
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from cruxcelery.flows.clock import now_ms
from cruxcelery.flows.codec import as_int, opt_text, reply_list, text
from cruxcelery.flows.errors import FlowError, FlowNotFound, VersionConflict
from cruxcelery.flows.snapshot import FlowSnapshot, FlowSummary
from cruxcelery.flows.status import FLOW_STATUSES
from cruxcelery.flows.store.keys import FlowKeys, validate_flow_id, validate_idempotency_key
from cruxcelery.flows.store.scripts import FlowScripts

_CANCEL_ATTEMPTS = 50


class Head(NamedTuple):
    name: str
    status: str
    queue: str | None  # where the flow's task is routed (resumes published anywhere go there)


def _encode(snapshot: FlowSnapshot) -> tuple[str, str]:
    try:
        return snapshot.to_json(), snapshot.summary().model_dump_json(exclude_none=True)  # None: the default
    except PydanticSerializationError as exc:
        raise FlowError(f"flow {snapshot.flow_id!r}: snapshot is not JSON serializable: {exc}") from exc


class Snapshots:
    """``FlowKeys.flow(id)`` is a hash: ``version``, ``status``, ``name`` (read by the scripts
    without decoding JSON), ``data`` (the snapshot JSON) and ``summary`` (``FlowSummary`` JSON);
    the status, name and all indexes hold each flow under the time of its last status change.
    An idempotency key expires ``idempotency_ttl_ms`` after it is claimed (never when 0)."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, scripts: FlowScripts, *,
                 idempotency_ttl_ms: int = 0) -> None:
        self._redis = redis_client
        self._keys = keys
        self._scripts = scripts
        self._idempotency_ttl_ms = idempotency_ttl_ms

    def create(self, snapshot: FlowSnapshot, idempotency_key: str | None = None,
               queue: str | None = None, *, recover_after_s: float | None = None) -> tuple[str, bool]:
        """Store ``snapshot`` and its index entries, unless it exists.

        Returns ``(flow_id, True)`` when created. Returns ``(existing_id, False)`` without writing
        when the idempotency key (``idempotency_key``, else ``snapshot.idempotency_key``) already
        maps to a stored flow of this name, or when the flow id already exists.
        ``recover_after_s``: the flow also gets a lease index entry lapsing that long from now, so
        the sweeper runs it if nothing else does (its start message never went out, or was lost).

        One step in effect (Redis Cluster: the idempotency key, the flow and the indexes live in
        different slots, so these are separate calls, and ``CREATE`` on the flow's hash is the one
        that commits): the key is claimed first (SET NX), so a crash before the flow is written
        leaves a key pointing at no flow, and the next call with that key creates the flow under
        the id the key names. The index entries and the lease index entry come next, in one
        pipeline (``ZADD NX``): an error or a crash before the flow is written leaves entries
        naming no flow, which listings prune and the sweeper drops once they lapse. Once the flow
        is written it is listed and recoverable: no state lists, runs or recovers nothing.
        """
        key = idempotency_key if idempotency_key is not None else snapshot.idempotency_key
        if key is not None:
            idem = self._keys.idempotency(snapshot.name, validate_idempotency_key(key))
            self._keys.flow(snapshot.flow_id)
            snapshot = snapshot.model_copy(update={"idempotency_key": key})
        data, summary = _encode(snapshot)  # first: a snapshot that cannot be stored claims no key
        if key is not None:
            claimed = self._redis.set(idem, snapshot.flow_id, nx=True,
                                      px=self._idempotency_ttl_ms or None)
            if not claimed:
                owner = opt_text(self._redis.get(idem))
                if owner is not None and owner != snapshot.flow_id:
                    if self.exists(owner):
                        return owner, False
                    snapshot = snapshot.model_copy(update={"flow_id": validate_flow_id(owner)})
                    data, summary = _encode(snapshot)
        flow_id = snapshot.flow_id
        pipe = self._redis.pipeline(transaction=False)
        if recover_after_s is not None:
            pipe.zadd(self._keys.leases(), {flow_id: now_ms() + int(recover_after_s * 1000)}, nx=True)
        for index in (self._keys.status_index(snapshot.status), self._keys.name_index(snapshot.name),
                      self._keys.all_index()):
            pipe.zadd(index, {flow_id: snapshot.updated_at}, nx=True)
        pipe.execute()
        created = as_int(self._scripts.create(
            keys=[self._keys.flow(flow_id)],
            args=[data, summary, snapshot.status, snapshot.name, snapshot.version, queue or ""],
        )) == 1
        if not created:  # the flow existed: out of a status index it is not in (its name and all stay)
            self.drop_stale_entry(self._keys.status_index(snapshot.status), snapshot.status, flow_id)
        return flow_id, created

    def drop_stale_entry(self, index_key: str, status: str | None, flow_id: str) -> None:
        """Remove ``flow_id`` from an index it no longer belongs in (a status index other than its
        status, or any index once the flow is gone); put it back if it moved into that status
        meanwhile, under the score its other indexes hold (the time of its last status change;
        its ``updated_at`` when they hold none). Separate calls: the index and the flow live in
        different Redis Cluster slots."""
        self._redis.zrem(index_key, flow_id)
        stored, raw = self._redis.hmget(self._keys.flow(flow_id), ["status", "summary"])
        if stored is not None and raw is not None and (status is None or opt_text(stored) == status):
            score = self._redis.zscore(self._keys.all_index(), flow_id)
            if score is None:
                score = FlowSummary.model_validate_json(raw).updated_at
            self._redis.zadd(index_key, {flow_id: score})

    def _index(self, flow_id: str, name: str, status: str, score: int) -> None:
        """Put the flow in its status, name and all indexes, and out of every other status index
        (idempotent: it also repairs what a writer that died after its save left behind)."""
        pipe = self._redis.pipeline(transaction=False)
        index_entries(pipe, self._keys, flow_id, name, status, score)
        pipe.execute()

    def load(self, flow_id: str) -> FlowSnapshot | None:
        """The stored snapshot, or ``None``."""
        raw = opt_text(self._redis.hget(self._keys.flow(flow_id), "data"))
        if raw is None:
            return None
        try:
            return FlowSnapshot.from_json(raw)
        except ValidationError as exc:
            raise FlowError(f"flow {flow_id!r}: stored snapshot is invalid: {exc}") from exc

    def require(self, flow_id: str) -> FlowSnapshot:
        """The stored snapshot; ``FlowNotFound`` if there is none."""
        snapshot = self.load(flow_id)
        if snapshot is None:
            raise FlowNotFound(flow_id)
        return snapshot

    def head(self, flow_id: str) -> Head | None:
        """Name, status and task queue of a flow without reading its snapshot; ``None`` when
        unknown."""
        name, status, queue = self._redis.hmget(self._keys.flow(validate_flow_id(flow_id)),
                                                ["name", "status", "queue"])
        if name is None or status is None:
            return None
        return Head(text(name), text(status), opt_text(queue) or None)

    def exists(self, flow_id: str) -> bool:
        return bool(self._redis.exists(self._keys.flow(flow_id)))

    def save(self, snapshot: FlowSnapshot, expected_version: int, stored_status: str | None = None, *,
             listed: bool = False) -> FlowSnapshot:
        """Compare-and-set: write ``snapshot`` as version ``expected_version + 1`` (``updated_at`` =
        now) if the stored version is ``expected_version``. When the status changes, the flow
        moves to its new status index and its index scores become this ``updated_at`` (a second,
        idempotent call: Redis Cluster keeps the indexes in other slots; the new status index is
        written before the snapshot, so a flow is always listed under its current status, and a
        stale entry elsewhere is pruned by listings). A save that keeps the status (a step's
        output, a rejected signal) writes the snapshot only: index scores are the time of the
        last status change. ``stored_status`` is the status the caller read with that version
        (read from Redis when not given). ``listed``: the caller already put the flow in its new
        status index (and prunes it if no save succeeds).

        Raises ``VersionConflict`` (someone wrote first), ``FlowNotFound`` (no stored snapshot) or
        ``FlowError`` (the name differs from the stored one: names are immutable).
        Returns the saved snapshot (a shallow copy of ``snapshot``).
        """
        self._keys.status_index(snapshot.status)  # model_copy(update=...) skips validation: check here
        if stored_status is None:
            stored_status = opt_text(self._redis.hget(self._keys.flow(snapshot.flow_id), "status")) or ""
        new = snapshot.model_copy(update={"version": expected_version + 1, "updated_at": now_ms()})
        data, summary = _encode(new)
        if stored_status != new.status and not listed:  # first: a flow is always in its current status index
            self._redis.zadd(self._keys.status_index(new.status), {new.flow_id: new.updated_at})
        args: list[str | int] = [new.name, expected_version, new.version, data, summary, new.status, stored_status]
        reply = reply_list(self._scripts.save(keys=[self._keys.flow(new.flow_id)], args=args))
        outcome, detail = text(reply[0]), text(reply[1])
        if outcome == "ok":
            if stored_status != new.status:  # same status: the index entries stay as they are
                self._index(new.flow_id, new.name, new.status, new.updated_at)
            return new
        if stored_status != new.status and not listed:
            self.drop_stale_entry(self._keys.status_index(new.status), new.status, new.flow_id)
        if outcome == "missing":
            raise FlowNotFound(new.flow_id)
        if outcome == "conflict":
            raise VersionConflict(new.flow_id, expected_version, int(detail))
        raise FlowError(
            f"flow {new.flow_id!r} is named {detail!r}; a snapshot cannot rename it to {new.name!r}"
        )

    def cancel(self, flow_id: str, reason: str | None = None) -> FlowSnapshot:
        """Mark the flow ``cancelled`` (clearing what it waits for), retrying on version conflicts.

        A no-op returning the stored snapshot when the flow is already terminal; ``FlowNotFound``
        when unknown. An execution holding the lease sees the cancellation at its next save (a
        ``VersionConflict``); pending resumes and timers find the flow terminal and do nothing.
        """
        validate_flow_id(flow_id)
        current = self.require(flow_id)
        if current.is_terminal:
            return current
        index = self._keys.status_index("cancelled")
        self._redis.zadd(index, {flow_id: now_ms()})  # once, first: each attempt is then one read, one write
        saved: FlowSnapshot | None = None
        try:
            for attempt in range(_CANCEL_ATTEMPTS):
                if attempt:
                    current = self.require(flow_id)
                if current.is_terminal:
                    return current
                cancelled = current.model_copy(
                    update={"status": "cancelled", "cancel_reason": reason, "waiting": None}
                )
                with contextlib.suppress(VersionConflict):
                    saved = self.save(cancelled, current.version, current.status, listed=True)
                    return saved
            raise VersionConflict(flow_id, current.version, current.version + 1)
        finally:
            if saved is None:  # not cancelled by us: out of the index again, unless cancelled meanwhile
                self.drop_stale_entry(index, "cancelled", flow_id)


def index_entries(pipe: Any, keys: FlowKeys, flow_id: str, name: str, status: str, score: int) -> None:
    """Queue the writes that list the flow under ``status`` (and its name) and under no other status."""
    pipe.zadd(keys.status_index(status), {flow_id: score})
    pipe.zadd(keys.name_index(name), {flow_id: score})
    pipe.zadd(keys.all_index(), {flow_id: score})
    for other in FLOW_STATUSES:
        if other != status:
            pipe.zrem(keys.status_index(other), flow_id)
