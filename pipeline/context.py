"""What a stage gets besides its input and params: progress, warnings, piece cache, run-time knobs.

None of this is part of a cache key: toggling a progress callback or the batch size never
recomputes anything.
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import threading
import time
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .cache import Cache, default_models_dir
from .config import DEVICES, RUNTIME_KEYS, check_setting, coerce_setting
from .errors import Cancelled, ConfigError
from .events import Event

T = TypeVar("T")

# "tcp://host:8786", "tls://...", "inproc://...", or "host:port" (Dask's default protocol is tcp)
SCHEDULER_ADDRESS = re.compile(r"(?:(?:tcp|tls|inproc|ucx|ws|wss)://[^\s/]+|[^\s/:]+:\d+)/?")


class Secret:
    """A value that never shows itself: masked in repr/str, and it refuses to be pickled,
    so it cannot end up in a cache file. ``reveal()`` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = str(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:  # dataclasses.asdict deep-copies fields
        return self

    def __reduce__(self):
        raise TypeError("a Secret is never pickled (it would end up in a file)")


@dataclass(frozen=True)
class Runtime:
    """Run-time settings that do not change results."""

    device: str = "auto"  # auto | cpu | cuda (--device, or embed.device in files and --set)
    batch_size: int = 32  # sentence-transformers default
    chunk_size: int = 1000  # texts per cached embedding chunk
    heartbeat_s: float = 2.0  # a progress event at least this often while a stage runs
    embedder: Any = None  # an Embedder object to use instead of loading embed.model
    # where built embedding models (ONNX, model2vec) live: one folder for every cache and process
    # ("" = $CLUSTERLAB_MODELS_DIR, else models/ in the user's cache folder)
    models_dir: str | Path = ""
    # a Dask scheduler (e.g. tcp://host:8786) to embed on; "" = $DASK_SCHEDULER_ADDRESS, else here
    scheduler: str = ""
    # label.method = "llm": the key (else $OPENAI_API_KEY), kept in a Secret; and how to call
    llm_api_key: Secret | str | None = field(default=None, repr=False)
    # the one base URL the key may go to ("" = whichever is set: the command line); any other URL
    # gets no key. The app binds the operator's key to the operator's URL
    llm_key_url: str = ""
    llm_env_key: bool = True  # else no fallback to $OPENAI_API_KEY (the app decides per URL)
    llm_guard: Any = None  # a netguard.UrlGuard for a URL a web visitor typed; None = no limits
    llm_concurrency: int = 4  # clusters labeled at the same time
    llm_timeout_s: float = 60.0  # per attempt
    llm_max_retries: int = 2  # the SDK's retries (timeouts, connection errors, 408/409/429/5xx)

    def __post_init__(self):
        key = self.llm_api_key
        if key is not None and not isinstance(key, Secret):
            # an empty password field means "no key", not an empty key
            object.__setattr__(self, "llm_api_key", Secret(str(key).strip()) if str(key).strip() else None)
        check_setting("embed", "device", self.device, self.device in DEVICES, " or ".join(map(repr, DEVICES)))
        object.__setattr__(self, "scheduler", str(self.scheduler).strip())
        check_setting(
            "embed",
            "scheduler",
            self.scheduler,
            not self.scheduler or bool(SCHEDULER_ADDRESS.fullmatch(self.scheduler)),
            "empty (embed on this machine) or a Dask scheduler address such as tcp://host:8786",
        )
        check_setting(
            "label.llm", "concurrency", self.llm_concurrency, 1 <= self.llm_concurrency <= 64, "1..64"
        )
        check_setting(
            "label.llm",
            "timeout_s",
            self.llm_timeout_s,
            0 < self.llm_timeout_s <= 3600,
            "a number of seconds in (0, 3600]",
        )
        check_setting(
            "label.llm", "max_retries", self.llm_max_retries, 0 <= self.llm_max_retries <= 10, "0..10"
        )

    @property
    def models_folder(self) -> Path:
        """The folder of built embedding models: ``models_dir``, else ``cache.default_models_dir()``."""
        return Path(self.models_dir).expanduser() if str(self.models_dir) else default_models_dir()

    def with_values(self, values: dict[str, Any]) -> Runtime:
        """A copy with run-time keys applied, e.g. ``{"label.llm.concurrency": "8"}`` (strings parsed)."""
        hints = typing.get_type_hints(Runtime)
        changes = {}
        for dotted, value in values.items():
            if dotted not in RUNTIME_KEYS:
                raise ConfigError(
                    f"{dotted!r} is not a run-time setting; expected one of {', '.join(RUNTIME_KEYS)}",
                    hint="put pipeline settings in PipelineConfig",
                )
            name = RUNTIME_KEYS[dotted]
            changes[name] = coerce_setting(dotted, value, hints[name])
        return dataclasses.replace(self, **changes)


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
    # seconds of named parts of the stage's work (e.g. "loading the model"): in the manifest
    steps: dict[str, float] = field(default_factory=dict)

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

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a named part of the stage (kept in ``steps`` when it finishes without an error)."""
        began = time.monotonic()
        yield
        self.steps[name] = self.steps.get(name, 0.0) + time.monotonic() - began

    def piece(self, kind: str, key: str, compute: Callable[[], T], remember: bool = False) -> tuple[T, bool]:
        """Cache one piece of a stage's work on its own (e.g. an embedding chunk); ``remember``:
        kept in this process as well (``Cache.lookup``), for a piece every rerun reads again."""
        return self.cache.get_or_compute(kind, key, compute, on_corrupt=self.warn, remember=remember)

    def cached_piece(self, kind: str, key: str) -> Any:
        """A piece that is already cached, else ``cache.MISSING`` (nothing is computed)."""
        return self.cache.lookup(kind, key, on_corrupt=self.warn)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def detached(stage: str, **kwargs: Any) -> StageContext:
    return StageContext(stage=stage, **kwargs)
