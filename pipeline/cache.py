"""The on-disk cache: joblib.Memory entries addressed by chained keys.

A stage's key is ``sha256(stage name, VERSION, params, upstream keys)``, so large
arrays are hashed never: only short strings are. Pieces inside a stage (embedding
chunks) have keys of their own, so a killed run resumes inside the stage.

Entries asked for with ``mmap=True`` (stages whose output holds big arrays: ``Stage.mmap``) load
their arrays memory-mapped and read-only, the first run included (joblib reloads what it stored),
so 1M x 384 embeddings need the page cache rather than the process's memory; nothing may write
into them.

A folder that cannot be written is a ``ConfigError`` before anything runs, except a populated
read-only cache: it is read (hits served), and what is missing is computed without being
saved (``Cache.notice`` says so). A write that fails (a full disk) raises, never half-stores.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import joblib
import numpy as np
from joblib import numpy_pickle
from joblib._store_backends import FileSystemStoreBackend

from .errors import ConfigError, StageError
from .recent import Recent

log = logging.getLogger(__name__)
T = TypeVar("T")
MISSING: Any = object()  # what ``Cache.lookup`` returns for an entry that is not there
ENV_CACHE_DIR = "CLUSTERLAB_CACHE_DIR"
ENV_MODELS_DIR = "CLUSTERLAB_MODELS_DIR"
SCRATCH = "scratch"  # the cache folder's room for stages' temporary files
MB = 2**20
WRITE_HINT = "choose a folder you can write to with --cache-dir, or set $" + ENV_CACHE_DIR
FULL_HINT = "free space, or use --cache-dir on another disk; the stages already cached are kept"
# stage outputs a process keeps (``Cache.lookup(remember=True)``): a few datasets' latest; a
# million-text corpus is a few hundred MB, the big arrays are memory-mapped files
RECENT_OUTPUTS: Recent[Any] = Recent(12)
# errors that say "this folder cannot be written", as opposed to "this disk is full"
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def default_cache_dir() -> Path:
    """``$CLUSTERLAB_CACHE_DIR``, else the user's cache folder (e.g. ~/.cache/clusterlab)."""
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("clusterlab", appauthor=False))


def default_models_dir() -> Path:
    """Where built embedding models live, shared by every cache, workspace and process:
    ``$CLUSTERLAB_MODELS_DIR``, else ``models`` in the user's cache folder (e.g.
    ~/.cache/clusterlab/models). Never inside a per-dataset cache, so a new dataset does not
    build the model again and a workspace's quota does not count it."""
    env = os.environ.get(ENV_MODELS_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("clusterlab", appauthor=False)) / "models"


def _megabytes(n: float) -> str:
    return f"{n / MB:,.1f}" if n < 10 * MB else f"{n / MB:,.0f}"


def disk_full_error(stage: str, folder: Path | None, needed: int | None = None) -> StageError:
    """The error for a full disk (ENOSPC) while ``stage`` writes into ``folder``: how much is free
    and, when the stage knows it, about how much it needed."""
    where = folder if folder is not None else Path(tempfile.gettempdir())
    amounts = []
    with contextlib.suppress(OSError):
        amounts.append(f"{_megabytes(shutil.disk_usage(where).free)} MB free")
    if needed:
        amounts.append(f"about {_megabytes(needed)} MB needed")
    what = "the cache" if folder is not None else "temporary files"
    shown = f" ({', '.join(amounts)})" if amounts else ""
    return StageError(stage, f"the disk holding {what} is full{shown}; the folder is {where}", hint=FULL_HINT)


def check_free_space(stage: str, folder: Path | None, needed: int) -> None:
    """Raise ``disk_full_error`` unless ``folder``'s disk has ``needed`` bytes free (best effort:
    a disk whose size cannot be read passes)."""
    where = folder if folder is not None else Path(tempfile.gettempdir())
    try:
        free = shutil.disk_usage(where).free
    except OSError:
        return
    if free < needed:
        raise disk_full_error(stage, folder, needed)


