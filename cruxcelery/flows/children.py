"""Outcomes of child tasks a flow waits on: written once by the child, read by the resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cruxcelery.flows.base import StoreBase
from cruxcelery.flows.codec import dumps, loads, opt_text
from cruxcelery.flows.errors import FlowError


class ChildResultOps(StoreBase):
    """``FlowKeys.child_result(id, step_id)``: a JSON object, expiring after ``child_result_ttl_s``."""

    def put_child_result(self, flow_id: str, step_id: str, outcome: Mapping[str, Any]) -> bool:
        """Store the outcome unless one is stored (SET NX): the first writer wins. Returns whether
        this call stored it. ``FlowError`` if the outcome is not JSON."""
        key = self._keys.child_result(flow_id, step_id)
        try:
            raw = dumps(dict(outcome))
        except (TypeError, ValueError) as exc:
            raise FlowError(f"flow {flow_id!r} step {step_id!r}: outcome is not JSON: {exc}") from exc
        return bool(self._redis.set(key, raw, nx=True, px=self._child_result_ttl_ms))

    def get_child_result(self, flow_id: str, step_id: str) -> dict[str, Any] | None:
        raw = opt_text(self._redis.get(self._keys.child_result(flow_id, step_id)))
        if raw is None:
            return None
        try:
            value = loads(raw)
        except ValueError as exc:
            raise FlowError(f"flow {flow_id!r} step {step_id!r}: stored outcome is not JSON") from exc
        if not isinstance(value, dict):
            raise FlowError(f"flow {flow_id!r} step {step_id!r}: stored outcome is not an object")
        return value

    def delete_child_result(self, flow_id: str, step_id: str) -> bool:
        return bool(self._redis.delete(self._keys.child_result(flow_id, step_id)))
