"""What a recorded call of an LLM client opens, and a client's ``create`` recorded: one
``Generation`` per plain call, one ``GenerationStream`` per ``stream=True`` call, ended by the real
end of the stream it returns (see ``common``). Imports no client library."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cruxcelery.agents.generation import Generation, GenerationStream, generation, generation_stream
from cruxcelery.integrations.llm.common import (
    Accumulator,
    is_async,
    message_list,
    patch,
    quietly,
    record_async_stream,
    record_stream,
    request_attributes,
    resolve_timeout,
)

__all__ = ["Keywords", "Opener", "Report", "client_opener", "instrument_create", "open_chat", "open_stream",
           "recorded_async_create", "recorded_create"]

Opener = Callable[[dict[str, Any], bool], Generation | GenerationStream]
"""``opener(kwargs, streaming)``: the ``Generation`` (or ``GenerationStream``) for one call."""
Report = Callable[[Any, Any], None]
Keywords = Callable[[tuple[Any, ...], dict[str, Any]], tuple[tuple[Any, ...], dict[str, Any]]]


def open_chat(kwargs: dict[str, Any], stream: bool, *, source: str, model: str, provider: str,
              messages: list[Any] | None, timeout_s: float | None) -> Generation | GenerationStream:
    """The generation of one chat call (a ``generation.stream`` when ``stream``), with the request
    parameters ``kwargs`` give and ``source`` (the client method) as attributes."""
    make = generation_stream if stream else generation
    return make(model=model, provider=provider, operation="chat", messages=messages, timeout_s=timeout_s,
                attributes=request_attributes(kwargs, source))


def open_stream(opener: Opener, kwargs: dict[str, Any]) -> GenerationStream:
    """The ``GenerationStream`` of a ``stream=True`` call."""
    stream = opener(kwargs, True)
    assert isinstance(stream, GenerationStream)
    return stream


def _messages(kwargs: dict[str, Any]) -> list[Any] | None:
    return message_list(kwargs.get("messages"))


def client_opener(client: Any, provider: str, timeout_s: float | None, source: str,
                  messages: Callable[[dict[str, Any]], list[Any] | None] = _messages) -> Opener:
    """The opener of an SDK client's calls (OpenAI's, Anthropic's): the call's ``model``,
    ``messages(kwargs)`` (default: its ``messages``), and the deadline ``timeout_s``, or the call's
    or the client's ``timeout`` and the client's ``max_retries``, give."""
    def open_call(kwargs: dict[str, Any], stream: bool) -> Generation | GenerationStream:
        timeout = resolve_timeout(timeout_s, kwargs.get("timeout"), getattr(client, "timeout", None),
                                  getattr(client, "max_retries", 0))
        return open_chat(kwargs, stream, source=source, model=str(kwargs.get("model") or "unknown"),
                         provider=provider, messages=messages(kwargs), timeout_s=timeout)

    return open_call


def _as_called(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    return args, kwargs


def instrument_create(owner: object, name: str, opener: Opener, report: Report,
                      chunks: Callable[[], Accumulator]) -> None:
    """Patch ``owner.name``, a client's ``create`` (sync or async), to record its calls."""
    record = recorded_async_create if is_async(getattr(owner, name)) else recorded_create
    patch(owner, name, lambda original: record(original, opener, report, chunks))


def recorded_create(original: Callable[..., Any], opener: Opener, report: Report,
                    chunks: Callable[[], Accumulator], keywords: Keywords = _as_called) -> Callable[..., Any]:
    """A client's synchronous ``create`` recorded as one generation per call: ``report(gen,
    response)`` reads a whole response; a ``stream=True`` call's chunks go through ``chunks()``.
    ``keywords(args, kwargs)`` first turns a call's positional arguments into keywords (default:
    they stay as they are)."""
    def create(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = keywords(args, kwargs)
        if kwargs.get("stream") is True:
            with open_stream(opener, kwargs) as stream:
                return record_stream(stream, original(*args, **kwargs), chunks())
        with opener(kwargs, False) as gen:
            response = original(*args, **kwargs)
            quietly(report, gen, response)
            return response

    return create


def recorded_async_create(original: Callable[..., Any], opener: Opener, report: Report,
                          chunks: Callable[[], Accumulator], keywords: Keywords = _as_called) -> Callable[..., Any]:
    """``recorded_create`` for an async client."""
    async def create(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = keywords(args, kwargs)
        if kwargs.get("stream") is True:
            with open_stream(opener, kwargs) as stream:
                return record_async_stream(stream, await original(*args, **kwargs), chunks())
        with opener(kwargs, False) as gen:
            response = await original(*args, **kwargs)
            quietly(report, gen, response)
            return response

    return create
