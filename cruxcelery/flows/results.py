"""``FlowResult``: what a flow came to, discriminated on ``status``; and step ``Retry`` options."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cruxcelery.flows.snapshot import ErrorInfo, FlowSnapshot


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)

    flow_id: str


class FlowCompleted(_Result):
    status: Literal["completed"] = "completed"
    output: Any = None


class FlowSuspendedResult(_Result):
    status: Literal["suspended"] = "suspended"
    suspended_at: str | None = None


class FlowCancelledResult(_Result):
    status: Literal["cancelled"] = "cancelled"
    cancel_reason: str | None = None


class FlowExpiredResult(_Result):
    status: Literal["expired"] = "expired"
    suspended_at: str | None = None


class FlowFailed(_Result):
    status: Literal["failed"] = "failed"
    error: ErrorInfo | None = None


FlowResult = Annotated[
    FlowCompleted | FlowSuspendedResult | FlowCancelledResult | FlowExpiredResult | FlowFailed,
    Field(discriminator="status"),
]


def result_of(snapshot: FlowSnapshot) -> FlowResult | None:
    """The result a snapshot stands for; ``None`` while the flow is pending, running or waiting."""
    match snapshot.status:
        case "completed":
            return FlowCompleted(flow_id=snapshot.flow_id, output=snapshot.output)
        case "suspended":
            return FlowSuspendedResult(flow_id=snapshot.flow_id, suspended_at=snapshot.suspended_at)
        case "cancelled":
            return FlowCancelledResult(flow_id=snapshot.flow_id, cancel_reason=snapshot.cancel_reason)
        case "expired":
            return FlowExpiredResult(flow_id=snapshot.flow_id, suspended_at=snapshot.suspended_at)
        case "failed":
            return FlowFailed(flow_id=snapshot.flow_id, error=snapshot.error)
    return None


class Retry(BaseModel):
    """Step retry: ``attempts`` in all (the first included), ``delay_s`` before the second,
    growing linearly or exponentially."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=3, ge=1, le=100)
    delay_s: float = Field(default=1.0, ge=0)
    backoff: Literal["exponential", "linear"] = "exponential"

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2, 3, ...)."""
        n = max(attempt - 1, 1)
        return self.delay_s * (2 ** (n - 1) if self.backoff == "exponential" else n)
