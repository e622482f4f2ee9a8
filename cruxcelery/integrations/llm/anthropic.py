"""Record a user's calls of the official ``anthropic`` client as Crux generations (the
``anthropic`` extra: ``pip install 'cruxcelery[anthropic]'``).

::

    from anthropic import Anthropic
    from cruxcelery.integrations.llm.anthropic import instrument_anthropic

    client = instrument_anthropic(Anthropic())

    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=1024, messages=[...]) as stream:
        message = stream.get_final_message()          # recorded, inside a Crux action

``instrument_anthropic(client)`` wraps that client's ``messages.create`` (plain, and
``stream=True``) and ``messages.stream`` (the helper), sync (``Anthropic``) or async
(``AsyncAnthropic``). A plain call is a ``generation.call`` span; a stream a ``generation.stream``
span ended by the real end of the stream (read to its end, failed, e.g. an ``error`` event, or
closed by the consumer: ``get_final_message()``, ``text_stream`` and ``until_done()`` read
through it). Recorded: model, provider ``anthropic``, the deadline the client's timeout gives,
response model and id, stop reason, token usage (``input_tokens`` includes cache reads and
writes, as the GenAI conventions count them), and each ``tool_use`` block as a requested tool
call (``executed: false`` unless the action runs a tool with that id). A ``system`` prompt is part
of the ``messages`` artifact. Message content only with ``CRUX_RECORD_CONTENT=true``.

Outside a Crux action the wrapped methods are plain pass-throughs. The client library is never
imported here: this module imports without the extra installed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cruxcelery.agents.generation import Generation, GenerationStream
from cruxcelery.integrations.llm.calls import Opener, client_opener, instrument_create, open_stream
from cruxcelery.integrations.llm.common import (
    ToolCalls,
    given,
    is_patched,
    message_list,
    patch,
    plain,
    record_async_stream,
    record_stream,
    unpatch,
)

if TYPE_CHECKING:
    from anthropic import Anthropic, AsyncAnthropic

    Client = TypeVar("Client", Anthropic, AsyncAnthropic)
else:
    Client = TypeVar("Client")

__all__ = ["MessageEvents", "instrument_anthropic", "is_instrumented", "report_message", "uninstrument_anthropic"]

SOURCE = "anthropic.messages"


def instrument_anthropic(client: Client, *, timeout_s: float | None = None, provider: str = "anthropic") -> Client:
    """Record ``client.messages.create`` and ``client.messages.stream`` as generations; returns
    the client. Idempotent. ``timeout_s`` is the deadline a call's span records (default: the
    call's or the client's timeout, times one plus its ``max_retries``)."""
    opener = client_opener(client, provider, timeout_s, SOURCE, _messages)
    instrument_create(client.messages, "create", opener, report_message, MessageEvents)
    patch(client.messages, "stream", lambda original: _stream_helper(original, opener))
    return client


def uninstrument_anthropic(client: Any) -> None:
    """Undo ``instrument_anthropic(client)``."""
    unpatch(client.messages, "create")
    unpatch(client.messages, "stream")


def is_instrumented(client: Any) -> bool:
    return is_patched(client.messages.create)


def _messages(kwargs: dict[str, Any]) -> list[Any] | None:
    """The call's messages, its ``system`` prompt first."""
    messages = message_list(kwargs.get("messages"))
    system = kwargs.get("system")
    if given(system) and messages is not None:
        messages = [{"role": "system", "content": system}, *messages]
    return messages


def _stream_helper(original: Callable[..., Any], opener: Opener) -> Callable[..., Any]:
    def stream(*args: Any, **kwargs: Any) -> Any:
        manager = original(*args, **kwargs)
        return _Manager(manager, lambda: open_stream(opener, {**kwargs, "stream": True}))

    return stream


