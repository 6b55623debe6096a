"""``embed.backend = torch``: sentence-transformers on PyTorch, on the CPU or a GPU (``Runtime.device``)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..errors import StageError
from .base import DEFAULT_MODEL, Backend, offline_environment, resolve_model

log = logging.getLogger(__name__)

NAME = "torch"


class SentenceTransformerEmbedder:
    """sentence-transformers on PyTorch (CPU, or a GPU when one is present)."""

    def __init__(self, model: str, device: str = "auto", batch_size: int = 64):
        self.source, model_identity = resolve_model(model)
        self.identity = f"{NAME}:{model_identity}"
        self.model_name = model
        self.batch_size = batch_size
        self._device = None if device == "auto" else device
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                offline_environment()
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                try:
                    self._model = SentenceTransformer(self.source, device=self._device, local_files_only=True)
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


def _load(model: str, device: str, batch_size: int, models: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(model, device, batch_size)


BACKEND = Backend(
    name=NAME,
    label="Accurate (PyTorch)",
    load=_load,
    libraries=("sentence-transformers", "torch", "transformers"),
)
