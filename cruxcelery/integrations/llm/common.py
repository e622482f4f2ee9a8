"""What the LLM client integrations (``openai``, ``anthropic``, ``litellm``) share: patching a
method in place (idempotent, reversible), reading a call's keyword arguments, the deadline a call's
timeout gives, and recording a stream the client returned.

A recorded stream is the ``StreamWrapper`` of ``cruxcelery.agents.generation`` around an
``Observed`` view of the client's stream: every chunk goes to an accumulator, which reports what
the response said (``gen.finish``, ``gen.tool_requested``) before the end of the stream reaches
the generation; ``close()`` closes the client's stream (its HTTP response) and ends the generation
``closed``. The client's own helpers that close the HTTP response directly (OpenAI's
``chat.completions.stream()`` does) end it too. Imports no client library."""

from __future__ import annotations

import functools
import inspect
import json
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Protocol, TypeVar

from cruxcelery.agents.generation import GenerationStream
from cruxcelery.agents.recording import BestEffort
from cruxcelery.agents.streams import AsyncStreamWrapper, StreamWrapper

__all__ = ["Accumulator", "AsyncObserved", "Observed", "ToolCalls", "given", "is_async", "is_patched", "message_list",
           "number", "parse_arguments", "patch", "plain", "quietly", "record_async_stream", "record_stream",
           "request_attributes", "resolve_timeout", "unpatch"]

log = logging.getLogger("cruxcelery.integrations")
F = TypeVar("F", bound=Callable[..., Any])
_MARK = "__crux_original__"
_REQUEST_PARAMS = ("temperature", "max_tokens", "max_completion_tokens", "top_p", "top_k", "seed",
                   "frequency_penalty", "presence_penalty", "n")


quietly = BestEffort(log, "cruxcelery: recording an LLM call failed; the call goes on")
"""Run a recording step; log and swallow its failure (an integration never breaks a call)."""


