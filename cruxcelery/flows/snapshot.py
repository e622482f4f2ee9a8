"""Pydantic models of everything the flow store keeps. Times are epoch milliseconds."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from cruxcelery.flows.clock import now_ms
from cruxcelery.flows.status import FLOW_STATUSES, TERMINAL_STATUSES, FlowStatus
from cruxcelery.flows.store.keys import (
    child_key,
    validate_flow_id,
    validate_flow_name,
    validate_idempotency_key,
    wait_occurrence,
)
from cruxcelery.telemetry.records import ErrorSummary

__all__ = [
    "FLOW_STATUSES",
    "TERMINAL_STATUSES",
    "ErrorInfo",
    "FlowSnapshot",
    "FlowStatus",
    "FlowSummary",
    "StepRecord",
    "Waiting",
]

FlowIdField = Annotated[str, AfterValidator(validate_flow_id)]
FlowNameField = Annotated[str, AfterValidator(validate_flow_name)]
IdempotencyKeyField = Annotated[str, AfterValidator(validate_idempotency_key)]
EpochMs = Annotated[int, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class StepRecord(_Model):
    """A completed step: its output is replayed, not re-executed."""

    output: Any = None
    duration_ms: float = Field(default=0.0, ge=0)
    attempts: int = Field(default=1, ge=1)
    completed_at: EpochMs = Field(default_factory=now_ms)


class Waiting(_Model):
    """What a suspended (or waiting) flow waits for."""

    kind: Literal["signal", "condition", "child"]
    name: str
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    timeout_at: EpochMs | None = None
    every_s: float | None = Field(default=None, gt=0)
    child_task_id: str | None = None
    occurrence: int = Field(default=0, ge=0)
    fallback: bool = False  # a durable child started by the step's fallback

    @property
    def child_key(self) -> str:
        """Where the awaited child reports (``kind == "child"``)."""
        return child_key(self.name, self.occurrence, self.fallback)

    @property
    def occurrence_key(self) -> str:
        """The wait occurrence (``name#n``) its signal or met condition is recorded under."""
        return wait_occurrence(self.name, self.occurrence)


ErrorInfo = ErrorSummary
"""Summary of the error a flow failed with: the same ``{message, name, category, retryable}`` the
records carry."""


class FlowSummary(_Model):
    """What ``list_flows`` and ``status()`` return: small, no step outputs."""

    flow_id: FlowIdField
    name: FlowNameField
    status: FlowStatus
    suspended_at: str | None = None
    created_at: EpochMs
    updated_at: EpochMs
    timeout_at: EpochMs | None = None
    parent_flow_id: FlowIdField | None = None


class FlowSnapshot(_Model):
    """The durable state of one flow, stored under ``FlowKeys.flow(flow_id)``."""

    flow_id: FlowIdField
    name: FlowNameField
    status: FlowStatus = "pending"
    input: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: ErrorInfo | None = None
    cancel_reason: str | None = None
    suspended_at: str | None = None
    waiting: Waiting | None = None
    # the task id of each durable step attempt's child (``Waiting.child_key`` -> task id), recorded
    # before it is published: only that task reports the attempt's outcome; dropped when the step completes
    child_tasks: dict[str, str] = Field(default_factory=dict)
    completed_steps: dict[str, StepRecord] = Field(default_factory=dict)
    step_order: list[str] = Field(default_factory=list)
    delivered_signals: dict[str, Any] = Field(default_factory=dict)
    rejected_signals: list[dict[str, Any]] = Field(default_factory=list)
    parent_flow_id: FlowIdField | None = None
    # the declared signals and their JSON schemas: callers that never imported the flow validate by them
    signals: dict[str, dict[str, Any]] = Field(default_factory=dict)
    trace_context: dict[str, str] = Field(default_factory=dict)
    idempotency_key: IdempotencyKeyField | None = None
    version: int = Field(default=0, ge=0)
    created_at: EpochMs = Field(default_factory=now_ms)
    updated_at: EpochMs = Field(default_factory=now_ms)
    segments: int = Field(default=0, ge=0)

    def child_task_of(self, step_key: str) -> str | None:
        """The task id recorded for the child of durable step attempt ``step_key``, if any."""
        recorded = self.child_tasks.get(step_key)
        waiting = self.waiting
        if recorded is None and waiting is not None and waiting.kind == "child" and waiting.child_key == step_key:
            recorded = waiting.child_task_id  # a snapshot written before ``child_tasks`` existed
        return recorded

    @property
    def is_terminal(self) -> bool:
        """True once the flow is completed, failed, cancelled or expired."""
        return self.status in TERMINAL_STATUSES

    def summary(self) -> FlowSummary:
        return FlowSummary(
            flow_id=self.flow_id,
            name=self.name,
            status=self.status,
            suspended_at=self.suspended_at,
            created_at=self.created_at,
            updated_at=self.updated_at,
            timeout_at=self.waiting.timeout_at if self.waiting is not None else None,
            parent_flow_id=self.parent_flow_id,
        )

    def to_json(self) -> str:
        """The stored form: JSON, aliases (``schema``) applied, without the fields that hold
        their default (``None``, an empty collection, a first occurrence) and without the waited
        signal's schema when it is the declared one in ``signals`` (``from_json`` puts it back).
        Values inside inputs, outputs and payloads are kept as they are, ``null``s included."""
        exclude: dict[str, Any] = {name: True for name in _EMPTY_BY_DEFAULT if not getattr(self, name)}
        exclude.update((name, True) for name in _NONE_BY_DEFAULT if getattr(self, name) is None)
        if self.error is not None:
            exclude["error"] = {name for name in ("name", "category", "retryable") if getattr(self.error, name) is None}
        waiting = self.waiting
        if waiting is not None:
            omit = {name for name in _WAITING_NONE_BY_DEFAULT if getattr(waiting, name) is None}
            if waiting.occurrence == 0:
                omit.add("occurrence")
            if not waiting.fallback:
                omit.add("fallback")
            declared = self.signals.get(waiting.name) if waiting.kind == "signal" else None
            if declared is not None and waiting.schema_ == declared:
                omit.add("schema_")
            elif declared is not None and waiting.schema_ is None:
                omit.discard("schema_")  # an explicit null: from_json restores only a missing schema
            exclude["waiting"] = omit
        return self.model_dump_json(by_alias=True, exclude=exclude)

    @classmethod
    def from_json(cls, raw: str | bytes) -> FlowSnapshot:
        """A stored snapshot (``to_json``'s form, or the older one with every field written)."""
        return cls.model_validate_json(raw, context=_STORED)

    @model_validator(mode="before")
    @classmethod
    def _declared_schema(cls, data: Any, info: ValidationInfo) -> Any:
        """Stored form only: a waited signal stored without its schema waits with the declared one."""
        if not isinstance(info.context, dict) or not info.context.get("stored") or not isinstance(data, dict):
            return data
        waiting, signals = data.get("waiting"), data.get("signals")
        if (isinstance(waiting, dict) and "schema" not in waiting and waiting.get("kind") == "signal"
                and isinstance(signals, dict) and isinstance(signals.get(waiting.get("name")), dict)):
            data = {**data, "waiting": {**waiting, "schema": signals[waiting["name"]]}}
        return data


_NONE_BY_DEFAULT = ("output", "error", "cancel_reason", "suspended_at", "waiting", "parent_flow_id",
                    "idempotency_key")
_WAITING_NONE_BY_DEFAULT = ("schema_", "timeout_at", "every_s", "child_task_id")
_EMPTY_BY_DEFAULT = ("input", "child_tasks", "completed_steps", "step_order", "delivered_signals", "rejected_signals",
                     "signals", "trace_context")
_STORED: dict[str, Any] = {"stored": True}  # the validation context of ``from_json``
