"""The documented import path of ``cruxcelery.integrations.llm.openai``."""

from cruxcelery.integrations.llm.openai import ChatChunks, instrument_openai, report_completion, uninstrument_openai

__all__ = ["ChatChunks", "instrument_openai", "report_completion", "uninstrument_openai"]
