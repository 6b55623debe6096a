"""Workspaces: uploaded tables and their results on disk, by content hash.

A workspace is a folder named by an unguessable token (the app keeps it in the URL).
Each dataset lives in ``<workspace>/datasets/<sha256>/`` with its original bytes, a small
``meta.json``, the user's ``state.json`` (text column, settings, edit log) and its own
pipeline cache, so deleting a dataset deletes its cached results, and one workspace can
never list or read another's files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import InputError
from .io import read_table, suggest_text_column
from .types import Table

ENV_WORKSPACES_DIR = "CLUSTERLAB_WORKSPACES_DIR"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,64}")
_DATASET_ID = re.compile(r"[0-9a-f]{64}")


def default_workspaces_dir() -> Path:
    """``$CLUSTERLAB_WORKSPACES_DIR``, else the user's data folder (e.g. ~/.local/share/clusterlab)."""
    env = os.environ.get(ENV_WORKSPACES_DIR)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("clusterlab", appauthor=False)) / "workspaces"


def new_token() -> str:
    """An unguessable workspace name (144 random bits)."""
    return secrets.token_urlsafe(18)


def valid_token(token: str | None) -> bool:
    return bool(token) and _TOKEN.fullmatch(token) is not None


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    name: str
    rows: int
    columns: list[str]
    suggested_column: str | None
    size_bytes: int
    added_at: str


class Workspace:
    """One user's datasets. Every path is derived from validated ids: no traversal."""

    def __init__(self, token: str, root: str | Path | None = None):
        if not valid_token(token):
            raise InputError(
                "this workspace link is not valid",
                hint="open the app without a ?ws= part to start a new workspace",
                stage="workspace",
            )
        self.token = token
        self.path = Path(root or default_workspaces_dir()) / token
        self.path.mkdir(parents=True, exist_ok=True)

    def _dir(self, dataset_id: str) -> Path:
        if not _DATASET_ID.fullmatch(dataset_id or ""):
            raise InputError(
                f"unknown dataset {dataset_id!r}", hint="pick a dataset from the list", stage="workspace"
            )
        return self.path / "datasets" / dataset_id

    def add(self, data: bytes, name: str) -> tuple[DatasetInfo, Table]:
        """Validate and keep an upload; the same bytes twice are stored once."""
        safe_name = Path(name).name[:200] or "upload.csv"
        table = read_table(data, safe_name)  # raises InputError before anything is stored
        dataset_id = hashlib.sha256(data).hexdigest()
        folder = self._dir(dataset_id)
        if not (folder / "meta.json").exists():
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "source").write_bytes(data)
            info = DatasetInfo(
                id=dataset_id,
                name=safe_name,
                rows=len(table.frame),
                columns=[str(c) for c in table.frame.columns],
                suggested_column=suggest_text_column(table.frame),
                size_bytes=len(data),
                added_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            _write_json(folder / "meta.json", asdict(info))
        return self.info(dataset_id), table

    def info(self, dataset_id: str) -> DatasetInfo:
        meta = json.loads((self._dir(dataset_id) / "meta.json").read_text(encoding="utf-8"))
        return DatasetInfo(**meta)

    def datasets(self) -> list[DatasetInfo]:
        """This workspace's datasets, newest first."""
        root = self.path / "datasets"
        if not root.exists():
            return []
        infos = []
        for folder in root.iterdir():
            if _DATASET_ID.fullmatch(folder.name) and (folder / "meta.json").exists():
                try:
                    infos.append(self.info(folder.name))
                except (OSError, ValueError, TypeError):
                    continue  # a half-written dataset is not listed
        return sorted(infos, key=lambda i: i.added_at, reverse=True)

    def table(self, dataset_id: str) -> Table:
        folder = self._dir(dataset_id)
        return read_table((folder / "source").read_bytes(), self.info(dataset_id).name)

    def cache_dir(self, dataset_id: str) -> Path:
        return self._dir(dataset_id) / "cache"

    def state(self, dataset_id: str) -> dict[str, Any]:
        path = self._dir(dataset_id) / "state.json"
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def save_state(self, dataset_id: str, state: dict[str, Any]) -> None:
        _write_json(self._dir(dataset_id) / "state.json", state)

    def delete(self, dataset_id: str) -> None:
        """Remove the dataset, its state and its cached results."""
        shutil.rmtree(self._dir(dataset_id), ignore_errors=True)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a file