def cache_write_error(stage: str, exc: BaseException, location: Path | None) -> StageError | None:
    """A StageError for an OSError raised while ``stage`` wrote (its cache, scratch or models):
    a full disk, or a folder it may not write to; None for anything else."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno == errno.ENOSPC:
        return disk_full_error(stage, location)
    if exc.errno in _NOT_WRITABLE and location is not None and _inside(exc.filename, location):
        reason = (exc.strerror or type(exc).__name__).lower()
        return StageError(stage, f"cannot write to {location}: {reason}", hint=WRITE_HINT)
    return None


def _inside(filename: Any, folder: Path) -> bool:
    if not isinstance(filename, (str, os.PathLike)):
        return False
    try:
        return Path(filename).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError):
        return False


def unwritable_error(location: Path, exc: OSError) -> ConfigError:
    """The error for a cache folder that cannot be created or written."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        reason = "it (or a folder above it) is a file, not a folder"
    elif exc.errno in _NOT_WRITABLE:
        reason = (exc.strerror or "permission denied").lower()
    else:
        reason = f"the folder cannot be created there ({(exc.strerror or type(exc).__name__).lower()})"
    return ConfigError(f"cannot write to {location}: {reason}", hint=WRITE_HINT, stage="cache")


class _Store(FileSystemStoreBackend):
    """joblib's file store, except that a failed write raises (joblib only warns, and a full disk
    then leaves a half-written temporary file behind) and leaves nothing."""

    def dump_item(self, call_id, item, verbose=1):
        item_path = os.path.join(self.location, *call_id)
        self.create_location(item_path)
        filename = os.path.join(item_path, "output.pkl")
        temporary = f"{filename}.{uuid.uuid4().hex}.tmp"
        try:
            with open(temporary, "wb") as fh:
                numpy_pickle.dump(item, fh, compress=self.compress)
            os.replace(temporary, filename)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


joblib.register_store_backend("clusterlab", _Store)


