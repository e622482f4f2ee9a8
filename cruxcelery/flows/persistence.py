"""Snapshot reads and writes: create (with indexes, idempotency), load, versioned save, cancel."""

from __future__ import annotations

from typing import NamedTuple

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from cruxcelery.flows.base import StoreBase
from cruxcelery.flows.clock import now_ms
from cruxcelery.flows.codec import as_int, opt_text, reply_list, text
from cruxcelery.flows.errors import FlowError, FlowNotFound, VersionConflict
from cruxcelery.flows.keys import validate_flow_id, validate_idempotency_key
from cruxcelery.flows.snapshot import FlowSnapshot
from cruxcelery.flows.status import FLOW_STATUSES

_CANCEL_ATTEMPTS = 50


class Head(NamedTuple):
    name: str
    status: str
    queue: str | None  # where the flow's task is routed (resumes published anywhere go there)


def _encode(snapshot: FlowSnapshot) -> tuple[str, str]:
    try:
        return snapshot.to_json(), snapshot.summary().model_dump_json()
    except PydanticSerializationError as exc:
        raise FlowError(f"flow {snapshot.flow_id!r}: snapshot is not JSON serializable: {exc}") from exc


class SnapshotOps(StoreBase):
    """``FlowKeys.flow(id)`` is a hash: ``version``, ``status``, ``name`` (read by the scripts
    without decoding JSON), ``data`` (the snapshot JSON) and ``summary`` (``FlowSummary`` JSON)."""

    def create(self, snapshot: FlowSnapshot, idempotency_key: str | None = None,
               queue: str | None = None) -> tuple[str, bool]:
        """Store ``snapshot`` and its index entries atomically, unless it exists.

        Returns ``(flow_id, True)`` when created. Returns ``(existing_id, False)`` without writing
        when the idempotency key (``idempotency_key``, else ``snapshot.idempotency_key``) already
        maps to a flow of this name, or when the flow id already exists.
        """
        key = idempotency_key if idempotency_key is not None else snapshot.idempotency_key
        keys = [
            self._keys.flow(snapshot.flow_id),
            self._keys.status_index(snapshot.status),
            self._keys.name_index(snapshot.name),
            self._keys.all_index(),
        ]
        if key is not None:
            keys.append(self._keys.idempotency(snapshot.name, validate_idempotency_key(key)))
            snapshot = snapshot.model_copy(update={"idempotency_key": key})
        data, summary = _encode(snapshot)
        reply = reply_list(
            self._scripts.create(
                keys=keys,
                args=[
                    snapshot.flow_id,
                    data,
                    summary,
                    snapshot.status,
                    snapshot.name,
                    snapshot.version,
                    snapshot.updated_at,
                    self._idempotency_ttl_ms,
                    queue or "",
                ],
            )
        )
        return text(reply[1]), as_int(reply[0]) == 1

    def load(self, flow_id: str) -> FlowSnapshot | None:
        """The stored snapshot, or ``None``."""
        raw = opt_text(self._redis.hget(self._keys.flow(flow_id), "data"))
        if raw is None:
            return None
        try:
            return FlowSnapshot.model_validate_json(raw)
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

    def save(self, snapshot: FlowSnapshot, expected_version: int, stored_status: str | None = None) -> FlowSnapshot:
        """Compare-and-set: write ``snapshot`` as version ``expected_version + 1`` (``updated_at`` =
        now) if the stored version is ``expected_version``, moving it to its status index and
        refreshing its index scores in the same script. ``stored_status`` is the status the caller
        read with that version (read from Redis when not given).

        Raises ``VersionConflict`` (someone wrote first), ``FlowNotFound`` (no stored snapshot) or
        ``FlowError`` (the name differs from the stored one: names are immutable).
        Returns the saved snapshot (a shallow copy of ``snapshot``).
        """
        self._keys.status_index(snapshot.status)  # model_copy(update=...) skips validation: check here
        if stored_status is None:
            stored_status = opt_text(self._redis.hget(self._keys.flow(snapshot.flow_id), "status")) or ""
        new = snapshot.model_copy(update={"version": expected_version + 1, "updated_at": now_ms()})
        data, summary = _encode(new)
        keys = [
            self._keys.flow(new.flow_id),
            self._keys.name_index(new.name),
            self._keys.all_index(),
            self._keys.status_index(stored_status) if stored_status in FLOW_STATUSES else self._keys.all_index(),
            self._keys.status_index(new.status),
        ]
        args: list[str | int] = [
            new.flow_id, new.name, expected_version, new.version, data, summary, new.status, new.updated_at,
            stored_status,
        ]
        reply = reply_list(self._scripts.save(keys=keys, args=args))
        outcome, detail = text(reply[0]), text(reply[1])
        if outcome == "ok":
            return new
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
        for attempt in range(_CANCEL_ATTEMPTS):
            current = self.require(flow_id)
            if current.is_terminal:
                return current
            cancelled = current.model_copy(
                update={"status": "cancelled", "cancel_reason": reason, "waiting": None}
            )
            try:
                return self.save(cancelled, current.version)
            except VersionConflict:
                if attempt == _CANCEL_ATTEMPTS - 1:
                    raise
        raise FlowError(f"flow {flow_id!r}: cancel gave up")  # unreachable: the loop returns or raises
