"""``embed.backend = model2vec``: a static (lookup-table) model distilled from the chosen model.

model2vec's ``distill`` runs every token of the model's vocabulary through the transformer
once, reduces the vectors with PCA and weights them (SIF); a text's vector is then the mean of
its tokens' rows. The distilled model is built on first use from the local weights (see
``BUILD_TOOK``), kept in the shared models folder (``Runtime.models_folder``), and loaded from
there afterwards.
Nothing is downloaded. A preview backend: much faster, less accurate than the transformer.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import StageError
from . import _build
from .base import Backend, Report, offline_environment, part, quiet, resolve_model

log = logging.getLogger(__name__)

NAME = "model2vec"
RECIPE = 1  # bump when the distillation settings below change: the model is rebuilt
PCA_DIMS = 256  # model2vec's default
DEPENDS_ON = ("model2vec", "torch", "transformers", "skeletoken", "tokenizers")
# the first use's build, measured from a fresh models folder (what the progress says meanwhile)
BUILD_TOOK = "2 to 3 min on a busy 2-core machine"  # 128, 135 and 193 s measured
TOKENS_FROM, TOKENS_TO = 0.1, 0.95  # the share of a measured build that ran every token through it
REPORT_EVERY_S = 1.0


def identity_suffix() -> str:
    return f"|model2vec=={_build.lib_version('model2vec')}|r{RECIPE}"


def distill(layout: dict, out: Path, device: str, report: Report = quiet) -> None:
    """Distill ``layout``'s transformer into a model2vec folder ``out``."""
    report(0.0, "reading the transformer")
    from model2vec.distill import distill_from_model

    model, tokenizer = _build.load_transformer(layout["transformer"])

    def tokens(done: int, total: int) -> None:
        share = TOKENS_FROM + (TOKENS_TO - TOKENS_FROM) * done / total
        report(share, f"running its {total:,} vocabulary tokens through it ({done:,} done)")

    # model2vec draws a tqdm bar on sys.stderr and offers no switch for it. The bar takes sys.stderr
    # when it is made, so redirecting it for the build catches the bar (the CLI's bars and log
    # handlers hold the real stream); the bar's counts become progress, and what else is written
    # there meanwhile goes to the debug log
    captured = _BarReader(tokens)
    report(TOKENS_FROM, "running its vocabulary through it")
    with contextlib.redirect_stderr(captured):
        static = distill_from_model(
            model=model,
            tokenizer=tokenizer,
            device=None if device == "auto" else device,
            pca_dims=PCA_DIMS,
            pooling=layout["pooling"] if layout["pooling"] == "mean" else "first",
        )
    log.debug("embed: stderr during the model2vec distillation: %s", captured.getvalue()[-2000:])
    report(0.97, "saving the static model")
    static.save_pretrained(str(out))


class _BarReader(io.StringIO):
    """Stands in for stderr during a distillation: keeps what is written, and hands the counts of
    tqdm's bar ("Encoding tokens:  45%|...| 13736/30522 [...]") to ``on_count`` (once a second)."""

    COUNT = re.compile(r"(\d+)/(\d+)")

    def __init__(self, on_count: Callable[[int, int], None]):
        super().__init__()
        self.on_count = on_count
        self._last = 0.0

    def write(self, text: str) -> int:
        line = next((part for part in reversed(text.split("\r")) if part.strip()), "")
        found = self.COUNT.search(line)
        if found:
            done, total = int(found[1]), int(found[2])
            now = time.monotonic()
            if total and 0 < done and (now - self._last >= REPORT_EVERY_S or done >= total):
                self._last = now
                self.on_count(min(done, total), total)
        return super().write(text)


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

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self, report: Report = quiet) -> None:
        """Open the static model (distilling it first, on its first use on this machine)."""
        with self._lock:
            if self._model is None:
                offline_environment()
                report(0.0, "starting model2vec")
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
                    lambda out, step: distill(layout, out, self.device, step),
                    f"the {NAME} model",
                    about,
                    part(report, 0.05, 0.95),
                    took=BUILD_TOOK,
                )
                report(0.95, "opening the static model")
                self._model = StaticModel.from_pretrained(str(self.folder))

    def _load(self):
        self.load()
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
