"""The documented import path of ``cruxcelery.integrations.llm.openai``: the same module."""

import sys
from typing import TYPE_CHECKING

__all__ = ["ChatChunks", "SOURCE", "instrument_openai", "is_instrumented", "report_completion", "uninstrument_openai"]

if TYPE_CHECKING:
    from cruxcelery.integrations.llm.openai import (
        SOURCE,
        ChatChunks,
        instrument_openai,
        is_instrumented,
        report_completion,
        uninstrument_openai,
    )
else:
    import cruxcelery.integrations.llm.openai as moved

    sys.modules[__name__] = moved
