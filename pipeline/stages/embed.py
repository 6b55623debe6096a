"""embed: distinct texts -> float32 vectors, in chunks that are cached one by one.

The vectors are written chunk by chunk into a memory-mapped .npy file (never one array in
memory), here or on a Dask cluster (``Runtime.scheduler``, see pipeline/distributed.py). The
file's disk space is allocated before the first write: writing into a sparse mapping on a full
disk kills the process with SIGBUS, where a failed allocation is an error that says so.

Loading the model (and building it, on a built backend's first use on the machine) is a step of
its own: its progress and time are reported, and the manifest keeps its seconds. A process loads
a model once (``embedders.MODELS``); later runs say it is loaded already.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import tempfile
import weakref
from pathlib import Path

import numpy as np

from .. import distributed
from ..cache import MISSING, chain_key, check_free_space, disk_full_error, texts_digest
from ..config import EmbedParams
from ..context import Runtime, StageContext, detached
from ..embedders import Embedder, Loads, embedder_identity, is_loaded, load, load_embedder
from ..errors import StageError
from ..types import Corpus, Embeddings
from .base import PlanContext, Stage

VERSION = 1
log = logging.getLogger(__name__)
MODEL_STEP = "loading the model"  # the step's name in StageStat.steps and the manifest
MODEL_SHARE = 0.1  # of the stage's progress, when a run loads the model


def chunk_plan(texts: np.ndarray, chunk_size: int) -> list[np.ndarray]:
    """Indices of each chunk. Texts are grouped by length so batches pad little."""
    order = np.argsort(np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts)), kind="stable")
    return [order[i : i + chunk_size] for i in range(0, len(order), chunk_size)]


def chunk_key(identity: str, texts: list[str]) -> str:
    return chain_key("embed_chunk", VERSION, identity, texts_digest(texts))


def checked(block: np.ndarray, n_texts: int) -> np.ndarray:
    """The model's output as float32, or a StageError unless it is one vector per text."""
    out = np.asarray(block, dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != n_texts:
        raise StageError(
            "embed",
            f"the model returned an array of shape {out.shape} for {n_texts} texts; "
            "expected one vector per text",
            hint="check that embed.model is a sentence-embedding model",
        )
    return out


def scratch_memmap(folder: Path | None, shape: tuple[int, int]) -> np.memmap:
    """A float32 .npy mapped into memory, its file already unlinked where the OS allows it: the
    disk space is freed when the last view of the array goes, and a killed run leaves nothing.

    The space is allocated for real (not a sparse file), so a full disk raises OSError (ENOSPC)
    here instead of SIGBUS at some later write into the mapping."""
    handle, path = tempfile.mkstemp(prefix="embed-", suffix=".npy", dir=folder)
    try:
        array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
        _allocate(handle, array.offset, os.path.getsize(path))
    except BaseException:
        os.close(handle)
        os.unlink(path)
        raise
    os.close(handle)
    try:
        os.unlink(path)
    except OSError:  # Windows keeps mapped files: remove it once the array is gone
        weakref.finalize(array, _remove, path)
    return array


def _allocate(handle: int, start: int, size: int, block: int = 2**20) -> None:
    """Reserve the file's ``size`` bytes of disk: posix_fallocate, else ordinary writes of zeros
    from ``start`` (the data, after the .npy header) to the end."""
    if hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(handle, 0, size)
            return
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise
            # EINVAL/EOPNOTSUPP: this filesystem cannot; write the zeros instead
    zeros = bytes(block)
    os.lseek(handle, start, os.SEEK_SET)
    while start < size:
        start += os.write(handle, zeros[: min(block, size - start)])


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class _Vectors:
    """The output array, made when the first chunk says the dimension, filled chunk by chunk."""

    def __init__(self, total: int, folder: Path | None, stored: bool = False):
        self.total, self.folder = total, folder
        self.stored = stored  # the runner then writes the whole array to the cache as well
        self.array: np.memmap | None = None
        self.finite = True

    def put(self, index: np.ndarray, block: np.ndarray) -> None:
        if self.array is None:
            self.array = self._allocate(block.shape[1])
        self.array[index] = block
        # checked per chunk: a whole-array isfinite would need n x dim bytes at once
        self.finite = self.finite and bool(np.isfinite(block).all())

    def _allocate(self, dim: int) -> np.memmap:
        size = self.total * dim * np.dtype(np.float32).itemsize
        # the scratch file, and the cache entry written while it still exists
        needed = size * (2 if self.stored else 1)
        check_free_space("embed", self.folder, needed)
        try:
            return scratch_memmap(self.folder, (self.total, dim))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise disk_full_error("embed", self.folder, needed) from None
            raise

    def finish(self) -> np.memmap:
        assert self.array is not None  # preprocess guarantees at least one text
        if not self.finite:
            raise StageError(
                "embed",
                "the model produced non-finite values (NaN or inf)",
                hint="try another embed.model; if it persists, report it with the manifest",
            )
        self.array.flush()
        self.array.flags.writeable = False  # later stages read, never write (as from the cache)
        return self.array


def identity_for(params: EmbedParams, runtime: Runtime) -> str:
    """The identity of the embedder a run uses: the one given at run time, else ``params``'."""
    given: Embedder | None = runtime.embedder
    return given.identity if given is not None else embedder_identity(params)


def embed(corpus: Corpus, params: EmbedParams, ctx: StageContext | None = None) -> Embeddings:
    """Embed every distinct text. Weights load only if some chunk is not cached yet."""
    ctx = ctx or detached("embed")
    identity = identity_for(params, ctx.runtime)
    chunks = chunk_plan(corpus.texts, max(1, ctx.runtime.chunk_size))
    vectors = _Vectors(corpus.n_texts, ctx.cache.scratch_dir(), stored=ctx.cache.writable)
    address = distributed.scheduler_address(ctx.runtime)
    if address:
        _embed_on_cluster(address, corpus, chunks, identity, params, vectors, ctx)
    else:
        _embed_here(corpus, chunks, identity, params, vectors, ctx)
    return Embeddings(vectors=vectors.finish(), model=identity)


class _Progress:
    """The stage's fraction done: texts embedded, and the model's load when this run loads it."""

    def __init__(self, total: int, loads_model: bool):
        self.total = total
        self.weight = total * MODEL_SHARE / (1 - MODEL_SHARE) if loads_model else 0.0
        self.texts = 0  # embedded or loaded from the cache
        self.model = 0.0  # share of the model's load done

    @property
    def fraction(self) -> float:
        return (self.texts + self.weight * self.model) / (self.total + self.weight)


def _embed_here(corpus, chunks, identity, params, vectors: _Vectors, ctx: StageContext) -> None:
    runtime = ctx.runtime
    embedder: Embedder = runtime.embedder or load_embedder(
        params, runtime.device, runtime.batch_size, models_dir=runtime.models_folder
    )
    progress = _Progress(corpus.n_texts, loads_model=not is_loaded(embedder))
    started = False
    for number, index in enumerate(chunks, start=1):
        texts = [str(t) for t in corpus.texts[index]]

        def compute(texts: list[str] = texts, number: int = number) -> np.ndarray:
            nonlocal started
            if not started:  # the first chunk to embed loads the model (and builds it, the first time)
                started = True
                _ready(embedder, params, progress, ctx)
            # said before the chunk: while it is embedded, the heartbeat repeats what is going on
            ctx.progress(progress.fraction, f"embedding chunk {number}/{len(chunks)} ({len(texts):,} texts)")
            return checked(embedder.encode(texts), len(texts))

        block, hit = ctx.piece("embed_chunk", chunk_key(identity, texts), compute)
        vectors.put(index, block)
        progress.texts += len(texts)
        message = _chunk_message(number, len(chunks), progress.texts, corpus.n_texts, hit)
        ctx.progress(progress.fraction, message)


def _ready(embedder: Embedder, params: EmbedParams, progress: _Progress, ctx: StageContext) -> None:
    """Load the model's weights as a timed step of the stage, unless this process has them."""
    if not isinstance(embedder, Loads):  # given at run time, or a backend that loads as it encodes
        ctx.progress(progress.fraction, f"embedding with {embedder.identity}")
        return
    name = _model_name(params.model)
    if embedder.loaded:
        progress.model = 1.0
        ctx.progress(progress.fraction, f"the model {name} is loaded already (once per process)")
        return
    ctx.progress(progress.fraction, f"loading the model {name} (once per process)")

    def report(share: float, message: str) -> None:
        progress.model = max(progress.model, min(float(share), 1.0))
        ctx.progress(progress.fraction, f"loading {name}: {message}")

    with ctx.step(MODEL_STEP):
        load(embedder, report)
    progress.model = 1.0
    ctx.progress(progress.fraction, f"model {name} loaded in {ctx.steps[MODEL_STEP]:.1f} s")


def _model_name(model: str) -> str:
    """A model's name as the messages show it: a local folder by its last part."""
    return Path(model).name if "/" in model and Path(model).expanduser().is_dir() else model


def _embed_on_cluster(
    address, corpus, chunks, identity, params, vectors: _Vectors, ctx: StageContext
) -> None:
    """Cached chunks load here; the others go to the Dask cluster, and each is cached the moment
    it comes back, so a run that stops (a worker or this process killed) resumes with it."""
    total, done = corpus.n_texts, 0
    todo: list[distributed.Job] = []
    for number, index in enumerate(chunks, start=1):
        texts = [str(t) for t in corpus.texts[index]]
        key = chunk_key(identity, texts)
        block = ctx.cached_piece("embed_chunk", key)
        if block is MISSING:
            todo.append(distributed.Job(number, key, texts))
            continue
        vectors.put(index, block)
        done += len(texts)
        ctx.progress(done / total, _chunk_message(number, len(chunks), done, total, True))
    if not todo:
        return
    ctx.progress(
        done / total,
        f"sending {len(todo)} of {len(chunks)} chunks ({total - done:,} texts) to the Dask scheduler at {address}",
    )
    spec = distributed.EmbedderSpec.of(ctx.runtime, params)
    with contextlib.closing(
        distributed.embed_chunks(address, todo, spec, identity, ctx.check_cancelled)
    ) as results:
        for job, block in results:
            block = checked(block, len(job.texts))
            block, _ = ctx.piece("embed_chunk", job.key, lambda block=block: block)
            vectors.put(chunks[job.number - 1], block)
            done += len(job.texts)
            ctx.progress(
                done / total, _chunk_message(job.number, len(chunks), done, total, False) + " (Dask)"
            )


def _chunk_message(number: int, n_chunks: int, done: int, total: int, hit: bool) -> str:
    return f"chunk {number}/{n_chunks}: {done:,} of {total:,} texts" + (" (chunk from cache)" if hit else "")


def _plan_detail(plan: PlanContext) -> str:
    """How many embedding chunks are cached already, once the corpus is."""
    try:
        found = plan.cached("corpus")
    except Exception:
        return "cache entry unreadable; it will be recomputed"
    if found is None:
        return ""
    (corpus,) = found
    identity = identity_for(plan.config.embed, plan.runtime)
    chunks = chunk_plan(corpus.texts, max(1, plan.runtime.chunk_size))
    have = sum(
        plan.cache.contains("embed_chunk", chunk_key(identity, [str(t) for t in corpus.texts[i]]))
        for i in chunks
    )
    return f"{have} of {len(chunks)} chunks cached"


STAGE = Stage(
    name="embed",
    title="Embedding texts",
    version=VERSION,
    inputs=("corpus",),
    output="embeddings",
    artifact=Embeddings,
    # the model's identity (backend, weights, runtime version) is part of the key; the device is not
    params=lambda config, runtime: {"params": config.embed, "identity": identity_for(config.embed, runtime)},
    run=lambda a, config, ctx: embed(a["corpus"], config.embed, ctx),
    summary=lambda embeddings: f"{embeddings.vectors.shape[0]:,} vectors of {embeddings.dim} dimensions",
    mmap=True,  # n x dim floats: 1M x 384 would be 1.5 GB in memory
    plan_detail=_plan_detail,
)
