"""``Recent``: the last few values a process made or read, by key (a small thread-safe LRU).

The app's server answers many browser sessions from one process, and a rerun asks again for
what the last one had: a parsed table (``store``), a stage's output (``cache``), a loaded model
(``embedders.MODELS``), a codebook's or a query's vectors. Each keeps its last few here. Values
are shared by every caller, so they are never changed in place (arrays are made read-only where
they are built)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
_MISSING = object()


class Recent(Generic[V]):
    """The last ``keep`` values by key; using one makes it the newest."""

    def __init__(self, keep: int):
        self.keep = keep
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Hashable, default=None):
        """The value kept under ``key`` (now the newest), else ``default``."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: Hashable, value: V) -> V:
        with self._lock:
            return self._put_locked(key, value)

    def _put_locked(self, key: Hashable, value: V) -> V:
        """``put`` for a caller holding ``_lock``."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.keep:
            self._items.popitem(last=False)
        return value

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value kept under ``key``, else ``make()``'s, kept (not when it raises). ``make``
        runs outside the lock: two threads asking at once may both make it; one is kept."""
        value = self.peek(key, _MISSING)
        return self.put(key, make()) if value is _MISSING else value

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
