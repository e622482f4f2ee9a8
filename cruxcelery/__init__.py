"""cruxcelery: durable, observable AI-task runtime for Celery.

Import everything from here; every other module is private.
"""

from cruxcelery.agents.generation import Generation, GenerationStream, generation, generation_stream
from cruxcelery.agents.parallel import ParallelError
from cruxcelery.agents.tools import Tool, ToolContext
from cruxcelery.core.actions import CruxTask
from cruxcelery.core.context import ActionContext, capture_context, with_context
from cruxcelery.core.envelope import Envelope
from cruxcelery.core.extensions import ChildCall, Execution, Extension, Worker
from cruxcelery.core.flushing import flush_observability, with_observability_flush
from cruxcelery.core.outcomes import Outcome, classify
from cruxcelery.crux import Crux
from cruxcelery.errors import (
    BrokerUnavailable,
    ConfigurationError,
    CruxError,
    InvalidArgs,
    NotInAction,
    StoreUnavailable,
)
from cruxcelery.flows.admin import FlowNotRetryable, retry_flow
from cruxcelery.flows.api import cancel_flow, create_flow_id, delete_flow, list_flows, purge_flows, signal_flow
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
    FlowTaskFailed,
    IdempotencyConflict,
    InvalidFlowId,
    LeaseLost,
    SignalRejected,
    StepFailed,
    VersionConflict,
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
from cruxcelery.settings import CruxSettings
from cruxcelery.telemetry.exporter import FlushResult, RecordExporter

__all__ = [
    # runtime and actions
    "ActionContext",
    "Crux",
    "CruxSettings",
    "CruxTask",
    # agents: tools, generations, parallel
    "Generation",
    "GenerationStream",
    "ParallelError",
    "Tool",
    "ToolContext",
    "generation",
    "generation_stream",
    # the extension seam
    "Execution",
    "Extension",
    "ChildCall",
    "Outcome",
    "Worker",
    "classify",
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
    "delete_flow",
    "list_flows",
    "purge_flows",
    "retry_flow",
    "signal_flow",
    # telemetry
    "FlushResult",
    "RecordExporter",
    "flush_observability",
    "with_observability_flush",
    # errors
    "BrokerUnavailable",
    "ChildFailed",
    "ConfigurationError",
    "CruxError",
    "DuplicateStep",
    "FlowCancelled",
    "FlowDeterminismError",
    "FlowError",
    "FlowExpired",
    "FlowNotFound",
    "FlowNotRetryable",
    "FlowNotWaiting",
    "FlowSuspended",
    "FlowTaskFailed",
    "IdempotencyConflict",
    "InvalidArgs",
    "InvalidFlowId",
    "LeaseLost",
    "NotInAction",
    "SignalRejected",
    "StepFailed",
    "StoreUnavailable",
    "VersionConflict",
]
