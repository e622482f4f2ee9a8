"""cruxcelery: durable, observable AI-task runtime for Celery.

Import everything from here; every other module is private.
"""

from cruxcelery.actions import ActionContext, CruxTask
from cruxcelery.context import capture_context, with_context
from cruxcelery.envelope import Envelope
from cruxcelery.errors import ConfigurationError, CruxError, InvalidArgs, NotInAction
from cruxcelery.flows.api import cancel_flow, create_flow_id, list_flows, signal_flow
from cruxcelery.flows.errors import (
    ChildFailed,
    DuplicateStep,
    FlowCancelled,
    FlowDeterminismError,
    FlowError,
    FlowExpired,
    FlowNotFound,
    FlowNotWaiting,
    FlowSuspended,
    InvalidFlowId,
    SignalRejected,
    StepFailed,
)
from cruxcelery.flows.handle import FlowHandle
from cruxcelery.flows.results import (
    FlowCancelledResult,
    FlowCompleted,
    FlowExpiredResult,
    FlowFailed,
    FlowResult,
    FlowSuspendedResult,
    Retry,
)
from cruxcelery.flows.scope import FlowScope
from cruxcelery.flows.snapshot import FlowSnapshot, FlowSummary
from cruxcelery.flushing import flush_observability, with_observability_flush
from cruxcelery.runtime import Crux
from cruxcelery.settings import CruxSettings
from cruxcelery.telemetry.exporter import FlushResult, RecordExporter

__all__ = [
    # runtime and actions
    "ActionContext",
    "Crux",
    "CruxSettings",
    "CruxTask",
    # context propagation
    "Envelope",
    "capture_context",
    "with_context",
    # flows
    "FlowCancelledResult",
    "FlowCompleted",
    "FlowExpiredResult",
    "FlowFailed",
    "FlowHandle",
    "FlowResult",
    "FlowScope",
    "FlowSnapshot",
    "FlowSummary",
    "FlowSuspendedResult",
    "Retry",
    "cancel_flow",
    "create_flow_id",
    "list_flows",
    "signal_flow",
    # telemetry
    "FlushResult",
    "RecordExporter",
    "flush_observability",
    "with_observability_flush",
    # errors
    "ChildFailed",
    "ConfigurationError",
    "CruxError",
    "DuplicateStep",
    "FlowCancelled",
    "FlowDeterminismError",
    "FlowError",
    "FlowExpired",
    "FlowNotFound",
    "FlowNotWaiting",
    "FlowSuspended",
    "InvalidArgs",
    "InvalidFlowId",
    "NotInAction",
    "SignalRejected",
    "StepFailed",
]
