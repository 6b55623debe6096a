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
The two built backends make their model files once, from the local weights, in
``<cache>/models``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StageError
from . import _build, onnx_int8, pytorch, static
from .base import (
    DEFAULT_MODEL,
    PACKAGED_ALIASES,
    Backend,
    Embedder,
    packaged_model_dir,
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


_loaded: dict[tuple[str, str, str, int, str], Embedder] = {}
_loaded_lock = threading.Lock()


def load_embedder(
    params: EmbedParams, device: str = "auto", batch_size: int = 64, cache_location: Path | None = None
) -> Embedder:
    """The embedder for ``params``; built once per process (weights load on first use).

    ``cache_location`` is the pipeline cache: the built backends keep their model files in its
    ``models`` folder (the default cache folder's when it is None).
    """
    models = _build.models_root(cache_location)
    key = (params.backend, params.model, device, batch_size, str(models))
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = _make(params, device, batch_size, models)
        return _loaded[key]


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
    "Embedder",
    "SentenceTransformerEmbedder",
    "backend",
    "embedder_identity",
    "libraries",
    "load_embedder",
    "packaged_model_dir",
    "resolve_model",
]
