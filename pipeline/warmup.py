"""Warm-up for a fresh install, run once at set-up: ``python -m pipeline.warmup [--backend NAME]``.

What a first run would otherwise pay for:

1. **Compiling UMAP.** UMAP compiles its numba functions on first use (23 s measured on a
   fresh machine); the reduce stage keeps them in numba's on-disk cache (see
   ``stages/reduce.py``), so a tiny reduce and cluster through the real stage functions here
   fills that cache for every later process. HDBSCAN is compiled ahead (Cython); the cluster
   stage's condensing of HDBSCAN's tree (``clustering/_condense.py``) is numba's too, and is kept
   in its on-disk cache as well. pynndescent (the reduce stage's index past 70,000 texts) is
   left out: numba cannot cache its main loop (``nn_descent``: "dynamic globals"), so every
   process that builds an index compiles it again (about 28 s here), warm-up or not.
2. **Building the backend's model.** A built backend (onnx-int8, model2vec) makes its model
   files once per machine, into the shared models folder (``Runtime.models_folder``); its
   progress is shown here instead of during someone's first run.

And once per server process (``warm_server``, in a thread from the server's start: ``python -m
pages.serve``, or from its first page view): **loading the model** (importing PyTorch and
transformers, reading the weights: about 5 s) and UMAP's compiled code from that cache (about
2 s), so the first clustering starts embedding at once.

Progress goes to stderr, one line per step. Running it again is quick and says that all was
warm. A failing step is a warning, and the exit status stays 0 so installation goes on (the
first run then does that work itself); only a usage error exits non-zero (2).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .config import EmbedParams
    from .context import Runtime

# imported by re-clustering (a slider step) but not by opening a cached result: 1.7 s of the first
# slider step after a server start, until warmed
SLIDER_IMPORTS = ("hdbscan", "sklearn.metrics", "scipy.sparse")
WARM_POINTS = 300  # enough for UMAP's graph and HDBSCAN's clusters, small enough to take no time
LINE_EVERY_S = 5.0  # a progress line at least this far apart, unless the step changes

log = logging.getLogger(__name__)


class Lines:
    """Progress lines on the stream that was stderr when warm-up began: a model2vec build
    redirects sys.stderr to read its bar, and lines written there meanwhile would vanish."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr

    def say(self, text: str) -> None:
        print(f"warm-up: {text}", file=self.stream, flush=True)

    def report(self, began: float, built: list[bool]) -> Callable[[float, str], None]:
        """A ``Report`` that says a line when the step changes, else at most every few seconds;
        ``built`` gets an item when a build reports."""
        last = {"step": "", "at": -LINE_EVERY_S}

        def report(fraction: float, message: str) -> None:
            if message.startswith("building"):
                built.append(True)
            step = message.rsplit(" (", 1)[0] if message.endswith(" done)") else message  # not the counts
            now = time.monotonic()
            if step != last["step"] or now - last["at"] >= LINE_EVERY_S:
                last.update(step=step, at=now)
                self.say(f"  {fraction:4.0%} {now - began:5.0f} s  {message}")

        return report


def compile_numba() -> str:
    """Run a tiny reduce (UMAP on its exact neighbours, as for up to 50,000 texts) and cluster
    through the stage functions, so numba's on-disk cache holds what UMAP compiles. Returns what
    happened, in words."""
    import numpy as np

    from .config import ClusterParams, ReduceParams
    from .stages.cluster import cluster
    from .stages.reduce import reduce
    from .types import Embeddings

    rng = np.random.default_rng(0)
    centers = rng.standard_normal((6, 32))
    points = centers[rng.integers(0, 6, WARM_POINTS)] + 0.3 * rng.standard_normal((WARM_POINTS, 32))
    points = (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)
    projection = reduce(Embeddings(points, "warm-up"), ReduceParams())
    cluster(projection, ClusterParams())
    hits, misses = _numba_cache_counts()
    # a few tiny helpers (UMAP's random numbers) compile again in every process: warm means that
    # nearly everything came from the cache
    if hits > misses:
        return f"already warm: {hits} functions loaded from numba's cache ({misses} compiled)"
    return f"compiled {misses} functions into numba's cache ({hits} were there already)"


def _numba_cache_counts() -> tuple[int, int]:
    """(functions loaded from numba's on-disk cache, functions compiled and saved to it) in this
    process, over UMAP's, pynndescent's and the pipeline's modules."""
    from numba.core.dispatcher import Dispatcher

    hits = misses = 0
    for name, module in list(sys.modules.items()):
        if not name.startswith(("umap", "pynndescent", "pipeline")) or module is None:
            continue
        for function in vars(module).values():
            if isinstance(function, Dispatcher):
                stats = function.stats
                hits += sum(stats.cache_hits.values())
                misses += sum(stats.cache_misses.values())
    return hits, misses


def build_model(backend_name: str, models_dir: Path | None = None, lines: Lines | None = None) -> str:
    """Build ``backend_name``'s model for the default model into the shared models folder, if
    that backend builds one; returns what happened, in words."""
    from . import embedders
    from .config import EmbedParams
    from .context import Runtime

    declared = embedders.backend(backend_name)
    params = EmbedParams(backend=backend_name)
    if not declared.builds:
        return f"{backend_name}: nothing to build (it loads {params.model} on each server's first run)"
    runtime = Runtime() if models_dir is None else Runtime(models_dir=models_dir)
    embedder = embedders.load_embedder(params, "cpu", runtime.batch_size, models_dir=runtime.models_folder)
    built: list[bool] = []
    began = time.monotonic()
    embedders.load(embedder, (lines or Lines()).report(began, built))
    if not built:
        return f"{backend_name}: the model was built already, in {runtime.models_folder}"
    return f"{backend_name}: model built in {time.monotonic() - began:.0f} s, in {runtime.models_folder}"


