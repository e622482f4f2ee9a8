"""Buffered signals: per flow and name, a FIFO list of JSON payloads, each delivered once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cruxcelery.flows.base import StoreBase
from cruxcelery.flows.codec import dumps, loads, opt_text
from cruxcelery.flows.errors import SignalRejected


def _decode(flow_id: str, name: str, raw: str) -> Any:
    try:
        return loads(raw)
    except ValueError as exc:
        raise SignalRejected(f"flow {flow_id!r}: stored signal {name!r} is not JSON ({raw[:80]!r})") from exc


class SignalOps(StoreBase):
    """``FlowKeys.signal(id, name)`` is a list: RPUSH to send, LPOP to deliver. A payload may be
    any JSON value, ``null`` included. The list expires ``signal_ttl_s`` after the last push."""

    def push_signal(self, flow_id: str, name: str, payload: Any) -> None:
        """Buffer ``payload`` (JSON) for the flow; ``SignalRejected`` if it is not JSON."""
        key = self._keys.signal(flow_id, name)
        try:
            raw = dumps(payload)
        except (TypeError, ValueError) as exc:
            raise SignalRejected(f"signal {name!r} payload is not JSON: {exc}") from exc
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(key, raw)
        pipe.pexpire(key, self._signal_ttl_ms)
        pipe.execute()

    def pop_signal(self, flow_id: str, name: str) -> tuple[bool, Any]:
        """Take the oldest pending payload: ``(True, payload)``, or ``(False, None)`` when none.

        Single use: concurrent poppers never receive the same payload.
        """
        raw = opt_text(self._redis.lpop(self._keys.signal(flow_id, name)))
        if raw is None:
            return False, None
        return True, _decode(flow_id, name, raw)

    def peek_signal(self, flow_id: str, name: str) -> tuple[bool, Any]:
        """Like ``pop_signal`` without taking it."""
        raw = opt_text(self._redis.lindex(self._keys.signal(flow_id, name), 0))
        if raw is None:
            return False, None
        return True, _decode(flow_id, name, raw)

    def pending_signal_count(self, flow_id: str, name: str) -> int:
        return int(self._redis.llen(self._keys.signal(flow_id, name)))

    def clear_signals(self, flow_id: str, names: Iterable[str]) -> int:
        """Delete the pending signals of the given names (never discovered by SCAN); returns the
        number of non-empty lists deleted."""
        keys = [self._keys.signal(flow_id, name) for name in names]
        if not keys:
            return 0
        return int(self._redis.delete(*keys))
