"""``embed.backend = torch``: sentence-transformers on PyTorch, on the CPU or a GPU (``Runtime.device``)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from ..errors import StageError
from .base import DEFAULT_MODEL, Backend, Report, offline_environment, quiet, resolve_model

log = logging.getLogger(__name__)

NAME = "torch"
# where each step of a first load begins, as shares of its time (measured on two busy cores:
# torch 3 s, transformers 2.5 s, sentence-transformers 9 s, then the weights 0.5 s)
TRANSFORMERS_AT, SENTENCE_TRANSFORMERS_AT, WEIGHTS_AT = 0.2, 0.35, 0.95


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

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self, report: Report = quiet) -> None:
        """Import PyTorch and sentence-transformers, and read the model's weights."""
        with self._lock:
            if self._model is None:
                offline_environment()
                # imported one by one so the progress moves: together they take 95% of a first load
                report(0.0, "importing PyTorch")
                import torch  # noqa: F401

                report(TRANSFORMERS_AT, "importing transformers")
                from transformers import AutoModel  # noqa: F401
                from transformers.utils import logging as hf_logging

                report(SENTENCE_TRANSFORMERS_AT, "importing sentence-transformers")
                from sentence_transformers import SentenceTransformer

                hf_logging.disable_progress_bar()
                report(WEIGHTS_AT, "reading its weights")
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

    def _load(self):
        self.load()
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
