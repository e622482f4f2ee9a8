"""The Redis key layout of flows. The only module that knows key names.

Every part of a key is validated before a key is built, so user input never shapes a key:

- flow ids and idempotency keys: ``^[A-Za-z0-9_.:-]{1,128}$``
- flow names, signal names and step ids: ``^[A-Za-z0-9_.-]{1,128}$`` (no ``:``). They share a key
  with a flow id or an idempotency key that may contain ``:``; without the colon the split is unique,
  so ``signal:{a}:{b:c}`` and ``signal:{a:b}:{c}`` can never name the same key.

| method | key | type |
| --- | --- | --- |
| ``flow(id)`` | ``{p}:flow:{id}`` | hash: ``version``, ``status``, ``name``, ``data``, ``summary`` |
| ``signal(id, name)`` | ``{p}:signal:{id}:{name}`` | list of pending JSON payloads, FIFO |
| ``status_index(status)`` | ``{p}:flows:status:{status}`` | sorted set, member flow id, score updated_at |
| ``name_index(name)`` | ``{p}:flows:name:{name}`` | sorted set, same |
| ``all_index()`` | ``{p}:flows:all`` | sorted set, same |
| ``lease(id)`` | ``{p}:lock:flow:{id}`` | string: the holder's token (PX) |
| ``wake(id)`` | ``{p}:wake:flow:{id}`` | string flag: a resume was requested while the lease was held |
| ``child_result(id, step)`` | ``{p}:child:{id}:{step}`` | string: the child's outcome JSON |
| ``idempotency(name, key)`` | ``{p}:idem:{name}:{key}`` | string: the flow id the key maps to |
| ``timers()`` | ``{p}:timers`` | sorted set, member timer JSON, score due epoch ms |
| ``flow_timers(id)`` | ``{p}:timers:flow:{id}`` | set: the flow's members of ``timers()`` |
| ``timers_armed()`` | ``{p}:timers:armed`` | string: due ms of the earliest wake-up message in flight |
| ``hop(id, seq)`` | ``{p}:hop:{id}:{seq}`` | string: hop ``seq`` of a deferred publish was handled |
"""

from __future__ import annotations

import re
import secrets

from cruxcelery.errors import ConfigurationError
from cruxcelery.flows.errors import InvalidFlowId
from cruxcelery.flows.status import FLOW_STATUSES

ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,128}$"
NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
_PREFIX_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
_ID_RE = re.compile(ID_PATTERN)
_NAME_RE = re.compile(NAME_PATTERN)
_PREFIX_RE = re.compile(_PREFIX_PATTERN)


def _check(value: object, regex: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or regex.fullmatch(value) is None:
        raise InvalidFlowId(f"invalid {what} {value!r}: it must match {regex.pattern}")
    return value


def validate_flow_id(flow_id: object) -> str:
    """Return ``flow_id`` if valid, else raise ``InvalidFlowId``."""
    return _check(flow_id, _ID_RE, "flow id")


def validate_flow_name(name: object) -> str:
    """Return ``name`` if it is a valid flow name, else raise ``InvalidFlowId``."""
    return _check(name, _NAME_RE, "flow name")


def validate_signal_name(name: object) -> str:
    """Return ``name`` if it is a valid signal name, else raise ``InvalidFlowId``."""
    return _check(name, _NAME_RE, "signal name")


def validate_step_id(step_id: object) -> str:
    """Return ``step_id`` if valid, else raise ``InvalidFlowId``."""
    return _check(step_id, _NAME_RE, "step id")


def validate_idempotency_key(key: object) -> str:
    """Return ``key`` if valid, else raise ``InvalidFlowId``."""
    return _check(key, _ID_RE, "idempotency key")


def create_flow_id() -> str:
    """A new random flow id: ``flow_`` and 24 hex digits."""
    return "flow_" + secrets.token_hex(12)


class FlowKeys:
    """Builds every Redis key of the flow store under one prefix (default ``crux``)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "crux") -> None:
        if not isinstance(prefix, str) or _PREFIX_RE.fullmatch(prefix) is None:
            raise ConfigurationError(f"invalid key prefix {prefix!r}: it must match {_PREFIX_PATTERN}")
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"FlowKeys(prefix={self.prefix!r})"

    def flow(self, flow_id: str) -> str:
        return f"{self.prefix}:flow:{validate_flow_id(flow_id)}"

    def signal(self, flow_id: str, name: str) -> str:
        fid, sig = validate_flow_id(flow_id), validate_signal_name(name)
        return f"{self.prefix}:signal:{fid}:{sig}"

    def status_index(self, status: str) -> str:
        if status not in FLOW_STATUSES:
            raise InvalidFlowId(f"invalid flow status {status!r}: expected one of {FLOW_STATUSES}")
        return f"{self.prefix}:flows:status:{status}"

    def name_index(self, name: str) -> str:
        return f"{self.prefix}:flows:name:{validate_flow_name(name)}"

    def all_index(self) -> str:
        return f"{self.prefix}:flows:all"

    def lease(self, flow_id: str) -> str:
        return f"{self.prefix}:lock:flow:{validate_flow_id(flow_id)}"

    def wake(self, flow_id: str) -> str:
        return f"{self.prefix}:wake:flow:{validate_flow_id(flow_id)}"

    def child_result(self, flow_id: str, step_id: str) -> str:
        fid, sid = validate_flow_id(flow_id), validate_step_id(step_id)
        return f"{self.prefix}:child:{fid}:{sid}"

    def idempotency(self, name: str, key: str) -> str:
        flow_name, idem = validate_flow_name(name), validate_idempotency_key(key)
        return f"{self.prefix}:idem:{flow_name}:{idem}"

    def timers(self) -> str:
        return f"{self.prefix}:timers"

    def hop(self, hop_id: str, seq: int) -> str:
        """String: set once when hop ``seq`` of a deferred publish is handled (duplicates skip)."""
        return f"{self.prefix}:hop:{_check(hop_id, _NAME_RE, 'hop id')}:{int(seq)}"

    def timers_armed(self) -> str:
        """String: due epoch ms of the earliest timer wake-up message in flight."""
        return f"{self.prefix}:timers:armed"

    def flow_timers(self, flow_id: str) -> str:
        return f"{self.prefix}:timers:flow:{validate_flow_id(flow_id)}"
