"""Buffered signals: per flow and name, a FIFO list of JSON payloads, each delivered once."""

from __future__ import annotations

from typing import Any

import redis

from cruxcelery.flows.codec import as_int, dumps, loads, reply_list, text
from cruxcelery.flows.errors import SignalRejected
from cruxcelery.flows.store.keys import FlowKeys
from cruxcelery.flows.store.scripts import FlowScripts


def _decode(flow_id: str, name: str, raw: str) -> Any:
    try:
        return loads(raw)
    except ValueError as exc:
        raise SignalRejected(f"flow {flow_id!r}: stored signal {name!r} is not JSON ({raw[:80]!r})") from exc


class Signals:
    """``FlowKeys.signal(id, name)`` is a list: RPUSH to send, LPOP to deliver. A payload may be
    any JSON value, ``null`` included. The list expires ``ttl_ms`` after the last push."""

    def __init__(self, redis_client: redis.Redis, keys: FlowKeys, scripts: FlowScripts, *, ttl_ms: int) -> None:
        self._redis = redis_client
        self._keys = keys
        self._scripts = scripts
        self._ttl_ms = ttl_ms

    def push(self, flow_id: str, name: str, payload: Any, signal_id: str | None = None) -> bool:
        """Buffer ``payload`` (JSON) for the flow; with a ``signal_id`` only once (a retried
        signal is a no-op). Returns whether it was stored. ``SignalRejected`` if it is not JSON."""
        key = self._keys.signal(flow_id, name)
        try:
            raw = dumps(payload)
        except (TypeError, ValueError) as exc:
            raise SignalRejected(f"signal {name!r} payload is not JSON: {exc}") from exc
        stored = self._scripts.push_signal(
            keys=[key, self._keys.signal_ids(flow_id)], args=[raw, self._ttl_ms, signal_id or ""]
        )
        return as_int(stored) == 1

    def take(self, flow_id: str, name: str, occurrence: str) -> tuple[bool, Any]:
        """For wait ``occurrence`` (``name#n``): the payload it took before, else the oldest
        pending one, recorded as delivered to it in the same atomic step: ``(True, payload)``, or
        ``(False, None)`` when none is pending. A crash after the take loses nothing: the next
        execution gets the same payload back."""
        reply = reply_list(self._scripts.take_signal(
            keys=[self._keys.signal(flow_id, name), self._keys.delivered(flow_id)], args=[occurrence]
        ))
        if as_int(reply[0]) != 1:
            return False, None
        return True, _decode(flow_id, name, text(reply[1]))

    def delivered(self, flow_id: str) -> dict[str, Any]:
        """Every payload taken so far, by wait occurrence (``name#n``)."""
        raw = self._redis.hgetall(self._keys.delivered(flow_id))
        return {text(k): _decode(flow_id, text(k), text(v)) for k, v in raw.items()}

    def taken(self, flow_id: str, occurrence: str) -> bool:
        """Whether wait ``occurrence`` (``name#n``) took a payload: one its flow has not consumed
        yet when the flow still waits on that occurrence (a crash between the take and the save)."""
        return bool(self._redis.hexists(self._keys.delivered(flow_id), occurrence))

    def forget_delivered(self, flow_id: str, occurrence: str) -> None:
        """Undo a take whose payload was refused (it failed validation)."""
        self._redis.hdel(self._keys.delivered(flow_id), occurrence)

    def pending_count(self, flow_id: str, name: str) -> int:
        return int(self._redis.llen(self._keys.signal(flow_id, name)))
