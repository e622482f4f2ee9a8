"""Outcomes of child tasks a flow waits on: written once by the child, read by the resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import redis

from cruxcelery.flows.codec import dumps, loads, opt_text
from cruxcelery.flows.errors import FlowError
from cruxcelery.flows.store.keys import FlowKeys, validate_step_id


class ChildResults:
    """``FlowKeys.children(id)``: a hash, one field per durable step attempt (``step.n``, or
    ``step.fallback``), holding that child's outcome JSON. It expires with the flow (``retire``)."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys) -> None:
        self._redis = redis_client
        self._keys = keys

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