class _Manager:
    """``messages.stream(...)``'s manager, recorded: entering it opens the generation, makes the
    request under it, and puts the recorded raw stream under the helper's ``MessageStream``, so
    everything the helper reads (events, ``text_stream``, ``get_final_message()``) goes through
    it; leaving it closes the stream as the helper does."""

    def __init__(self, manager: Any, start: Callable[[], GenerationStream]) -> None:
        self._manager = manager
        self._start = start

    def _recorded(self, helper: Any, stream: GenerationStream, record: Callable[..., Any]) -> Any:
        raw = getattr(helper, "_raw_stream", None)
        if raw is None:  # a helper of another shape: record the request only
            stream.end()
            return helper
        helper._raw_stream = record(stream, raw, MessageEvents())
        return helper

    def __enter__(self) -> Any:
        with self._start() as stream:
            return self._recorded(self._manager.__enter__(), stream, record_stream)

    def __exit__(self, *exc: Any) -> Any:
        return self._manager.__exit__(*exc)

    async def __aenter__(self) -> Any:
        with self._start() as stream:
            return self._recorded(await self._manager.__aenter__(), stream, record_async_stream)

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._manager.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:
        if name == "_manager":
            raise AttributeError(name)
        return getattr(self._manager, name)


def _input_tokens(usage: Any) -> int | None:
    base = getattr(usage, "input_tokens", None)
    if base is None:
        return None
    cached = [getattr(usage, key, None) for key in ("cache_read_input_tokens", "cache_creation_input_tokens")]
    return int(base) + sum(int(n) for n in cached if isinstance(n, int))


def report_message(gen: Generation | GenerationStream, message: Any) -> None:
    """What an Anthropic ``message`` says, told to ``gen``."""
    blocks = list(getattr(message, "content", None) or [])
    for block in blocks:
        if getattr(block, "type", None) == "tool_use":
            gen.tool_requested(str(block.id), str(block.name), plain(getattr(block, "input", None)))
    usage = getattr(message, "usage", None)
    reason = getattr(message, "stop_reason", None)
    gen.finish(response_model=getattr(message, "model", None) or None, finish_reasons=[str(reason)] if reason else None,
               input_tokens=_input_tokens(usage), output_tokens=getattr(usage, "output_tokens", None),
               output={"role": "assistant", "content": [plain(b) for b in blocks]} if blocks else None,
               response_id=getattr(message, "id", None) or None)


class MessageEvents:
    """A message assembled from its server-sent events (``message_start``,
    ``content_block_start`` / ``_delta``, ``message_delta``)."""

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.model: str | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.stop_reason: str | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.tools = ToolCalls()

    def add(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            self.message_id, self.model = getattr(message, "id", None), getattr(message, "model", None)
            self._usage(getattr(message, "usage", None))
        elif kind == "content_block_start":
            block = event.content_block
            self.blocks[event.index] = {"type": block.type, "text": [getattr(block, "text", None) or ""]}
            if block.type == "tool_use":
                self.tools.add(event.index, block.id, block.name, whole=plain(getattr(block, "input", None)))
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta" and event.index in self.blocks:
                self.blocks[event.index]["text"].append(delta.text)
            elif delta.type == "input_json_delta":
                self.tools.add(event.index, fragment=delta.partial_json)
        elif kind == "message_delta":
            self.stop_reason = getattr(event.delta, "stop_reason", None) or self.stop_reason
            self._usage(getattr(event, "usage", None))

    def _usage(self, usage: Any) -> None:
        if usage is None:
            return
        if getattr(usage, "input_tokens", None) is not None:
            self.input_tokens = _input_tokens(usage)
        if getattr(usage, "output_tokens", None) is not None:
            self.output_tokens = int(usage.output_tokens)

    def report(self, stream: GenerationStream, complete: bool) -> None:
        calls = self.tools.calls() if complete else []
        for call_id, name, arguments in calls:
            stream.tool_requested(call_id, name, arguments)
        if self.stop_reason:
            stream.step(finishReason=self.stop_reason)
        output = None
        if complete:
            by_index = {i: {"type": "text", "text": "".join(b["text"])} for i, b in self.blocks.items()
                        if b["type"] == "text"}
            by_index.update({i: {"type": "tool_use", "id": c, "name": n, "input": a}
                             for i, (c, n, a) in zip(
                                 [i for i, b in self.blocks.items() if b["type"] == "tool_use"], calls, strict=False)})
            output = {"role": "assistant", "content": [by_index[i] for i in sorted(by_index)]}
        stream.finish(response_model=self.model, finish_reasons=[self.stop_reason] if self.stop_reason else None,
                      input_tokens=self.input_tokens, output_tokens=self.output_tokens, output=output,
                      response_id=self.message_id)
