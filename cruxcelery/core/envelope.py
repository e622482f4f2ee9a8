"""The context envelope: ids only, carried in the top-level task header ``crux``.

``decode`` never raises: a malformed, oversized, unsigned (when a key is set) or forged envelope
is logged once and ignored, and the task runs as a new root run. With a signing key, a task's
envelope is signed for that task (its id and name, which travel beside it in the message, not in
it): a signed envelope copied onto another task is forged there. A carrier that belongs to no task
(``capture_context``) is signed for none.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cruxcelery.telemetry import ids

HEADER = "crux"
log = logging.getLogger("cruxcelery.core.envelope")

_LABEL_MAX = 200


class Envelope(BaseModel):
    """Where a task sits in a run. ``continuation``: the task continues the run (a new segment),
    its spans hang under ``parent_span_id``. ``detached``: the task starts its own run, linked to
    the enqueuing span. ``owner``: this execution ends the run (a retried root, a resumed flow)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    kind: Literal["continuation", "detached"]
    operation_id: str = Field(pattern=ids.RUN_ID.pattern)
    run_id: str = Field(pattern=ids.RUN_ID.pattern)
    trace_id: str = Field(pattern=ids.TRACE_ID.pattern)
    parent_span_id: str = Field(pattern=ids.SPAN_ID.pattern)
    segment_id: str = Field(pattern=ids.SEGMENT_ID.pattern)
    owner: bool = False
    run_name: str | None = Field(default=None, max_length=_LABEL_MAX)
    run_started_at: float | None = None
    flow_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    flow_step: str | None = Field(default=None, max_length=_LABEL_MAX)
    boundary_id: str | None = Field(default=None, pattern=ids.BOUNDARY_ID.pattern)
    boundary_started_at: float | None = None
    lease_expires_at: float | None = None
    label: str | None = Field(default=None, max_length=_LABEL_MAX)
    sig: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` of the parent span."""
        return f"00-{self.trace_id}-{self.parent_span_id}-01"


class TaskBinding(NamedTuple):
    """The task a signed envelope belongs to: the id and (registered, not shadow) name its message
    carries. ``None`` parts stand for a message without them."""

    task_id: str | None
    task_name: str | None

    @classmethod
    def of(cls, task_id: Any, task_name: Any) -> TaskBinding:
        return cls(None if task_id is None else str(task_id), None if task_name is None else str(task_name))


def clip(label: str | None) -> str | None:
    """Labels travel in the envelope; keep them within its bound."""
    return label if label is None or len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "~"


class EnvelopeCodec:
    """Encodes and decodes envelopes for one ``Crux`` instance (its size cap and signing key)."""

    def __init__(self, max_bytes: int = 4096, signing_key: bytes | None = None) -> None:
        self.max_bytes = max_bytes
        self._key = signing_key

    def _signature(self, envelope: Envelope, task: TaskBinding | None) -> str:
        assert self._key is not None
        payload = envelope.model_dump_json(exclude={"sig"}, exclude_none=True).encode("utf-8")  # canonical
        if task is not None:  # a JSON prefix: never the start of an unbound payload (an object)
            payload = json.dumps(["task", task.task_id, task.task_name]).encode("utf-8") + payload
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()

    def sign(self, envelope: Envelope, task: TaskBinding | None = None) -> Envelope:
        """The envelope with its signature (for ``task``, when given) when a key is set
        (unchanged otherwise)."""
        if self._key is None:
            return envelope
        return envelope.model_copy(update={"sig": self._signature(envelope, task)})

    def encode(self, envelope: Envelope, task: TaskBinding | None = None) -> str:
        """Compact JSON, signed (for ``task``, the one whose message carries it) when a key is set,
        within the cap the decoder enforces: past it, the labels (the only free text) are dropped
        first, and an envelope still too large is refused with ``ValueError`` rather than sent to be
        ignored."""
        raw = self.sign(envelope, task).model_dump_json(exclude_none=True)
        if len(raw.encode("utf-8")) <= self.max_bytes:
            return raw
        raw = self.sign(envelope.model_copy(update={"label": None, "run_name": None}), task).model_dump_json(
            exclude_none=True)
        if len(raw.encode("utf-8")) > self.max_bytes:
            raise ValueError(f"envelope of {len(raw)} bytes is over CRUX_ENVELOPE_MAX_BYTES ({self.max_bytes})")
        return raw

    def decode(self, raw: Any, task: TaskBinding | None = None) -> Envelope | None:
        """The envelope in ``raw`` (a JSON string or a dict), or ``None``. Never raises. ``task``:
        the task whose message carried it (a signed envelope must have been signed for it)."""
        if raw is None:
            return None
        try:
            return self._decode(raw, task)
        except _Rejected as why:
            log.warning("cruxcelery: ignoring %s envelope (%s); the task runs as a new root run",
                        why.kind, why.detail)
        except Exception as exc:  # a decoder must never raise into Celery
            log.warning("cruxcelery: ignoring unreadable envelope (%s); the task runs as a new root run",
                        type(exc).__name__)
        return None

    def _decode(self, raw: Any, task: TaskBinding | None) -> Envelope:
        if isinstance(raw, bytes | bytearray):
            raw = bytes(raw).decode("utf-8", "replace")
        if isinstance(raw, str):
            if len(raw.encode("utf-8")) > self.max_bytes:
                raise _Rejected("oversized", f"{len(raw)} bytes > {self.max_bytes}")
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise _Rejected("malformed", "not JSON") from exc
        elif isinstance(raw, dict):
            data = raw
            if len(json.dumps(data, default=str).encode("utf-8")) > self.max_bytes:
                raise _Rejected("oversized", f"over {self.max_bytes} bytes")
        else:
            raise _Rejected("malformed", f"a {type(raw).__name__}, not a JSON object")
        try:
            envelope = Envelope.model_validate(data)
        except ValidationError as exc:
            raise _Rejected("malformed", f"{exc.error_count()} invalid fields") from exc
        if self._key is not None:
            if envelope.sig is None:
                raise _Rejected("unsigned", "CRUX_SIGNING_KEY is set")
            if not hmac.compare_digest(envelope.sig, self._signature(envelope, task)):
                raise _Rejected("forged", "bad signature")
        return envelope


class _Rejected(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.detail = detail
