"""The documented import path of ``cruxcelery.integrations.llm.anthropic``."""

from cruxcelery.integrations.llm.anthropic import (
    MessageEvents,
    instrument_anthropic,
    is_instrumented,
    report_message,
    uninstrument_anthropic,
)

__all__ = ["MessageEvents", "instrument_anthropic", "is_instrumented", "report_message", "uninstrument_anthropic"]
