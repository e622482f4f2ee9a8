"""Iterator wrappers that end a streamed generation from the real end of its stream: the source
is exhausted, raises, or the consumer closes (or drops) the wrapper. They pass every chunk
through untouched and forward any other attribute to the source (``.response``, ``.close()``,
``get_final_message()``...)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, Literal, Protocol, TypeVar

T = TypeVar("T")
StreamEnd = Literal["exhausted", "error", "closed", "abandoned"]


class StreamOwner(Protocol):
    def on_chunk(self) -> None: ...

    def on_end(self, how: StreamEnd, error: BaseException | None) -> None: ...


class _Ending:
    """Ends the owner once, whichever path gets there first. ``with ending:`` around fetching one
    item: an item counts as a chunk, ``stop`` (the source's end: ``StopIteration`` or
    ``StopAsyncIteration``) ends it ``exhausted``, and any other exception ends it ``error``; both
    propagate."""

    def __init__(self, owner: StreamOwner | None, stop: type[Exception]) -> None:
        self._owner = owner
        self._stop = stop
        self._lock = threading.Lock()
        self.done = owner is None

    def chunk(self) -> None:
        if self._owner is not None and not self.done:
            self._owner.on_chunk()

    def end(self, how: StreamEnd, error: BaseException | None = None) -> None:
        with self._lock:
            if self.done:
                return
            self.done = True
        if self._owner is not None:
            self._owner.on_end(how, error)

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.chunk()
        elif isinstance(exc, self._stop):
            self.end("exhausted")
        else:
            self.end("error", exc)


class StreamWrapper(Iterator[T]):
    """``for chunk in stream.wrap(source)``: a pass-through iterator over ``source``."""

    def __init__(self, source: Iterable[T], owner: StreamOwner | None) -> None:
        self._source = source
        self._iterator = iter(source)
        self._ending = _Ending(owner, StopIteration)

    def __iter__(self) -> StreamWrapper[T]:
        return self

    def __next__(self) -> T:
        with self._ending:
            return next(self._iterator)

    def close(self) -> None:
        """Stop consuming: closes the source when it can be closed, and ends the generation."""
        try:
            for target in (self._iterator, self._source):
                closer = getattr(target, "close", None)
                if callable(closer):
                    closer()
                    break
        finally:
            self._ending.end("closed")

    def __enter__(self) -> StreamWrapper[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown: nothing left to record with
            self._ending.end("abandoned")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._source, name)


class AsyncStreamWrapper(AsyncIterator[T]):
    """``async for chunk in stream.wrap_async(source)``: the async twin of ``StreamWrapper``."""

    def __init__(self, source: AsyncIterable[T], owner: StreamOwner | None) -> None:
        self._source = source
        self._iterator = source.__aiter__()
        self._ending = _Ending(owner, StopAsyncIteration)

    def __aiter__(self) -> AsyncStreamWrapper[T]:
        return self

    async def __anext__(self) -> T:
        with self._ending:
            return await self._iterator.__anext__()

    async def aclose(self) -> None:
        """Stop consuming: closes the source when it can be closed, and ends the generation."""
        try:
            for target in (self._iterator, self._source):
                closer = getattr(target, "aclose", None) or getattr(target, "close", None)
                if callable(closer):
                    result = closer()
                    if hasattr(result, "__await__"):
                        await result
                    break
        finally:
            self._ending.end("closed")

    async def __aenter__(self) -> AsyncStreamWrapper[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._ending.end("abandoned")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._source, name)
