"""A least-recently-used cache bounded by entry count and by bytes (the caller states each entry's
size). An entry larger than the whole byte bound is not kept at all."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["ByteLru"]

V = TypeVar("V")


class ByteLru(Generic[V]):
    """Not thread-safe: the caller holds its own lock."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[V, int]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> V | None:
        """The entry (now the most recently used), or ``None``."""
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return found[0]

    def pop(self, key: str) -> V | None:
        found = self._items.pop(key, None)
        if found is None:
            return None
        self.bytes -= found[1]
        return found[0]

    def put(self, key: str, value: V, size: int) -> None:
        self.pop(key)
        if size > self.max_bytes:
            return
        self._items[key] = (value, size)
        self.bytes += size
        while len(self._items) > self.max_items or self.bytes > self.max_bytes:
            _key, (_value, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped
