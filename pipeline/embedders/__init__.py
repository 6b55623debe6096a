"""Embedding backends behind one protocol, and their registry.

The embed stage only knows ``Embedder``: ``identity`` (goes into cache keys) and
``encode(texts) -> float32 array``. Each backend is a module here that ends with its
declaration, ``BACKEND = Backend(...)`` (name, the app's label, loader, identity suffix,
libraries); ``BACKENDS`` below lists them. Config validation (``embed.backend``), the app's
backend list and the manifest's library versions all read ``BACKENDS``, so a new backend is
its module plus its line there (docs/architecture.md, "Add an embedding backend").

* ``torch``: sentence-transformers on PyTorch, CPU or GPU (``Runtime.device``).
* ``onnx-int8``: the same model exported to ONNX and quantized to int8, on ONNX Runtime (CPU).
* ``model2vec``: a static model distilled from the same model (CPU, numpy); a fast preview.
The two built backends make their model files once per machine, from the local weights, in one
shared folder (``Runtime.models_dir``, ``$CLUSTERLAB_MODELS_DIR`` or ``~/.cache/clusterlab/models``).

A process keeps the embedders it made in ``MODELS`` (the last two used), so the app's server loads
a model once, not once per run or per dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING

from ..cache import default_models_dir
from ..errors import StageError
from ..recent import Recent
from . import onnx_int8, pytorch, static
from .base import (
    DEFAULT_MODEL,
    PACKAGED_ALIASES,
    Backend,
    Embedder,
    Loads,
    Report,
    packaged_model_dir,
    quiet,
    resolve_model,
)
from .pytorch import SentenceTransformerEmbedder

if TYPE_CHECKING:
    from ..config import EmbedParams

BACKENDS: dict[str, Backend] = {
    backend.name: backend for backend in (pytorch.BACKEND, onnx_int8.BACKEND, static.BACKEND)
}


def backend(name: str) -> Backend:
    """The declaration of ``embed.backend = name``."""
    try:
        return BACKENDS[name]
    except KeyError:  # EmbedParams checks the name first; kept for callers that do not
        raise StageError(
            "embed", f"unknown backend {name!r}", hint=f"use one of {', '.join(BACKENDS)}"
        ) from None


def libraries() -> tuple[str, ...]:
    """Every backend's libraries, each once, in registry order (for the manifest)."""
    return tuple(dict.fromkeys(name for b in BACKENDS.values() for name in b.libraries))


def embedder_identity(params: EmbedParams) -> str:
    """What an embedder for these params would be called, without loading any weights.

    Backend, model and (for the built backends) runtime version and recipe: it changes whenever
    the vectors would, and it is part of every embedding cache key.
    """
    return f"{params.backend}:{resolve_model(params.model)[1]}{backend(params.backend).suffix()}"


MODELS_KEPT = 2  # embedders a process keeps (a model's weights: 20 to 100 MB for MiniLM)


class LoadedModels(Recent[Embedder]):
    """The embedders a process made, by what makes their vectors; the ``keep`` used last stay.

    Thread-safe: the app's server runs many pipelines at once. An embedder dropped here stays
    usable by a run that holds it; the next run makes (and loads) it again."""

    def __init__(self, keep: int = MODELS_KEPT):
        super().__init__(keep)

    def get(self, key: Hashable, make: Callable[[], Embedder]) -> Embedder:
        """The embedder kept under ``key``, else ``make()``'s (kept unless it raises); made under
        the lock, so two runs never make two (making one is cheap: the weights load later, under
        its own lock)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return self._put_locked(key, make())


MODELS = LoadedModels()


def load_embedder(
    params: EmbedParams,
    device: str = "auto",
    batch_size: int = 64,
    *,
    models_dir: Path | None = None,
) -> Embedder:
    """The embedder for ``params``, made once per process and kept in ``MODELS``; its weights load
    on its first ``encode``, or ahead with ``load`` (below).

    It is kept under what makes its vectors (backend, the model's identity, device, batch size),
    never a folder: every run, cache and dataset of a process shares it. The built backends keep
    their files in ``models_dir`` (default: ``cache.default_models_dir()``, shared by every cache).
    """
    models_dir = models_dir or default_models_dir()
    key = (params.backend, embedder_identity(params), device, batch_size)
    return MODELS.get(key, lambda: _make(params, device, batch_size, Path(models_dir)))


def is_loaded(embedder: Embedder) -> bool:
    """Whether ``embedder``'s weights are in memory (one that cannot load ahead counts as loaded)."""
    return not isinstance(embedder, Loads) or embedder.loaded


def load(embedder: Embedder, report: Report = quiet) -> None:
    """Load ``embedder``'s weights now (building its model files first where needed), telling
    ``report`` how far it is; nothing for one that is loaded or cannot load ahead."""
    if isinstance(embedder, Loads):
        embedder.load(report)


def _make(params: EmbedParams, device: str, batch_size: int, models: Path) -> Embedder:
    chosen = backend(params.backend)
    if chosen.cpu_only and device == "cuda":
        raise StageError(
            "embed",
            f"embed.backend={params.backend} runs on the CPU only; found embed.device=cuda",
            hint="set embed.device to auto or cpu (--device), or use embed.backend=torch on the GPU",
        )
    return chosen.load(params.model, device, batch_size, models)


__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "PACKAGED_ALIASES",
    "Backend",
    "MODELS",
    "MODELS_KEPT",
    "Embedder",
    "LoadedModels",
    "Loads",
    "Report",
    "SentenceTransformerEmbedder",
    "backend",
    "embedder_identity",
    "is_loaded",
    "libraries",
    "load",
    "load_embedder",
    "packaged_model_dir",
    "resolve_model",
]
