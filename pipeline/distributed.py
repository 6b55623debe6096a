"""Embedding chunks on a Dask cluster (``--set embed.scheduler=tcp://host:8786``).

Only the embed stage calls this, and only when a scheduler is set (``Runtime.scheduler``, else
``$DASK_SCHEDULER_ADDRESS``): Dask is imported then and never otherwise. The client (this
process) keeps the cache: it sends the chunks that are not cached yet, and the embed stage
stores each one the moment it comes back, so a worker (or this process) that dies loses no
finished chunk. Each worker process loads the model once and keeps it for later chunks. The
scheduler is not part of any cache key: the vectors equal those of a run on this machine.
The scheduler and the workers import this module to read the tasks: they need the project
installed (``pip install -e .``), like the client. See docs/dask.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cache import default_models_dir
from .config import EmbedParams
from .context import SCHEDULER_ADDRESS, Runtime
from .errors import PipelineError, StageError

log = logging.getLogger(__name__)

ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"
CONNECT_TIMEOUT_S = 10.0  # reaching the scheduler
NO_WORKERS_TIMEOUT_S = 60.0  # how long the scheduler may have no worker at all
POLL_S = 0.05  # between looks at finished chunks and at the cancel flag


def scheduler_address(runtime: Runtime) -> str:
    """``embed.scheduler``, else ``$DASK_SCHEDULER_ADDRESS``; "" means: embed on this machine."""
    if runtime.scheduler:
        return runtime.scheduler
    address = os.environ.get(ENV_SCHEDULER, "").strip()
    if address and not SCHEDULER_ADDRESS.fullmatch(address):
        raise StageError(
            "embed",
            f"${ENV_SCHEDULER} = {address!r} is not a Dask scheduler address; expected e.g. tcp://host:8786",
            hint=f"fix or unset {ENV_SCHEDULER}, or pass --set embed.scheduler=tcp://host:8786",
        )
    return address


@dataclass(frozen=True)
class Job:
    """One chunk to embed: its number in the stage (from 1), its cache key and its texts."""

    number: int
    key: str
    texts: list[str]


@dataclass(frozen=True)
class EmbedderSpec:
    """What a worker needs to make the embedder: the params (it loads the model itself) or,
    for an embedder object given in ``Runtime.embedder``, that object pickled."""

    params: EmbedParams
    device: str
    batch_size: int
    # the client's Runtime.models_dir when it named one ("" = none): a worker that sees that folder
    # (a shared disk) uses it; otherwise its own shared models folder (see ``models_folder``)
    models_dir: str
    pickled: bytes = b""
    digest: str = ""

    @classmethod
    def of(cls, runtime: Runtime, params: EmbedParams) -> EmbedderSpec:
        """What the workers need for ``params`` (built models never live in a cache folder: see
        ``models_folder``)."""
        pickled, digest = b"", ""
        if runtime.embedder is not None:
            import cloudpickle  # a dependency of distributed

            try:
                pickled = cloudpickle.dumps(runtime.embedder)
            except Exception as exc:
                raise StageError(
                    "embed",
                    f"the embedder object ({type(runtime.embedder).__name__}) cannot be sent to Dask "
                    f"workers: {type(exc).__name__}: {str(exc)[:200]}",
                    hint="let the workers load the model from embed.model and embed.backend (no "
                    "Runtime.embedder), or unset embed.scheduler to embed here",
                ) from exc
            digest = hashlib.sha256(pickled).hexdigest()
        models_dir = str(Path(runtime.models_dir).expanduser()) if str(runtime.models_dir) else ""
        return cls(params, runtime.device, runtime.batch_size, models_dir, pickled, digest)

    @property
    def worker_key(self) -> tuple:
        if self.pickled:
            return ("object", self.digest)
        return ("model", self.params, self.device, self.batch_size, self.models_dir)

    def models_folder(self) -> Path:
        """Where this worker finds (or builds, once) the onnx-int8 and model2vec model files: the
        folder the client named when this worker can see it, else the worker's own shared models
        folder (``$CLUSTERLAB_MODELS_DIR`` in its environment, else ~/.cache/clusterlab/models),
        as for any run on that machine. Never a cache folder of the client's."""
        if self.models_dir and Path(self.models_dir).is_dir():
            return Path(self.models_dir)
        return default_models_dir()


@dataclass(frozen=True)
class _Done:
    vectors: np.ndarray
    identity: str


@dataclass(frozen=True)
class _Failed:
    """A PipelineError on a worker, as plain values (its subclasses do not survive pickling)."""

    message: str
    hint: str


# On a worker: the loaded embedder per spec, so a worker process loads the model once.
_worker_embedders: dict[tuple, Any] = {}
_worker_lock = threading.Lock()


def _worker_embedder(spec: EmbedderSpec):
    with _worker_lock:
        if spec.worker_key not in _worker_embedders:
            _worker_embedders[spec.worker_key] = _make_embedder(spec)
        return _worker_embedders[spec.worker_key]


def _make_embedder(spec: EmbedderSpec):
    if spec.pickled:
        return pickle.loads(spec.pickled)
    from .embedders import load_embedder

    return load_embedder(spec.params, spec.device, spec.batch_size, models_dir=spec.models_folder())


def encode_chunk(spec: EmbedderSpec, texts: list[str]) -> _Done | _Failed:
    """Runs on a Dask worker: one chunk's vectors and the identity of the model that made them."""
    try:
        embedder = _worker_embedder(spec)
        return _Done(np.asarray(embedder.encode(texts), dtype=np.float32), embedder.identity)
    except PipelineError as exc:
        return _Failed(exc.message, exc.hint)


