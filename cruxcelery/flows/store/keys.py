"""The Redis key layout of flows. The only module that knows key names.

Every part of a key is validated before a key is built, so user input never shapes a key:

- flow ids and idempotency keys: ``^[A-Za-z0-9_.:-]{1,128}$``
- flow names, signal names and step ids: ``^[A-Za-z0-9_.-]{1,128}$`` (no ``:``). They share a key
  with a flow id or an idempotency key that may contain ``:``; without the colon the split is unique,
  so ``signal:{a}:{b:c}`` and ``signal:{a:b}:{c}`` can never name the same key.

Every key of one flow shares the Redis Cluster hash tag ``{flow_id}``, so a script that touches
one flow touches one slot. Global structures (indexes, timers, idempotency keys) have no tag.

| method | key | type |
| --- | --- | --- |
| ``flow(id)`` | ``{p}:{id}:flow`` | hash: ``version``, ``status``, ``name``, ``data``, ``summary`` |
| ``signal(id, name)`` | ``{p}:{id}:signal:{name}`` | list of pending JSON payloads, FIFO |
| ``delivered(id)`` | ``{p}:{id}:delivered`` | hash: wait occurrence (``name#n``) -> the JSON payload it took |
| ``signal_ids(id)`` | ``{p}:{id}:signal-ids`` | set: ``signal_id``s already stored (a retried signal is a no-op) |
| ``lease(id)`` | ``{p}:{id}:lease`` | string: the execution holder's token (PX) |
| ``wake(id)`` | ``{p}:{id}:wake`` | string flag: a resume was requested while the lease was held |
| ``children(id)`` | ``{p}:{id}:children`` | hash: durable step attempt -> its child's outcome JSON |
| ``child_run(id, step)`` | ``{p}:{id}:child-run:{step}`` | string: the execution running that attempt's child (PX) |
| ``flow_timers(id)`` | ``{p}:{id}:timers`` | set: the flow's members of ``timers()`` |
| ``status_index(status)`` | ``{p}:flows:status:{status}`` | sorted set: flow id -> when its status last changed |
| ``name_index(name)`` | ``{p}:flows:name:{name}`` | sorted set, same |
| ``all_index()`` | ``{p}:flows:all`` | sorted set, same |
| ``leases()`` | ``{p}:flows:leases`` | sorted set: flow id -> when its execution lease lapses (ms) |
| ``retired()`` | ``{p}:flows:retired`` | sorted set: JSON ``[id, name, status]`` -> when its keys expire (ms) |
| ``idempotency(name, key)`` | ``{p}:idem:{name}:{key}`` | string: the flow id the key maps to |
| ``timers()`` | ``{p}:timers`` | sorted set, member timer JSON, score due epoch ms |
| ``timers_armed()`` | ``{p}:timers:armed`` | string: due ms of the earliest wake-up message in flight |
| ``deferred(id)`` | ``{p}:deferred:{id}`` | string: a deferred publish's message, until it is published |
| ``sweeper_lock()`` | ``{p}:sweeper:lock`` | string: the worker sweeping now (PX) |
| ``outbox()`` | ``{p}:outbox`` | sorted set: resumes being published (member JSON), score when first tried |
| ``claims()`` | ``{p}:claims`` | hash: task id -> the message a worker reserved and the worker's id |
| ``workers()`` | ``{p}:workers`` | sorted set: worker id -> its last heartbeat (ms) |
"""

from __future__ import annotations

import hashlib
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


def step_id_for(label: str) -> str:
    """A key-safe id for a step label: the label itself when it is one, else a stable hash."""
    if _NAME_RE.fullmatch(label) and len(label) <= 100:
        return label
    return "s-" + hashlib.sha1(label.encode("utf-8")).hexdigest()[:20]


def child_key(label: str, attempt: int, fallback: bool = False) -> str:
    """The field a durable step attempt's child reports under: ``step.n``, or ``step.fallback``
    (a fallback is an attempt of its own: it never shares the failed attempt's key)."""
    return f"{step_id_for(label)}.{'fallback' if fallback else max(attempt, 1)}"


def wait_occurrence(name: str, occurrence: int) -> str:
    """The field of the delivered hash a wait occurrence takes its signal under: ``name#n`` (the
    n-th wait on ``name`` in the handler, from 0)."""
    return f"{name}#{occurrence}"


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

    def _tag(self, flow_id: str) -> str:
        return f"{self.prefix}:{{{validate_flow_id(flow_id)}}}"

    def flow(self, flow_id: str) -> str:
        return f"{self._tag(flow_id)}:flow"

    def signal(self, flow_id: str, name: str) -> str:
        return f"{self._tag(flow_id)}:signal:{validate_signal_name(name)}"

    def delivered(self, flow_id: str) -> str:
        return f"{self._tag(flow_id)}:delivered"

    def signal_ids(self, flow_id: str) -> str:
        return f"{self._tag(flow_id)}:signal-ids"

    def lease(self, flow_id: str) -> str:
        return f"{self._tag(flow_id)}:lease"

    def wake(self, flow_id: str) -> str:
        return f"{self._tag(flow_id)}:wake"

    def children(self, flow_id: str) -> str:
        return f"{self._tag(flow_id)}:children"

    def child_run(self, flow_id: str, step_key: str) -> str:
        return f"{self._tag(flow_id)}:child-run:{validate_step_id(step_key)}"

    def flow_timers(self, flow_id: str) -> str:
        return f"{self._tag(flow_id)}:timers"

    def status_index(self, status: str) -> str:
        if status not in FLOW_STATUSES:
            raise InvalidFlowId(f"invalid flow status {status!r}: expected one of {FLOW_STATUSES}")
        return f"{self.prefix}:flows:status:{status}"

    def name_index(self, name: str) -> str:
        return f"{self.prefix}:flows:name:{validate_flow_name(name)}"

    def all_index(self) -> str:
        return f"{self.prefix}:flows:all"

    def leases(self) -> str:
        return f"{self.prefix}:flows:leases"

    def retired(self) -> str:
        return f"{self.prefix}:flows:retired"

    def idempotency(self, name: str, key: str) -> str:
        flow_name, idem = validate_flow_name(name), validate_idempotency_key(key)
        return f"{self.prefix}:idem:{flow_name}:{idem}"

    def timers(self) -> str:
        return f"{self.prefix}:timers"

    def timers_armed(self) -> str:
        """String: due epoch ms of the earliest timer wake-up message in flight."""
        return f"{self.prefix}:timers:armed"

    def deferred(self, deferred_id: str) -> str:
        return f"{self.prefix}:deferred:{validate_flow_id(deferred_id)}"

    def sweeper_lock(self) -> str:
        return f"{self.prefix}:sweeper:lock"

    def outbox(self) -> str:
        return f"{self.prefix}:outbox"

    def claims(self) -> str:
        return f"{self.prefix}:claims"

    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def per_flow(self, flow_id: str, signal_names: list[str]) -> list[str]:
        """Every key of one flow but its pending signals' (their names come from the flow's
        declaration and snapshot): never discovered by SCAN."""
        keys = [self.flow(flow_id), self.delivered(flow_id), self.signal_ids(flow_id), self.lease(flow_id),
                self.wake(flow_id), self.children(flow_id), self.flow_timers(flow_id)]
        return keys + [self.signal(flow_id, name) for name in signal_names]
