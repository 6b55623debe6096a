"""Structured progress events: the one channel the UI, the CLI and the tests read."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

Kind = Literal["started", "progress", "finished", "failed", "warning"]
KINDS: tuple[str, ...] = ("started", "progress", "finished", "failed", "warning")


@dataclass(frozen=True)
class Event:
    """One thing that happened in a run.

    ``fraction`` is the share of the stage done (0..1); ``elapsed_s`` the seconds since
    the stage started; ``cached`` is true when the stage loaded its result from cache.
    """

    stage: str
    kind: Kind
    fraction: float = 0.0
    elapsed_s: float = 0.0
    cached: bool = False
    message: str = ""

    def to_json(self) -> str:
        data = asdict(self)
        data["elapsed_s"] = round(self.elapsed_s, 3)
        data["fraction"] = round(self.fraction, 4)
        return json.dumps(data, ensure_ascii=False)


OnEvent = Callable[[Event], None]
