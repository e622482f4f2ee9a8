"""Outcomes of child tasks a flow waits on (written once by the child, read by the resume), and
which execution runs each child now (so a duplicate delivery does not run it twice)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from cruxcelery.flows.codec import as_int, dumps, loads, opt_text, text
from cruxcelery.flows.errors import FlowError
from cruxcelery.flows.store.keys import FlowKeys, validate_step_id
from cruxcelery.flows.store.scripts import FlowScripts


class ChildResults:
    """``FlowKeys.children(id)``: a hash, one field per durable step attempt (``step.n``, or
    ``step.fallback``), holding that child's outcome JSON. It expires with the flow (``retire``).
    ``FlowKeys.child_run(id, step)``: the execution running that attempt's child now (a holder
    string with a PX expiry, renewed while it runs)."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, scripts: FlowScripts) -> None:
        self._redis = redis_client
        self._keys = keys
        self._scripts = scripts

    def put(self, flow_id: str, step_key: str, outcome: Mapping[str, Any]) -> bool:
        """Store the outcome unless one is stored (HSETNX): the first writer wins. Returns whether
        this call stored it. ``FlowError`` if the outcome is not JSON."""
        try:
            raw = dumps(dict(outcome))
        except (TypeError, ValueError) as exc:
            raise FlowError(f"flow {flow_id!r} step {step_key!r}: outcome is not JSON: {exc}") from exc
        key = self._keys.children(flow_id)
        return bool(self._redis.hsetnx(key, validate_step_id(step_key), raw))

    def get(self, flow_id: str, step_key: str) -> dict[str, Any] | None:
        raw = opt_text(self._redis.hget(self._keys.children(flow_id), validate_step_id(step_key)))
        if raw is None:
            return None
        try:
            value = loads(raw)
        except ValueError as exc:
            raise FlowError(f"flow {flow_id!r} step {step_key!r}: stored outcome is not JSON") from exc
        if not isinstance(value, dict):
            raise FlowError(f"flow {flow_id!r} step {step_key!r}: stored outcome is not an object")
        return value

    def start(self, flow_id: str, step_key: str, holder: str, ttl_ms: int, replacing: str = "") -> tuple[str, str]:
        """Record ``holder`` as running the child, atomically unless its outcome is stored
        (``("done", "")``) or another holder runs it (``("held", that holder)``; pass it as
        ``replacing`` to take over from a holder known dead). ``("ok", "")`` when recorded."""
        verdict, current = self._scripts.start_child(
            keys=[self._keys.children(flow_id), self._keys.child_run(flow_id, step_key)],
            args=[validate_step_id(step_key), holder, ttl_ms, replacing])
        return text(verdict), text(current)

    def renew(self, flow_id: str, step_key: str, holder: str, ttl_ms: int) -> bool:
        """Extend the run record if ``holder`` still holds it."""
        return as_int(self._scripts.renew_lease(keys=[self._keys.child_run(flow_id, step_key)],
                                                args=[holder, ttl_ms])) == 1

    def end(self, flow_id: str, step_key: str, holder: str) -> None:
        """Forget the run record if ``holder`` holds it."""
        self._scripts.delete_if(keys=[self._keys.child_run(flow_id, step_key)], args=[holder])
