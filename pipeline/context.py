"""What a stage gets besides its input and params: progress, warnings, piece cache, run-time knobs.

None of this is part of a cache key: toggling a progress callback or the batch size never
recomputes anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .cache import Cache
from .errors import Cancelled
from .events import Event

T = TypeVar("T")


@dataclass(frozen=True)
class Runtime:
    """Run-time settings that do not change results."""

    device: str = "auto"  # auto | cpu | cuda
    batch_size: int = 32  # sentence-transformers default
    chunk_size: int = 1000  # texts per cached embedding chunk
    heartbeat_s: float = 2.0  # a progress event at least this often while a stage runs
    embedder: Any = None  # an Embedder object to use instead of loading embed.model


@dataclass
class StageContext:
    """Handed to each stage by the runner; a detached one (tests) caches and reports nothing."""

    stage: str
    runtime: Runtime = field(default_factory=Runtime)
    cache: Cache = field(default_factory=lambda: Cache(None))
    emit: Callable[[Event], None] = lambda event: None
    cancel: threading.Event = field(default_factory=threading.Event)
    warnings: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    fraction: float = 0.0

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(self.stage)

    def progress(self, fraction: float, message: str = "") -> None:
        """Report how much of the stage is done (0..1)."""
        self.check_cancelled()
        self.fraction = max(0.0, min(1.0, float(fraction)))
        self.emit(Event(self.stage, "progress", self.fraction, self.elapsed, False, message))

    def warn(self, message: str) -> None:
        """Something the user should know about; kept in the result and the manifest."""
        self.warnings.append(f"{self.stage}: {message}")
        self.emit(Event(self.stage, "warning", self.fraction, self.elapsed, False, message))

    def piece(self, kind: str, key: str, compute: Callable[[], T]) -> tuple[T, bool]:
        """Cache one piece of a stage's work on its own (e.g. an embedding chunk)."""
        return self.cache.get_or_compute(kind, key, compute, on_corrupt=self.warn)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def detached(stage: str, **kwargs: Any) -> StageContext:
    return StageContext(stage=stage, **kwargs)
