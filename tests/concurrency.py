"""Racing threads in tests: release ``n`` threads at once and collect what each returned."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def race(fn: Callable[[int], T], n: int = 20) -> list[T]:
    """Run ``fn(0)`` .. ``fn(n - 1)`` in ``n`` threads started together; their results, in order."""
    barrier = threading.Barrier(n)
    results: list[T | None] = [None] * n

    def run(index: int) -> None:
        barrier.wait()
        results[index] = fn(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results  # type: ignore[return-value]