def warm_server(
    params: EmbedParams, runtime: Runtime, modules: tuple[str, ...] = (), *, model: bool = True
) -> list[str]:
    """What a server's first clustering would otherwise wait for, done once per process ahead of
    it (``warm_in_background``: as the server starts, or on its first page view): the embedding
    model ``params`` names, loaded into the process's ``embedders.MODELS`` under the key a run with ``runtime``
    asks for, and UMAP's compiled code from numba's on-disk cache (``compile_numba``), unless
    ``model`` is False; then ``modules``. A run that starts meanwhile waits on the model's own
    lock, never loads it twice.

    A backend that must build its model first is left alone (a build takes seconds to minutes,
    with progress worth showing: the first run that asks for it shows it); so is a model given
    at run time (``runtime.embedder``). Returns what each step did, in words; a failed step is
    logged and the rest go on (the run that needs it does it again and says what is wrong)."""
    from . import embedders

    done: list[str] = []

    def step(what: str, work: Callable[[], str | None]) -> None:
        began = time.monotonic()
        try:
            outcome = work()
        except Exception:
            log.warning("warming up the server: %s failed", what, exc_info=True)
            done.append(f"{what}: failed (see the log)")
            return
        done.append(f"{what}: {outcome or 'done'} in {time.monotonic() - began:.1f} s")

    def weights() -> str:
        if runtime.embedder is not None:
            return "given at run time, nothing to load"
        if embedders.backend(params.backend).builds:
            return f"{params.backend} builds its model first: left to the first run, which shows it"
        embedder = embedders.load_embedder(
            params, runtime.device, runtime.batch_size, models_dir=runtime.models_folder
        )
        if embedders.is_loaded(embedder):
            return "loaded already"
        embedders.load(embedder)
        return f"{embedder.identity} loaded"

    if model:
        step("the embedding model", weights)
        step("UMAP's compiled code", compile_numba)
    for name in modules:
        step(f"import {name}", lambda name=name: _imported(name))
    return done


_server_warm_up: threading.Thread | None = None  # the process's one (warm_in_background)
_server_warm_up_lock = threading.Lock()


def warm_in_background(
    params: EmbedParams,
    runtime: Runtime,
    modules: tuple[str, ...] = SLIDER_IMPORTS,
    *,
    model: bool = True,
    freeze: bool = False,
) -> threading.Thread:
    """``warm_server`` in a daemon thread, once per process: the first call starts it, every
    later one returns that thread (``python -m pages.serve`` calls it as the server starts, the
    app on its first page view: whichever comes first). When done it logs one line, "server
    warmed in N s: ..." (the browser benchmark waits for it).

    ``freeze`` (the server's own start, where nothing but imports and the model exist yet):
    then collect once and ``gc.freeze()`` what is left, so Python's cyclic collector never walks
    it again. With PyTorch, transformers and the weights loaded, a full collection walked
    620,000 objects (0.28 s here) instead of 280,000 (0.17 s), and one comes in the middle of
    a script run every so often; after the freeze it walks only what the runs make. What is
    frozen is freed by reference counting as before; only cyclic garbage among it would stay."""
    global _server_warm_up
    with _server_warm_up_lock:
        if _server_warm_up is None:

            def work() -> None:
                began = time.monotonic()
                done = warm_server(params, runtime, modules, model=model)
                if freeze:
                    gc.collect()
                    gc.freeze()
                    done.append(f"{gc.get_freeze_count():,} objects frozen out of the collector's walks")
                log.info("server warmed in %.1f s: %s", time.monotonic() - began, "; ".join(done))

            _server_warm_up = threading.Thread(target=work, name="clusterlab-warm-up", daemon=True)
            _server_warm_up.start()
        return _server_warm_up


def _imported(name: str) -> str:
    importlib.import_module(name)
    return "imported"


def _backends() -> list[str]:
    from .embedders import BACKENDS

    return list(BACKENDS)


def _parser() -> argparse.ArgumentParser:
    from .config import EmbedParams

    parser = argparse.ArgumentParser(
        prog="python -m pipeline.warmup",
        description="Compile UMAP's numba code and build the embedding backend's model once, at "
        "set-up, so the first clustering does not wait for them. Never fails the set-up: a step "
        "that fails is a warning.",
    )
    parser.add_argument(
        "--backend",
        choices=_backends(),
        default=EmbedParams().backend,
        help="the embedding backend whose model to build (default: %(default)s, which builds nothing)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="where built models go (default: $CLUSTERLAB_MODELS_DIR or the user's cache folder)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # a usage error exits 2 here
    logging.basicConfig(level=logging.WARNING, format="warm-up: %(levelname)s %(name)s: %(message)s")
    lines = Lines()
    began = time.monotonic()
    steps: list[tuple[str, Callable[[], str]]] = [
        ("compiling UMAP (numba, once per machine)", compile_numba),
        (f"the {args.backend} backend's model", lambda: build_model(args.backend, args.models_dir, lines)),
    ]
    failed = 0
    for what, step in steps:
        lines.say(f"{what} ...")
        started = time.monotonic()
        try:
            outcome = step()
        except Exception as exc:  # warm-up is an optimisation: never fail the installation
            log.debug("warm-up step failed", exc_info=True)
            failed += 1
            lines.say(
                f"warning: {what} failed ({type(exc).__name__}: {str(exc)[:300]}); the first run "
                "will do this itself"
            )
            continue
        lines.say(f"{outcome} ({time.monotonic() - started:.1f} s)")
    state = f"{failed} step(s) failed, see the warnings above" if failed else "ready"
    lines.say(f"{state}; took {time.monotonic() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
