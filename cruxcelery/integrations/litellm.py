"""The documented import path of ``cruxcelery.integrations.llm.litellm``."""

from cruxcelery.integrations.llm.litellm import instrument_litellm, is_instrumented, uninstrument_litellm

__all__ = ["instrument_litellm", "is_instrumented", "uninstrument_litellm"]
