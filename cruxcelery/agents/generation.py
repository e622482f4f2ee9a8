"""Generations: one model call recorded as a ``generation.call`` span (a ``with`` block) or a
``generation.stream`` span closed from the real end of its stream.

::

    with ctx.crux.generation(model="gpt-4o", provider="openai", messages=messages) as gen:
        response = client.chat.completions.create(...)
        for call in response.choices[0].message.tool_calls or []:
            gen.tool_requested(call.id, call.function.name, call.function.arguments)
        gen.finish(response_model=response.model, finish_reasons=["tool_calls"],
                   input_tokens=response.usage.prompt_tokens, output_tokens=response.usage.completion_tokens)

    stream = ctx.crux.generation_stream(model="gpt-4o", provider="openai", messages=messages)
    for chunk in stream.wrap(client.chat.completions.create(..., stream=True)):
        ...

Records: ``span:start`` with ``model`` / ``provider`` (and ``deadlineAt`` from ``timeout_s``, so
devtools marks a stalled call ``incomplete``), a ``messages`` artifact, ``tool.requested`` and
``generation.step`` events, ``usage.observed`` and an ``output`` artifact at ``finish``, then
``span:end`` with ``metrics`` (inputTokens, outputTokens, totalTokens, costUsd) and the response
model and finish reasons. Content only with ``CRUX_RECORD_CONTENT=true`` (see ``content``). The
OTel twin is ``{operation} {model}`` with the GenAI ``gen_ai.*`` attributes.

The module-level ``generation`` / ``generation_stream`` record when a Crux context is active and
are a recording-free pass-through (the same objects, doing nothing) when none is: client
integrations call them unconditionally."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterable, Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeVar

from opentelemetry.trace import SpanKind

from cruxcelery.agents import content, ledger
from cruxcelery.agents.recording import end_span, open_span, record_content, safely
from cruxcelery.agents.streams import AsyncStreamWrapper, StreamEnd, StreamWrapper
from cruxcelery.core import context
from cruxcelery.telemetry import genai
from cruxcelery.telemetry.preview import json_safe
from cruxcelery.telemetry.spans import CruxSpan

__all__ = ["Generation", "GenerationStream", "generation", "generation_stream"]

T = TypeVar("T")
CALL = "generation.call"
STREAM = "generation.stream"


class _Call:
    """One generation span and what ``finish`` said about it (shared by both forms)."""

    def __init__(self, ctx: context.ActiveContext | None, primitive: str, model: str, provider: str,
                 operation: str, messages: Any, timeout_s: float | None, attributes: dict[str, Any] | None,
                 name: str | None) -> None:
        self.ctx = ctx if ctx is not None and ctx.runtime.recorder.enabled else None
        self.primitive, self.model, self.provider, self.operation = primitive, model, provider, operation
        self.messages, self.timeout_s, self.attributes, self.name = messages, timeout_s, attributes, name
        self.span: CruxSpan | None = None
        self.content = record_content(self.ctx)
        self.finished: dict[str, Any] = {}
        self.requested = 0
        self._lock = threading.Lock()

    def open(self) -> None:
        if self.ctx is not None and self.span is None:
            self.span = safely(self._open, self.ctx)

    def _open(self, ctx: context.ActiveContext) -> CruxSpan:
        attrs: dict[str, Any] = {"operation": self.operation}
        if self.timeout_s is not None:
            attrs["timeoutMs"] = round(self.timeout_s * 1000)
        if self.messages is not None:
            attrs.update(messageCount=content.count(self.messages), roles=content.roles(self.messages))
        attrs.update(self.attributes or {})
        otel_extra = genai.inference_attributes(self.operation, self.provider, self.model, self.attributes)
        if self.content and self.messages is not None:
            otel_extra[genai.INPUT_MESSAGES] = genai.as_json(json_safe(self.messages))
        span = open_span(
            ctx, self.name or genai.inference_name(self.operation, self.model), self.primitive, attributes=attrs,
            fields={"model": self.model, "provider": self.provider}, kind=SpanKind.CLIENT,
            otel_name=genai.inference_name(self.operation, self.model), otel_extra=otel_extra,
            deadline_at=time.time() + self.timeout_s if self.timeout_s is not None else None,
        )
        if self.messages is not None:
            span.artifact("messages", content.messages_preview(self.messages, self.content))
        return span

    def tool_requested(self, call_id: str, name: str, arguments: Any = None) -> None:
        if self.span is None or self.ctx is None:
            return
        with self._lock:
            self.requested += 1
        args = arguments if self.content else content.shape(arguments)
        safely(self.span.event, "tool.requested", {"toolCallId": call_id, "toolName": name, "arguments": args})
        safely(ledger.requested, self.ctx, self.span.span_id, str(call_id), str(name))

    def finish(self, response_model: str | None, finish_reasons: list[str] | None, input_tokens: int | None,
               output_tokens: int | None, cost_usd: float | None, output: Any, response_id: str | None) -> None:
        given = {"response_model": response_model, "finish_reasons": finish_reasons, "input_tokens": input_tokens,
                 "output_tokens": output_tokens, "cost_usd": cost_usd, "response_id": response_id}
        with self._lock:
            self.finished.update({k: v for k, v in given.items() if v is not None})
        span = self.span
        if span is None:
            return
        if input_tokens is not None or output_tokens is not None:
            safely(span.event, "usage.observed", _usage(input_tokens, output_tokens, cost_usd))
        if output is not None:
            safely(span.artifact, "output", content.output_preview(output, self.content))
            if self.content:
                safely(_set_otel, span, {genai.OUTPUT_MESSAGES: genai.as_json(json_safe(output))})

    def end(self, status: str, error: BaseException | None, extra: dict[str, Any] | None = None) -> None:
        span = self.span
        if span is None or span.ended:
            return
        done = dict(self.finished)
        attributes: dict[str, Any] = {k: v for k, v in {
            "responseModel": done.get("response_model"), "responseId": done.get("response_id"),
            "finishReasons": done.get("finish_reasons"),
            "finishReason": (done.get("finish_reasons") or [None])[0],
            "toolCallsRequested": self.requested or None,
        }.items() if v is not None}
        attributes.update(extra or {})
        otel_extra = genai.response_attributes(
            response_model=done.get("response_model"), response_id=done.get("response_id"),
            finish_reasons=done.get("finish_reasons"), input_tokens=done.get("input_tokens"),
            output_tokens=done.get("output_tokens"))
        if error is not None:
            otel_extra[genai.ERROR_TYPE] = type(error).__qualname__
        safely(end_span, span, status, error, attributes=attributes, otel_extra=otel_extra,
               metrics=_usage(done.get("input_tokens"), done.get("output_tokens"), done.get("cost_usd")))


def _usage(input_tokens: int | None, output_tokens: int | None, cost_usd: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if input_tokens is not None:
        out["inputTokens"] = int(input_tokens)
    if output_tokens is not None:
        out["outputTokens"] = int(output_tokens)
    if input_tokens is not None and output_tokens is not None:
        out["totalTokens"] = int(input_tokens) + int(output_tokens)
    if cost_usd is not None:
        out["costUsd"] = float(cost_usd)
    return out


def _set_otel(span: CruxSpan, attributes: dict[str, Any]) -> None:
    span.otel_span.set_attributes(attributes)


class _Recording:
    """``tool_requested`` / ``finish``, the span's identity, and making the span current, shared
    by both forms."""

    _call: _Call
    _reset: Any = None

    def _make_current(self) -> None:
        """The span is the context's current span (the parent of what starts) until ``_restore``."""
        span, ctx = self._call.span, self._call.ctx
        if span is not None and ctx is not None:
            self._reset = safely(context.enter, replace(ctx, span=span, parent=span.ref))

    def _restore(self) -> None:
        if self._reset is not None:
            safely(self._reset)
            self._reset = None

    @property
    def recording(self) -> bool:
        """Whether this generation records anything (a Crux context was active)."""
        return self._call.span is not None

    @property
    def span_id(self) -> str | None:
        return self._call.span.span_id if self._call.span is not None else None

    def tool_requested(self, call_id: str, name: str, arguments: Any = None) -> None:
        """A tool call the model asked for. Recorded as ``executed: false`` unless a tool runs
        with that ``call_id`` (``tool(..., call_id=)`` / ``run_tool(..., call_id=)``) in the
        same action execution."""
        self._call.tool_requested(call_id, name, arguments)

    def finish(self, response_model: str | None = None, finish_reasons: list[str] | None = None,
               input_tokens: int | None = None, output_tokens: int | None = None,
               cost_usd: float | None = None, output: Any = None, response_id: str | None = None) -> None:
        """What the response said. May be called more than once (later values win); records
        ``usage.observed`` when tokens are given and an ``output`` artifact when ``output`` is."""
        self._call.finish(response_model, finish_reasons, input_tokens, output_tokens, cost_usd, output,
                          response_id)


