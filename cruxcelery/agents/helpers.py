"""The agents' ``ctx.crux`` helpers: generations, tools and parallel branches. ``AgentsExtension``
contributes them through the seam; the runtime mixes them into ``ctx.crux``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cruxcelery.agents.generation as gen
import cruxcelery.agents.parallel as branches_
import cruxcelery.agents.tools as tools

if TYPE_CHECKING:
    from cruxcelery.agents.generation import Generation, GenerationStream
    from cruxcelery.agents.tools import Tool
    from cruxcelery.core.helpers import CruxHelpers


class AgentHelpers:
    """Mixed into ``ctx.crux``: ``generation``, ``generation_stream``, ``run_tool``, ``parallel``."""

    def generation(self, model: str, provider: str, operation: str = "chat", messages: Any = None,
                   timeout_s: float | None = None, attributes: dict[str, Any] | None = None, *,
                   name: str | None = None) -> Generation:
        """``with ctx.crux.generation(...) as gen``: a ``generation.call`` span (see ``cruxcelery.agents``)."""
        return gen.generation(model, provider, operation, messages, timeout_s, attributes, name=name)

    def generation_stream(self, model: str, provider: str, operation: str = "chat", messages: Any = None,
                          timeout_s: float | None = None, attributes: dict[str, Any] | None = None, *,
                          name: str | None = None) -> GenerationStream:
        """A ``generation.stream`` span closed from the real end of ``stream.wrap(...)``."""
        return gen.generation_stream(model, provider, operation, messages, timeout_s, attributes, name=name)

    def run_tool(self, tool: Tool[Any], args: Any = None, *, call_id: str | None = None, label: str | None = None,
                 timeout_s: float | None = None, **options: Any) -> Any:
        """Run a ``@crux.tool``: in-process (returns its result) or, for ``as_task=True``, as a
        child task across a boundary (returns its ``AsyncResult``; inside a flow step, durable)."""
        helpers: CruxHelpers = self  # type: ignore[assignment]  # always mixed into CruxHelpers
        return tools.run_tool(helpers, tool, args, call_id=call_id, label=label, timeout_s=timeout_s, **options)

    def parallel(self, label: str, branches: dict[str, Callable[[], Any]], *, max_workers: int | None = None,
                 return_exceptions: bool = False) -> dict[str, Any]:
        """Run ``branches`` in threads that keep this action's context (not durable by itself
        inside a flow: wrap it in ``scope.step``)."""
        return branches_.parallel(label, branches, max_workers=max_workers, return_exceptions=return_exceptions)
