"""The documented import path of ``cruxcelery.integrations.llm.litellm``: the same module."""

import sys
from typing import TYPE_CHECKING

__all__ = ["SOURCE", "instrument_litellm", "is_instrumented", "uninstrument_litellm"]

if TYPE_CHECKING:
    from cruxcelery.integrations.llm.litellm import (
        SOURCE,
        instrument_litellm,
        is_instrumented,
        uninstrument_litellm,
    )
else:
    import cruxcelery.integrations.llm.litellm as moved

    sys.modules[__name__] = moved