def chain_key(*parts: Any) -> str:
    """A stable hex key from small parts (strings, numbers, params dataclasses)."""

    def norm(part: Any) -> Any:
        if is_dataclass(part):
            return {"__type__": type(part).__name__, **asdict(part)}
        return part

    blob = json.dumps([norm(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def array_digest(values: Any, dtype: Any = None) -> str:
    """sha256 of an array's values (as ``dtype`` when given), for keys of what is computed from it."""
    return hashlib.sha256(np.ascontiguousarray(values, dtype=dtype).tobytes()).hexdigest()


def texts_digest(texts: Iterable[str]) -> str:
    """sha256 of a list of texts (order matters), for keys of pieces computed from them."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    return digest.hexdigest()


# digests of arrays of texts, by the array object (held weakly; a corpus's texts are never changed
# in place): every run of a corpus keys its term counts and near-duplicate groups by its texts,
# and hashing them again cost 0.07 s of each slider step at 100,000 texts (0.7 s at a million)
_ARRAY_DIGESTS: dict[int, tuple[weakref.ref, str]] = {}


def array_texts_digest(texts: np.ndarray) -> str:
    """``texts_digest(texts)`` for an array of texts, computed once per array in this process."""
    key = id(texts)
    held = _ARRAY_DIGESTS.get(key)
    if held is not None and held[0]() is texts:
        return held[1]
    digest = texts_digest(texts)
    try:  # the entry goes with the array (before its id can be another's)
        ref = weakref.ref(texts, lambda _: _ARRAY_DIGESTS.pop(key, None))
    except TypeError:  # an object without weak references (a list): not kept
        return digest
    _ARRAY_DIGESTS[key] = (ref, digest)
    return digest


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
        self.read_only = False
        self.notice = ""  # a warning for the run (a read-only cache)
        if self.location is not None:
            self._check_writable(self.location)
        where = str(self.location) if self.location is not None else None
        self._memory = joblib.Memory(where, backend="clusterlab", verbose=0)
        # the same folders, read through memory maps (a joblib.Memory has one mmap_mode)
        self._mapped = joblib.Memory(where, backend="clusterlab", mmap_mode="r", verbose=0)
        self._funcs: dict[tuple[str, bool], Any] = {}

    def _check_writable(self, location: Path) -> None:
        """A ConfigError unless the folder can be written; a populated one that cannot is used
        read-only (root writes through permission bits, so this tries a real file)."""
        try:
            location.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=location):
                pass
        except OSError as exc:
            if exc.errno in _NOT_WRITABLE and (location / "joblib").is_dir():
                self.read_only = True
                reason = (exc.strerror or "permission denied").lower()
                self.notice = (
                    f"cannot write to the cache {location} ({reason}): cached results are read, "
                    "the rest is computed without being saved"
                )
                log.warning(self.notice)
                return
            raise unwritable_error(location, exc) from None

    def _func(self, kind: str, mmap: bool = False):
        """joblib's memo of ``kind``: both share the folder; ``mmap`` reads arrays memory-mapped."""
        if (kind, mmap) not in self._funcs:
            memory = self._mapped if mmap else self._memory
            self._funcs[kind, mmap] = memory.cache(_entry_function(kind), ignore=["compute"])
        return self._funcs[kind, mmap]

    def scratch_dir(self) -> Path | None:
        """Where a stage may put big temporary files: ``<cache>/scratch``, on the same disk as the
        cache (the system temp folder may be memory-backed); None when caching is off."""
        if self.location is None or self.read_only:
            return None
        folder = self.location / SCRATCH
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def enabled(self) -> bool:
        return self.location is not None

    @property
    def writable(self) -> bool:
        """Whether computed values are stored (not when caching is off or the folder read-only)."""
        return self.enabled and not self.read_only

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
        mmap: bool = False,
        remember: bool = False,
    ) -> tuple[T, bool]:
        """Return ``(value, loaded_from_cache)``; a corrupt entry is recomputed, not fatal.

        ``keep(value)`` false: the value is returned but not stored (e.g. an incomplete result
        that a re-run should complete rather than load). ``mmap``: arrays come back memory-mapped.
        ``remember``: see ``lookup``.
        """
        if not self.enabled:
            return compute(), False
        value = self.lookup(kind, key, on_corrupt, mmap=mmap, remember=remember)
        if value is not MISSING:
            return value, True
        if self.read_only:
            return compute(), False
        if keep is None:
            # joblib >= 1.4: (output, metadata)
            value, _metadata = self._func(kind, mmap).call(key, compute)
        else:
            value = compute()
            if not keep(value):
                return value, False
            # with mmap joblib hands back the stored copy, memory-mapped: the computed
            # arrays (and any temporary files behind them) can go at once
            value, _metadata = self._func(kind, mmap).call(key, lambda: value)
        if remember:
            RECENT_OUTPUTS.put(self._memory_key(kind, key, mmap), value)
        return value, False

    def _memory_key(self, kind: str, key: str, mmap: bool) -> tuple:
        return str(self.location), kind, key, mmap

    def lookup(
        self,
        kind: str,
        key: str,
        on_corrupt: Callable[[str], None] | None = None,
        mmap: bool = False,
        remember: bool = False,
    ) -> Any:
        """The cached value, or ``MISSING``; an unreadable entry is dropped (and reported) as a miss.

        ``remember``: the value is also kept in this process (``RECENT_OUTPUTS``), and read from
        there while the entry is still on disk: the app asks for the same stage outputs on every
        rerun (reading a 100,000-text corpus back took 1 s of each slider step)."""
        if not self.contains(kind, key):
            return MISSING
        func = self._func(kind, mmap)
        try:
            if remember:
                return RECENT_OUTPUTS.get(
                    self._memory_key(kind, key, mmap), func.call_and_shelve(key, None).get
                )
            return func.call_and_shelve(key, None).get()
        except Exception as exc:
            message = f"cache entry {kind}/{key[:8]} could not be read ({type(exc).__name__}); recomputing"
            log.warning(message, exc_info=True)
            if on_corrupt is not None:
                on_corrupt(message)
            try:
                if not self.read_only:
                    func.call_and_shelve(key, None).clear()
            except Exception:
                log.debug("cache: could not clear %s/%s", kind, key, exc_info=True)
            return MISSING

    def put(self, kind: str, key: str, value: Any) -> None:
        """Store ``value`` under ``key``, replacing what is there (nothing when not writable)."""
        if self.writable:
            # joblib records the function's code (which later lookups check) on a lookup, not on
            # ``call``: without one first, the next process's first lookup would miss the entry
            self.contains(kind, key)
            self._func(kind).call(key, lambda: value)
            for mmap in (False, True):
                RECENT_OUTPUTS.discard(self._memory_key(kind, key, mmap))

    def load(self, kind: str, key: str, mmap: bool = False) -> Any:
        """Read an entry that ``contains`` reported; raises if it is missing or unreadable."""
        return self._func(kind, mmap).call_and_shelve(key, None).get()

    def clear(self, kind: str, key: str) -> None:
        for mmap in (False, True):
            RECENT_OUTPUTS.discard(self._memory_key(kind, key, mmap))
        if self.writable and self.contains(kind, key):
            self._func(kind).call_and_shelve(key, None).clear()