def _connect(address: str):
    try:
        from distributed import Client
    except ImportError as exc:
        raise StageError(
            "embed",
            f"embed.scheduler is {address!r} but dask.distributed is not installed here",
            hint="run `pip install -r requirements.txt` (it pins dask and distributed), or unset "
            f"embed.scheduler and ${ENV_SCHEDULER} to embed on this machine",
        ) from exc
    try:
        return Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise StageError(
            "embed",
            f"could not reach a Dask scheduler at {address} within {CONNECT_TIMEOUT_S:g} s "
            f"({type(exc).__name__}: {str(exc)[:200]})",
            hint=f"start one there (`dask scheduler`, then `dask worker {address}` on each machine), "
            f"check the address and the firewall, or unset embed.scheduler and ${ENV_SCHEDULER} "
            "to embed on this machine",
        ) from exc


def _wait_for_workers(client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=NO_WORKERS_TIMEOUT_S)
    except TimeoutError as exc:
        raise StageError(
            "embed",
            f"the Dask scheduler at {address} has had no workers for {NO_WORKERS_TIMEOUT_S:g} s",
            hint=f"start workers with `dask worker {address}` in this project's environment, with the "
            "project installed (`pip install -e .`; a worker that cannot import `pipeline` drops out: "
            "see its log; docs/dask.md); chunks finished so far are cached, so running again resumes",
        ) from exc


def embed_chunks(
    address: str,
    jobs: list[Job],
    spec: EmbedderSpec,
    identity: str,
    check_cancelled: Callable[[], None],
) -> Iterator[tuple[Job, np.ndarray]]:
    """Send ``jobs`` to the cluster; yield ``(job, vectors)`` as each one finishes.

    Close the generator to stop: chunks still queued or running are cancelled and the
    connection closes. A chunk whose model on the worker has another identity than
    ``identity`` is an error (its vectors would be cached under the wrong key).
    """
    from distributed import as_completed

    client = _connect(address)
    pending: dict[Any, Job] = {}
    try:
        _wait_for_workers(client, address)
        run = uuid.uuid4().hex[:8]
        for job in jobs:
            future = client.submit(encode_chunk, spec, job.texts, key=f"embed-chunk-{run}-{job.number}")
            pending[future] = job
        finished = as_completed(list(pending), loop=client.loop)
        watch = _WorkerWatch(client, address)
        while not finished.is_empty():
            batch = finished.next_batch(block=False)
            if not batch:
                check_cancelled()
                watch.check()
                time.sleep(POLL_S)
                continue
            for future in batch:
                job = pending.pop(future)
                outcome = _result(future, job, address)
                future.release()  # the worker may drop it now: it is ours
                if outcome.identity != identity:
                    raise StageError(
                        "embed",
                        f"a Dask worker embedded with {outcome.identity!r}; this machine expects {identity!r}",
                        hint="install the same requirements (and model) on the workers as here, "
                        "or unset embed.scheduler to embed on this machine",
                    )
                yield job, outcome.vectors
    finally:
        if pending:
            client.cancel(list(pending))
        client.close()


def _result(future, job: Job, address: str) -> _Done:
    from distributed import CancelledError
    from distributed.scheduler import KilledWorker

    try:
        outcome = future.result()
    except KilledWorker as exc:
        raise StageError(
            "embed",
            f"chunk {job.number} was running each time a Dask worker died, "
            f"{exc.allowed_failures + 1} times in a row; the chunks that finished are cached",
            hint="check the workers' logs and memory (a smaller --chunk-size needs less), then run "
            "the same command again: it sends only the missing chunks",
        ) from exc
    except CancelledError as exc:
        raise StageError(
            "embed",
            f"chunk {job.number} was cancelled by the Dask scheduler at {address} (lost contact?)",
            hint="check that the scheduler is still running, then run again: finished chunks are cached",
        ) from exc
    except RuntimeError as exc:
        if "deserializ" not in str(exc):
            raise
        raise StageError(
            "embed",
            f"the Dask scheduler at {address} could not read the chunk's task: it needs this "
            "project's code and requirements, like the workers",
            hint=f"start `dask scheduler` and `dask worker {address}` in this project's environment, "
            "with the project installed (`pip install -e .`: see docs/dask.md), or unset embed.scheduler",
        ) from exc
    if isinstance(outcome, _Failed):
        raise StageError("embed", f"on a Dask worker: {outcome.message}", hint=outcome.hint)
    return outcome


class _WorkerWatch:
    """An error, not a hang, when the scheduler goes away or keeps no worker for too long."""

    def __init__(self, client, address: str):
        self.client, self.address = client, address
        self.last_look = self.last_worker = time.monotonic()

    def check(self) -> None:
        now = time.monotonic()
        if now - self.last_look < 1.0:
            return
        self.last_look = now
        try:
            workers = self.client.nthreads()
        except (OSError, TimeoutError) as exc:
            raise StageError(
                "embed",
                f"lost the Dask scheduler at {self.address} ({type(exc).__name__})",
                hint="check that the scheduler is still running, then run again: finished chunks are cached",
            ) from exc
        if workers:
            self.last_worker = now
        elif now - self.last_worker > NO_WORKERS_TIMEOUT_S:
            raise StageError(
                "embed",
                f"the Dask scheduler at {self.address} has had no workers for {NO_WORKERS_TIMEOUT_S:g} s",
                hint=f"start workers with `dask worker {self.address}` in this project's environment, with "
                "the project installed (`pip install -e .`; a worker that cannot import `pipeline` drops "
                "out: see its log; docs/dask.md); finished chunks are cached, so running again resumes",
            )
