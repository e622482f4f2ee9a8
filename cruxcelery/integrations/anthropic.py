"""The documented import path of ``cruxcelery.integrations.llm.anthropic``: the same module."""

import sys
from typing import TYPE_CHECKING

__all__ = ["MessageEvents", "SOURCE", "instrument_anthropic", "is_instrumented", "report_message",
           "uninstrument_anthropic"]

if TYPE_CHECKING:
    from cruxcelery.integrations.llm.anthropic import (
        SOURCE,
        MessageEvents,
        instrument_anthropic,
        is_instrumented,
        report_message,
        uninstrument_anthropic,
    )
else:
    import cruxcelery.integrations.llm.anthropic as moved

    sys.modules[__name__] = moved
