"""``embed.backend = model2vec``: a static (lookup-table) model distilled from the chosen model.

model2vec's ``distill`` runs every token of the model's vocabulary through the transformer
once, reduces the vectors with PCA and weights them (SIF); a text's vector is then the mean of
its tokens' rows. The distilled model is built on first use from the local weights (about a
minute on two cores for MiniLM), kept in ``<cache>/models``, and loaded from there afterwards.
Nothing is downloaded. A preview backend: much faster, less accurate than the transformer.
"""

from __future__ import annotations

import contextlib
import io
import logging
import threading
from pathlib import Path

import numpy as np

from ..errors import StageError
from . import _build
from .base import Backend, offline_environment, resolve_model

log = logging.getLogger(__name__)

NAME = "model2vec"
RECIPE = 1  # bump when the distillation settings below change: the model is rebuilt
PCA_DIMS = 256  # model2vec's default
DEPENDS_ON = ("model2vec", "torch", "transformers", "skeletoken", "tokenizers")


def identity_suffix() -> str:
    return f"|model2vec=={_build.lib_version('model2vec')}|r{RECIPE}"


def distill(layout: dict, out: Path, device: str) -> None:
    """Distill ``layout``'s transformer into a model2vec folder ``out``."""
    from model2vec.distill import distill_from_model

    model, tokenizer = _build.load_transformer(layout["transformer"])
    # model2vec draws a tqdm bar on sys.stderr and offers no switch for it; the runner's heartbeat
    # events report progress instead. The bar takes sys.stderr when it is made, so redirecting it
    # for the build catches the bar (the CLI's bars and log handlers hold the real stream); what
    # else is written there meanwhile goes to the debug log
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        static = distill_from_model(
            model=model,
            tokenizer=tokenizer,
            device=None if device == "auto" else device,
            pca_dims=PCA_DIMS,
            pooling=layout["pooling"] if layout["pooling"] == "mean" else "first",
        )
    log.debug("embed: stderr during the model2vec distillation: %s", captured.getvalue()[-2000:])
    static.save_pretrained(str(out))


class Model2VecEmbedder:
    """A distilled static model: token lookups and a mean, on the CPU with numpy."""

    def __init__(self, source: str, model_identity: str, models_root: Path, device: str = "auto"):
        self.source = source
        self.model_identity = model_identity
        self.identity = f"{NAME}:{model_identity}{identity_suffix()}"
        self.device = device  # only for distilling; encoding is numpy
        self.folder = _build.model_folder(
            models_root,
            NAME,
            model_identity,
            {name: _build.lib_version(name) for name in DEPENDS_ON}
            | {"recipe": str(RECIPE), "pca_dims": str(PCA_DIMS)},
        )
        self._model = None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                offline_environment()
                try:
                    from model2vec import StaticModel
                except ImportError as exc:
                    raise StageError(
                        "embed",
                        "embed.backend=model2vec needs the model2vec package, which is not installed",
                        hint="run `pip install -r requirements.txt`, or use embed.backend=torch",
                    ) from exc
                layout = _build.source_layout(self.source, NAME)
                about = {"source": self.model_identity, "recipe": str(RECIPE), **layout}
                _build.build_once(
                    self.folder,
                    lambda out: distill(layout, out, self.device),
                    "the distilled model2vec model",
                    about,
                )
                self._model = StaticModel.from_pretrained(str(self.folder))
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        vectors = np.asarray(model.encode(list(texts), show_progress_bar=False), dtype=np.float32)
        # stored as float16: normalise again in float32 so every norm is 1 to float32 precision
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.maximum(norms, 1e-12)
        # a text with no known token (only emoji, say) has no vector; such texts share one
        # fixed direction, so they stay unit vectors and end up together
        vectors[norms[:, 0] == 0] = 1.0 / np.sqrt(vectors.shape[1])
        return vectors


def _load(model: str, device: str, batch_size: int, models: Path) -> Model2VecEmbedder:
    source, model_identity = resolve_model(model)
    return Model2VecEmbedder(source, model_identity, models, device)


BACKEND = Backend(
    name=NAME,
    label="Preview (static, ~90x, lower quality)",
    load=_load,
    libraries=("model2vec",),
    suffix=identity_suffix,
    cpu_only=True,
    builds=True,
)