# -- patching ------------------------------------------------------------------------------------
def patch(owner: object, name: str, make: Callable[[Callable[..., Any]], F]) -> bool:
    """Replace ``owner.name`` with ``make(original)``; a second patch is a no-op (returns False)."""
    original = getattr(owner, name)
    if is_patched(original):
        return False
    wrapper = functools.wraps(original)(make(original))
    setattr(wrapper, _MARK, original)
    setattr(owner, name, wrapper)
    return True


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` is a coroutine function under its decorators (the clients' ``required_args``
    wrappers hide it)."""
    return inspect.iscoroutinefunction(inspect.unwrap(fn))


def is_patched(fn: object) -> bool:
    return getattr(fn, _MARK, None) is not None


def unpatch(owner: object, name: str) -> bool:
    original = getattr(getattr(owner, name, None), _MARK, None)
    if original is None:
        return False
    setattr(owner, name, original)
    return True


# -- arguments -------------------------------------------------------------------------------------
def given(value: Any) -> bool:
    """False for ``None`` and the clients' "not given" sentinels (``NOT_GIVEN``, ``omit``), which their
    own helpers pass for every unset parameter."""
    return value is not None and type(value).__name__ not in ("NotGiven", "Omit")


def message_list(value: Any) -> list[Any] | None:
    """A call's messages as a list, when they are one (a generator is left alone: reading it here
    would leave nothing for the client)."""
    return list(value) if given(value) and isinstance(value, list | tuple) else None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def request_attributes(kwargs: dict[str, Any], source: str) -> dict[str, Any]:
    """The request parameters a span records (``gen_ai.request.*`` on the OTel side)."""
    out: dict[str, Any] = {"source": source}
    for key in _REQUEST_PARAMS:
        value = kwargs.get(key)
        if given(value) and isinstance(value, str | int | float) and not isinstance(value, bool):
            out["max_tokens" if key == "max_completion_tokens" else key] = value
    if kwargs.get("stream") is True:
        out["stream"] = True
    tools = kwargs.get("tools")
    if given(tools) and isinstance(tools, list | tuple):
        out["toolsOffered"] = len(tools)
    return out


def _seconds(timeout: Any) -> float | None:
    """A number of seconds, or an ``httpx.Timeout``'s read timeout (the longest a stalled response
    is waited for)."""
    if not given(timeout):
        return None
    direct = number(timeout)
    if direct is not None:
        return direct
    return number(getattr(timeout, "read", None))


def resolve_timeout(explicit: float | None, call_timeout: Any, client_timeout: Any, retries: Any = 0) -> float | None:
    """The generation's deadline, in seconds from its start: ``explicit`` (``instrument_*(timeout_s=)``)
    when given, else the call's ``timeout=`` or the client's, times one plus the retries the client
    makes: by then the client has given up, unless a stream is still producing."""
    if explicit is not None:
        return explicit
    per_attempt = _seconds(call_timeout)
    if per_attempt is None:
        per_attempt = _seconds(client_timeout)
    if per_attempt is None or per_attempt <= 0:
        return None
    attempts = 1 + max(int(number(retries) or 0), 0)
    return per_attempt * attempts


def plain(value: Any) -> Any:
    """A response object (a pydantic model) as a dict without its unset fields; anything else as is."""
    dump = getattr(value, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else value


def parse_arguments(raw: Any) -> Any:
    """A tool call's arguments: the JSON the model wrote, parsed when it parses."""
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            return raw
    return raw


class ToolCalls:
    """Tool calls assembled from streamed fragments, in the order they started."""

    def __init__(self) -> None:
        self._calls: dict[Any, dict[str, Any]] = {}

    def add(self, key: Any, call_id: Any = None, name: Any = None, fragment: Any = None, whole: Any = None) -> None:
        call = self._calls.setdefault(key, {"id": None, "name": None, "parts": [], "whole": None})
        if isinstance(call_id, str) and call_id:
            call["id"] = call_id
        if isinstance(name, str) and name:
            call["name"] = name
        if isinstance(fragment, str) and fragment:
            call["parts"].append(fragment)
        if whole is not None:
            call["whole"] = whole

    def calls(self) -> list[tuple[str, str, Any]]:
        """``(call_id, name, arguments)`` of every call with an id and a name."""
        out = []
        for call in self._calls.values():
            if call["id"] and call["name"]:
                arguments = parse_arguments("".join(call["parts"])) if call["parts"] else call["whole"]
                out.append((call["id"], call["name"], {} if arguments is None else arguments))
        return out


# -- streams ---------------------------------------------------------------------------------------
class Accumulator(Protocol):
    def add(self, item: Any) -> None: ...

    def report(self, stream: GenerationStream, complete: bool) -> None:
        """Tell the generation what the response said; ``complete`` once the stream ran to its end."""


class _Hooked:
    """Shared by both views: the report (once), fetching an item, and the hook on the client's HTTP
    response."""

    _inner: Any
    _accumulator: Accumulator
    _stream: GenerationStream
    _stop: type[Exception]  # how the client's stream says it ended
    _reported = False
    in_next = False
    closing = False
    _closer: weakref.WeakMethod[Callable[[], Any]] | None = None

    def _report(self, complete: bool) -> None:
        if not self._reported:
            self._reported = True
            quietly(self._accumulator.report, self._stream, complete)

    def _observe(self, item: Any) -> None:
        quietly(self._accumulator.add, item)

    def _fetching(self) -> _Fetching:
        return _Fetching(self)

    def _hook_response(self, method: str) -> None:
        """The client's helpers may close the HTTP response rather than the stream (OpenAI's
        ``ChatCompletionStream.close``): that is the consumer closing the stream too. The hook and
        the view hold each other weakly, so a dropped stream is freed (and ended) at once."""
        response = getattr(self._inner, "response", None)
        original = getattr(response, method, None)
        if response is None or not callable(original):
            return
        ref = weakref.ref(self)

        def external(view: _Hooked | None) -> Callable[[], Any] | None:
            if view is None or view.in_next or view.closing or view.on_external_close is None:
                return None
            return view.on_external_close

        if method == "aclose":
            async def hook_async() -> Any:
                closer = external(ref())
                return await (closer() if closer is not None else original())
            quietly(setattr, response, method, hook_async)
        else:
            def hook() -> Any:
                closer = external(ref())
                return closer() if closer is not None else original()
            quietly(setattr, response, method, hook)

    @property
    def on_external_close(self) -> Callable[[], Any] | None:
        """The wrapper's close (held weakly: the wrapper holds this view)."""
        return self._closer() if self._closer is not None else None

    def closes_with(self, close: Callable[[], Any]) -> None:
        self._closer = weakref.WeakMethod(close)

    def __getattr__(self, name: str) -> Any:
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)


class _Fetching:
    """``with view._fetching():`` around fetching one item of the client's stream, ``in_next``
    meanwhile: its end reports the response complete, any other exception reports it incomplete;
    both propagate. Made for each item, so the view holds no reference to it."""

    __slots__ = ("_view",)

    def __init__(self, view: _Hooked) -> None:
        self._view = view

    def __enter__(self) -> None:
        self._view.in_next = True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if exc is not None:
                self._view._report(isinstance(exc, self._view._stop))
        finally:
            self._view.in_next = False


class Observed(_Hooked, Iterator[Any]):
    """The client's stream as ``StreamWrapper`` sees it: chunks pass through to the accumulator;
    ``close`` closes the client's stream."""

    _stop = StopIteration
    iteration = "__iter__"  # what a client's stream of this kind has

    def __init__(self, inner: Any, accumulator: Accumulator, stream: GenerationStream) -> None:
        self._inner, self._accumulator, self._stream = inner, accumulator, stream
        self._iterator = iter(inner)
        self._hook_response("close")

    def __iter__(self) -> Observed:
        return self

    def wrapped(self) -> StreamWrapper[Any]:
        """This view under the generation's wrapper, which the consumer closing the client's
        response closes too."""
        wrapper = self._stream.wrap(self)
        self.closes_with(wrapper.close)
        return wrapper

    def __next__(self) -> Any:
        with self._fetching():
            item = next(self._iterator)
        self._observe(item)
        return item

    def close(self) -> None:
        self.closing = True
        closer = getattr(self._inner, "close", None)
        if callable(closer):
            closer()


class AsyncObserved(_Hooked, AsyncIterator[Any]):
    """The async twin of ``Observed``: ``aclose`` (the wrapper's) closes the client's stream;
    ``close`` (what the clients' helpers call on the stream they were given) closes the wrapper."""

    _stop = StopAsyncIteration
    iteration = "__aiter__"

    def __init__(self, inner: Any, accumulator: Accumulator, stream: GenerationStream) -> None:
        self._inner, self._accumulator, self._stream = inner, accumulator, stream
        self._iterator = inner.__aiter__()
        self._hook_response("aclose")

    def __aiter__(self) -> AsyncObserved:
        return self

    def wrapped(self) -> AsyncStreamWrapper[Any]:
        wrapper = self._stream.wrap_async(self)
        self.closes_with(wrapper.aclose)
        return wrapper

    async def __anext__(self) -> Any:
        with self._fetching():
            item = await self._iterator.__anext__()
        self._observe(item)
        return item

    async def aclose(self) -> None:
        self.closing = True
        closer = getattr(self._inner, "close", None) or getattr(self._inner, "aclose", None)
        if callable(closer):
            result = closer()
            if isinstance(result, Awaitable):
                await result

    async def close(self) -> None:
        if self.on_external_close is not None:
            await self.on_external_close()
        else:
            await self.aclose()


def record_stream(stream: GenerationStream, inner: Any, accumulator: Accumulator) -> Any:
    """``inner`` (a client's stream) recorded on ``stream``; ``inner`` itself, and the generation
    ended, when nothing records or ``inner`` is not iterable (a raw-response object)."""
    return _record(stream, inner, accumulator, Observed)


def record_async_stream(stream: GenerationStream, inner: Any, accumulator: Accumulator) -> Any:
    """``record_stream`` for an async client's stream."""
    return _record(stream, inner, accumulator, AsyncObserved)


def _record(stream: GenerationStream, inner: Any, accumulator: Accumulator,
            view: type[Observed] | type[AsyncObserved]) -> Any:
    if not stream.recording or not hasattr(inner, view.iteration):
        stream.end()
        return inner
    return view(inner, accumulator, stream).wrapped()