class Generation(_Recording):
    """``with generation(...) as gen``: a ``generation.call`` span for the block, which is the
    current span inside it (OTel client spans of the HTTP call nest under it). An exception ends
    it ``error`` with evidence and propagates."""

    def __init__(self, call: _Call) -> None:
        self._call = call

    def __enter__(self) -> Generation:
        self._call.open()
        self._make_current()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._restore()
        if exc is None:
            self._call.end("ok", None)
        else:
            status, error = context.status_for(exc)
            self._call.end(status, error)

    async def __aenter__(self) -> Generation:
        return self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.__exit__(exc_type, exc, tb)


class GenerationStream(_Recording):
    """A ``generation.stream`` span, open from creation to the real end of the stream that
    ``wrap`` / ``wrap_async`` pass through: exhausted (``ok``), raising (``error`` with evidence),
    or closed or dropped by its consumer (``ok`` when ``finish`` was called, else ``cancelled``;
    ``streamEnd`` says which). ``step`` records a ``generation.step`` event."""

    def __init__(self, call: _Call) -> None:
        self._call = call
        self._call.open()
        self._wrapped = False
        self._steps = 0
        self._chunks = 0
        self._first_chunk_at: float | None = None

    def wrap(self, source: Iterable[T]) -> StreamWrapper[T]:
        self._wrapped = True
        return StreamWrapper(source, self if self._call.span is not None else None)

    def wrap_async(self, source: AsyncIterable[T]) -> AsyncStreamWrapper[T]:
        self._wrapped = True
        return AsyncStreamWrapper(source, self if self._call.span is not None else None)

    def step(self, **attributes: Any) -> None:
        """One step of the stream (a turn, a tool-call step): a ``generation.step`` event."""
        span = self._call.span
        if span is None:
            return
        self._steps += 1
        safely(span.event, "generation.step", {"index": self._steps - 1, **attributes})

    def end(self, error: BaseException | None = None) -> None:
        """End the stream now (when it is never wrapped, or failed before it started)."""
        self.on_end("error" if error is not None else "exhausted", error)

    # -- the wrappers call these ----------------------------------------------------------------
    def on_chunk(self) -> None:
        self._chunks += 1
        if self._first_chunk_at is None:
            self._first_chunk_at = time.time()

    def on_end(self, how: StreamEnd, error: BaseException | None) -> None:
        span = self._call.span
        extra: dict[str, Any] = {"streamEnd": how, "chunkCount": self._chunks}
        if self._steps:
            extra["stepCount"] = self._steps
        if self._first_chunk_at is not None and span is not None:
            extra["timeToFirstChunkMs"] = round((self._first_chunk_at - span.started_at) * 1000.0, 3)
        if error is not None:
            status, failure = context.status_for(error)
        elif how in ("closed", "abandoned") and not self._call.finished:
            status, failure = "cancelled", None
        else:
            status, failure = "ok", None
        self._call.end(status, failure, extra)

    # -- optional: make the span current while the request is made -------------------------------
    def __enter__(self) -> GenerationStream:
        self._make_current()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._restore()
        if exc is not None:
            self.on_end("error", exc)
        elif not self._wrapped:
            self.on_end("exhausted", None)


def generation(model: str, provider: str, operation: str = "chat", messages: Any = None,
               timeout_s: float | None = None, attributes: dict[str, Any] | None = None, *,
               name: str | None = None) -> Generation:
    """A ``generation.call`` span for a ``with`` block under the active Crux context (a no-op
    pass-through without one). ``name`` overrides the record's label (default
    ``{operation} {model}``, which is always the OTel span's name)."""
    return Generation(_Call(context.current(), CALL, model, provider, operation, messages, timeout_s,
                            attributes, name))


def generation_stream(model: str, provider: str, operation: str = "chat", messages: Any = None,
                      timeout_s: float | None = None, attributes: dict[str, Any] | None = None, *,
                      name: str | None = None) -> GenerationStream:
    """A ``generation.stream`` span, open now and closed from the end of the stream ``wrap``
    passes through (a no-op pass-through without an active Crux context)."""
    return GenerationStream(_Call(context.current(), STREAM, model, provider, operation, messages, timeout_s,
                                  attributes, name))
