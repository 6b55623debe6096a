"""Shared by the backends that build a model file once: where it lives, and building it safely.

A built model (an ONNX export, a distilled static model) lives in ``<models folder>/<name>``
(one folder for every cache: ``Runtime.models_folder``), where the name carries a hash of
everything the files depend on (the source model's identity, the library versions, the recipe).
It is built in a temporary folder beside it and renamed into place, so a crash or a second
process never leaves a half-written model behind.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..cache import chain_key
from ..errors import StageError
from .base import Report, quiet

log = logging.getLogger(__name__)
_build_lock = threading.Lock()  # one build at a time in a process; other processes race safely
STALE_BUILD_S = 6 * 3600  # a temporary build folder this old was left by a killed process


def lib_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "missing"


def load_transformer(path: str, **kwargs):
    """``(model, tokenizer)`` from a local folder, without progress bars on the terminal."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    return AutoModel.from_pretrained(path, **kwargs).eval(), AutoTokenizer.from_pretrained(path)


def model_folder(root: Path, backend: str, model_identity: str, depends_on: dict[str, str]) -> Path:
    slug = re.sub(r"[^A-Za-z0-9.-]+", "-", model_identity.split("@")[0].rsplit("/", 1)[-1])[:40]
    return root / f"{backend}-{slug}-{chain_key(backend, model_identity, depends_on)[:16]}"


def build_once(
    folder: Path,
    build: Callable[[Path, Report], None],
    what: str,
    about: dict[str, str],
    report: Report = quiet,
    took: str = "",
) -> Path:
    """``folder`` as built by ``build(tmp, report)``; built only if it is not there yet.

    ``report`` hears each step as "building <what> once (took <took>): <step>", then how long the
    build took here. Safe with two processes building at once: each builds in a temporary folder of
    its own and renames it into place; the second rename fails and that process keeps the first's.
    A build that stops (an error, Ctrl-C) leaves no folder, so the next use builds again."""
    done = folder / "built.json"
    if done.exists():
        return folder
    with _build_lock:
        if done.exists():
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        if folder.exists():  # left half-built by hand (built.json is written last): start over
            shutil.rmtree(folder)
        _remove_stale_builds(folder)
        log.info("embed: building %s once into %s (later runs load it)", what, folder)
        heading = f"building {what} once" + (f" (took {took})" if took else "")
        began = time.monotonic()
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            build(tmp, lambda fraction, step: report(fraction, f"{heading}: {step}"))
            seconds = time.monotonic() - began
            (tmp / "built.json").write_text(
                json.dumps({**about, "build_seconds": f"{seconds:.1f}"}, indent=1, sort_keys=True)
            )
            try:
                tmp.rename(folder)
            except OSError:  # another process finished first: keep its copy
                if not done.exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("embed: built %s in %.1f s", what, seconds)
    report(1.0, f"built {what} in {seconds:.0f} s (once: later runs load it from {folder.parent})")
    return folder


def _remove_stale_builds(folder: Path) -> None:
    """Temporary folders of builds that were killed (SIGKILL skips their clean-up); a build under
    way in another process is younger than ``STALE_BUILD_S``."""
    now = time.time()
    for old in folder.parent.glob(f".{folder.name}-*"):
        try:
            if now - old.stat().st_mtime > STALE_BUILD_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


def local_model_dir(source: str) -> Path | None:
    """The folder of a sentence-transformers model: ``source`` itself, or its local hub snapshot."""
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    for repo in (source, f"sentence-transformers/{source}"):
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except Exception:  # not in the local cache under this name (downloads are off)
            continue
    return None


def sentence_layout(folder: Path) -> dict:
    """Where the transformer sits, how tokens are pooled and how long inputs may be."""

    def read(path: Path) -> dict:
        return json.loads(path.read_text()) if path.exists() else {}

    modules = read(folder / "modules.json") or []
    transformer = next((m.get("path", "") for m in modules if m.get("type", "").endswith("Transformer")), "")
    pooling_path = next((m.get("path") for m in modules if m.get("type", "").endswith("Pooling")), None)
    pooling = read(folder / pooling_path / "config.json") if pooling_path else {}
    if pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    elif pooling.get("pooling_mode_mean_tokens", True) and not any(
        pooling.get(k) for k in ("pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    ):
        mode = "mean"
    else:
        mode = "unsupported"
    config = read(folder / transformer / "sentence_bert_config.json") or read(
        folder / "sentence_bert_config.json"
    )
    return {
        "transformer": str(folder / transformer),
        "pooling": mode,
        "max_seq_length": int(config.get("max_seq_length") or 512),
    }


def source_layout(source: str, backend: str) -> dict:
    """``sentence_layout`` of the model to build from; a StageError naming a way out if none."""
    folder = local_model_dir(source)
    layout = sentence_layout(folder) if folder is not None else None
    if layout is None or layout["pooling"] == "unsupported":
        raise StageError(
            "embed",
            f"embed.backend={backend} builds its model from a local sentence-transformers model "
            f"with mean or CLS pooling; {source!r} is "
            + ("not on this machine" if layout is None else "pooled another way"),
            hint="use the default model, or embed.backend=torch for this model",
        )
    return layout
