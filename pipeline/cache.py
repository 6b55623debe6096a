"""The on-disk cache: joblib.Memory entries addressed by chained keys.

A stage's key is ``sha256(stage name, VERSION, params, upstream keys)``, so large
arrays are hashed never: only short strings are. Pieces inside a stage (embedding
chunks) have keys of their own, so a killed run resumes inside the stage.

Stages whose output holds big arrays (``MMAP_KINDS``) load them memory-mapped and
read-only, the first run included (joblib reloads what it stored), so 1M x 384
embeddings need the page cache rather than the process's memory; nothing may write
into them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import joblib

log = logging.getLogger(__name__)
T = TypeVar("T")
MISSING: Any = object()  # what ``Cache.lookup`` returns for an entry that is not there
ENV_CACHE_DIR = "CLUSTERLAB_CACHE_DIR"
# Entry kinds whose arrays load as read-only np.memmap: embeddings (n x dim) and the
# projection (n x dim when reduce is off: the embeddings themselves)
MMAP_KINDS = frozenset({"embed", "reduce"})
SCRATCH = "scratch"  # the cache folder's room for stages' temporary files


def default_cache_dir() -> Path:
    """``$CLUSTERLAB_CACHE_DIR``, else the user's cache folder (e.g. ~/.cache/clusterlab)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("clusterlab", appauthor=False))


def chain_key(*parts: Any) -> str:
    """A stable hex key from small parts (strings, numbers, params dataclasses)."""

    def norm(part: Any) -> Any:
        if is_dataclass(part):
            return {"__type__": type(part).__name__, **asdict(part)}
        return part

    blob = json.dumps([norm(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def texts_digest(texts: Iterable[str]) -> str:
    """sha256 of a list of texts (order matters), for keys of pieces computed from them."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


def _entry_function(kind: str) -> Callable[..., Any]:
    def entry(key: str, compute: Callable[[], Any]) -> Any:
        return compute()

    # joblib files each function's entries under its name: one folder per kind.
    entry.__name__ = entry.__qualname__ = kind
    return entry


class Cache:
    """Keyed memo over joblib.Memory; ``location=None`` disables caching."""

    def __init__(self, location: str | Path | None):
        self.location = Path(location).expanduser() if location is not None else None
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
        where = str(self.location) if self.location is not None else None
        self._memory = joblib.Memory(where, verbose=0)
        # the same folders, read through memory maps (a joblib.Memory has one mmap_mode)
        self._mapped = joblib.Memory(where, mmap_mode="r", verbose=0)
        self._funcs: dict[str, Any] = {}

    def _func(self, kind: str):
        if kind not in self._funcs:
            memory = self._mapped if kind in MMAP_KINDS else self._memory
            self._funcs[kind] = memory.cache(_entry_function(kind), ignore=["compute"])
        return self._funcs[kind]

    def scratch_dir(self) -> Path | None:
        """Where a stage may put big temporary files: ``<cache>/scratch``, on the same disk as the
        cache (the system temp folder may be memory-backed); None when caching is off."""
        if self.location is None:
            return None
        folder = self.location / SCRATCH
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def enabled(self) -> bool:
        return self.location is not None

    def contains(self, kind: str, key: str) -> bool:
        if not self.enabled:
            return False
        try:
            return bool(self._func(kind).check_call_in_cache(key, None))
        except Exception:  # an unreadable folder counts as a miss
            log.warning("cache: could not check %s/%s", kind, key, exc_info=True)
            return False

    def get_or_compute(
        self,
        kind: str,
        key: str,
        compute: Callable[[], T],
        on_corrupt: Callable[[str], None] | None = None,
        keep: Callable[[T], bool] | None = None,
    ) -> tuple[T, bool]:
        """Return ``(value, loaded_from_cache)``; a corrupt entry is recomputed, not fatal.

        ``keep(value)`` false: the value is returned but not stored (e.g. an incomplete result
        that a re-run should complete rather than load).
        """
        if not self.enabled:
            return compute(), False
        value = self.lookup(kind, key, on_corrupt)
        if value is not MISSING:
            return value, True
        if keep is None:
            value, _metadata = self._func(kind).call(key, compute)  # joblib >= 1.4: (output, metadata)
            return value, False
        value = compute()
        if keep(value):
            # for MMAP_KINDS joblib hands back the stored copy, memory-mapped: the computed
            # arrays (and any temporary files behind them) can go at once
            value, _metadata = self._func(kind).call(key, lambda: value)
        return value, False

    def lookup(self, kind: str, key: str, on_corrupt: Callable[[str], None] | None = None) -> Any:
        """The cached value, or ``MISSING``; an unreadable entry is dropped (and reported) as a miss."""
        if not self.contains(kind, key):
            return MISSING
        func = self._func(kind)
        try:
            return func.call_and_shelve(key, None).get()
        except Exception as exc:
            message = f"cache entry {kind}/{key[:8]} could not be read ({type(exc).__name__}); recomputing"
            log.warning(message, exc_info=True)
            if on_corrupt is not None:
                on_corrupt(message)
            try:
                func.call_and_shelve(key, None).clear()
            except Exception:
                log.debug("cache: could not clear %s/%s", kind, key, exc_info=True)
            return MISSING

    def load(self, kind: str, key: str) -> Any:
        """Read an entry that ``contains`` reported; raises if it is missing or unreadable."""
        return self._func(kind).call_and_shelve(key, None).get()

    def clear(self, kind: str, key: str) -> None:
        if self.enabled and self.contains(kind, key):
            self._func(kind).call_and_shelve(key, None).clear()
