"""Record a user's calls of the official ``openai`` client as Crux generations (the ``openai``
extra: ``pip install 'cruxcelery[openai]'``).

::

    from openai import OpenAI
    from cruxcelery.integrations.llm.openai import instrument_openai

    client = instrument_openai(OpenAI())

    @crux.action(name="answer")
    def answer(ctx, args):
        return client.chat.completions.create(model="gpt-4o", messages=[...])   # recorded

``instrument_openai(client)`` wraps that client's ``chat.completions.create``, sync
(``OpenAI``, ``AzureOpenAI``) or async (``AsyncOpenAI``): a plain call is a ``generation.call``
span, ``stream=True`` a ``generation.stream`` span that ends at the real end of the stream
(exhausted, failed, or closed by the consumer), and ``chat.completions.stream(...)``, which calls
``create``, is recorded too. Each span carries the request model and provider, the deadline the
client's timeout gives, the response model and id, finish reasons, token usage (a stream reports
usage only when asked with ``stream_options={"include_usage": True}``, as the API does), and every
tool call the model asked for, recorded as a ``tool.call`` with ``executed: false`` unless the
action runs a tool with that call id. Message content only with ``CRUX_RECORD_CONTENT=true``.

Outside a Crux action the wrapped method is a plain pass-through. The client library is never
imported here: this module imports without the extra installed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from cruxcelery.agents.generation import Generation, GenerationStream
from cruxcelery.integrations.llm.calls import client_opener, instrument_create
from cruxcelery.integrations.llm.common import ToolCalls, is_patched, parse_arguments, plain, unpatch

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

    Client = TypeVar("Client", OpenAI, AsyncOpenAI)
else:
    Client = TypeVar("Client")

__all__ = ["ChatChunks", "instrument_openai", "report_completion", "uninstrument_openai"]

SOURCE = "openai.chat.completions"


def instrument_openai(client: Client, *, timeout_s: float | None = None, provider: str | None = None) -> Client:
    """Record ``client.chat.completions.create`` (and so ``.stream``) as generations; returns the
    client. Idempotent. ``timeout_s`` is the deadline a call's span records (default: the call's
    or the client's timeout, times one plus its ``max_retries``); ``provider`` defaults to
    ``openai`` (``azure.ai.openai`` for an Azure client)."""
    name = provider or ("azure.ai.openai" if "Azure" in type(client).__name__ else "openai")
    instrument_create(client.chat.completions, "create", client_opener(client, name, timeout_s, SOURCE),
                      report_completion, ChatChunks)
    return client


def uninstrument_openai(client: Any) -> None:
    """Undo ``instrument_openai(client)``."""
    unpatch(client.chat.completions, "create")


def is_instrumented(client: Any) -> bool:
    return is_patched(client.chat.completions.create)


def report_completion(gen: Generation | GenerationStream, response: Any) -> None:
    """What a ``chat.completion`` (OpenAI's, or LiteLLM's ``ModelResponse``) says, told to ``gen``."""
    choices = list(getattr(response, "choices", None) or [])
    for choice in choices:
        message = getattr(choice, "message", None)
        for call in getattr(message, "tool_calls", None) or []:
            function = getattr(call, "function", None)
            if function is not None and getattr(call, "id", None):
                gen.tool_requested(str(call.id), str(function.name), parse_arguments(function.arguments))
    usage = getattr(response, "usage", None)
    reasons = [str(c.finish_reason) for c in choices if getattr(c, "finish_reason", None)]
    gen.finish(response_model=getattr(response, "model", None) or None, finish_reasons=reasons or None,
               input_tokens=getattr(usage, "prompt_tokens", None),
               output_tokens=getattr(usage, "completion_tokens", None),
               output=[plain(getattr(c, "message", None)) for c in choices] or None,
               response_id=getattr(response, "id", None) or None)


class ChatChunks:
    """A chat completion assembled from its ``chat.completion.chunk`` stream (OpenAI's, or the
    chunks of a LiteLLM stream, which have the same shape)."""

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.finish: dict[int, str] = {}
        self.text: dict[int, list[str]] = {}
        self.tools = ToolCalls()
        self.cost_usd: float | None = None

    def add(self, chunk: Any) -> None:
        self.response_id = self.response_id or getattr(chunk, "id", None) or None
        self.model = self.model or getattr(chunk, "model", None) or None
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        for choice in getattr(chunk, "choices", None) or []:
            index = int(getattr(choice, "index", 0) or 0)
            delta = getattr(choice, "delta", None)
            content = getattr(delta, "content", None)
            if isinstance(content, str) and content:
                self.text.setdefault(index, []).append(content)
            for call in getattr(delta, "tool_calls", None) or []:
                function = getattr(call, "function", None)
                self.tools.add((index, getattr(call, "index", 0)), getattr(call, "id", None),
                               getattr(function, "name", None), getattr(function, "arguments", None))
            reason = getattr(choice, "finish_reason", None)
            if reason:
                self.finish[index] = str(reason)

    def report(self, stream: GenerationStream, complete: bool) -> None:
        calls = self.tools.calls() if complete else []
        for call_id, name, arguments in calls:
            stream.tool_requested(call_id, name, arguments)
        for index, reason in sorted(self.finish.items()):
            stream.step(choice=index, finishReason=reason)
        output: list[dict[str, Any]] | None = None
        if complete:
            indexes = sorted(set(self.text) | set(self.finish))
            output = [
                {"role": "assistant", "content": "".join(self.text.get(i, [])) or None} for i in indexes]
            if calls and output:
                output[0]["tool_calls"] = [{"id": c, "type": "function", "function": {"name": n, "arguments": a}}
                                           for c, n, a in calls]
        stream.finish(response_model=self.model, finish_reasons=[r for _i, r in sorted(self.finish.items())] or None,
                      input_tokens=getattr(self.usage, "prompt_tokens", None),
                      output_tokens=getattr(self.usage, "completion_tokens", None), cost_usd=self.cost_usd,
                      output=output or None, response_id=self.response_id)
