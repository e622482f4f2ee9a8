"""cruxcelery: durable, observable AI-task runtime for Celery.

Import everything from here; every other module is private.
"""

from cruxcelery.actions import ActionContext, CruxTask
from cruxcelery.context import capture_context, with_context
from cruxcelery.envelope import Envelope
from cruxcelery.errors import ConfigurationError, CruxError, InvalidArgs, NotInAction
from cruxcelery.runtime import Crux
from cruxcelery.settings import CruxSettings
from cruxcelery.telemetry.exporter import FlushResult, RecordExporter

__all__ = [
    # runtime
    "ActionContext",
    # errors
    "ConfigurationError",
    "Crux",
    "CruxError",
    "CruxSettings",
    "CruxTask",
    # context propagation
    "Envelope",
    # telemetry
    "FlushResult",
    "InvalidArgs",
    "NotInAction",
    "RecordExporter",
    "capture_context",
    "with_context",
]
