"""Workspaces: uploaded tables and their results on disk, by content hash.

A workspace is a folder named by an unguessable token (the app keeps it in the URL). Only
tokens this server issued open a new workspace: each carries an HMAC of its random part under a
server secret kept outside the workspaces folder (``Tokens``), so nobody can make up a
guessable one. Each dataset lives in ``<workspace>/datasets/<sha256>/`` with its original
bytes, the table parsed once (``table.parquet``, so a rerun never parses the upload again), a
small ``meta.json``, the user's ``state.json`` (text column, settings, edit log) and its own
pipeline cache, so deleting a dataset deletes its cached results, and one workspace can
never list or read another's files. A quota caps what one workspace may hold on disk.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .dataset_state import DatasetState
from .errors import InputError
from .io import read_table, suggest_text_column
from .operator import Limits
from .types import Table

log = logging.getLogger(__name__)

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


def valid_token(token: str | None) -> bool:
    """Well-formed (it may still be one this server never issued: see ``Tokens.issued``)."""
    return bool(token) and _TOKEN.fullmatch(token) is not None


_RANDOM_CHARS = 22  # 128 random bits, URL-safe base64
# what one run keeps per row in the dataset's cache: 384 float32s twice (the embedding chunks and the
# stage's array), the neighbour graph, coordinates, labels (measured: see tests/test_security.py)
RUN_BYTES_PER_ROW = 3_600
_SIGNATURE_CHARS = 22  # 132 bits of HMAC-SHA256
SECRET_FILE = ".clusterlab-token-secret"


class Tokens:
    """Issues workspace tokens and recognises its own: ``random + HMAC(secret, random)``."""

    def __init__(self, secret: bytes):
        if len(secret) < 16:
            raise InputError(
                "the workspace token secret is too short (fewer than 16 bytes)",
                hint="set token_secret under [clusterlab] to a long random string, or remove it",
                stage="settings",
            )
        self._secret = secret

    @classmethod
    def for_root(cls, root: str | Path, configured: str = "") -> Tokens:
        """The operator's ``token_secret``, else one generated on first start beside the workspaces
        folder (owner-only permissions), so it survives restarts and never sits inside a workspace."""
        if configured:
            return cls(configured.encode("utf-8"))
        return cls(_load_or_create_secret(Path(root).expanduser().resolve().parent / SECRET_FILE))

    def new(self) -> str:
        random_part = secrets.token_urlsafe(16)[:_RANDOM_CHARS]
        return random_part + self._sign(random_part)

    def issued(self, token: str | None) -> bool:
        if not valid_token(token) or len(token) != _RANDOM_CHARS + _SIGNATURE_CHARS:
            return False
        random_part, signature = token[:_RANDOM_CHARS], token[_RANDOM_CHARS:]
        return hmac.compare_digest(signature, self._sign(random_part))

    def _sign(self, random_part: str) -> str:
        mac = hmac.new(self._secret, random_part.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode("ascii")[:_SIGNATURE_CHARS]


def _load_or_create_secret(path: Path) -> bytes:
    """Read the secret file, or create it atomically (two servers starting at once agree)."""
    for _ in range(50):
        try:
            secret = path.read_bytes().strip()
            if len(secret) >= 32:
                return secret
        except FileNotFoundError:
            pass
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(prefix=".token-", dir=path.parent)  # mode 0600
            with os.fdopen(handle, "wb") as fh:
                fh.write(secrets.token_hex(32).encode("ascii"))
            try:
                os.link(tmp, path)  # atomic, and fails if another process made it first
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        except OSError as exc:
            raise InputError(
                f"cannot keep the workspace token secret in {path.parent} ({exc.strerror or exc})",
                hint="make that folder writable, or set token_secret under [clusterlab] in "
                ".streamlit/secrets.toml (or CLUSTERLAB_TOKEN_SECRET)",
                stage="settings",
            ) from None
    raise InputError(f"the workspace token secret {path} is empty or too short", stage="settings")


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    name: str
    rows: int
    columns: list[str]
    suggested_column: str | None
    size_bytes: int
    added_at: str
    fingerprint: str = ""  # of the parsed table, so reopening it never hashes every row again
    encoding: str = ""
    delimiter: str = ""
    notes: list[str] = field(default_factory=list)


def _invalid_link() -> InputError:
    return InputError(
        "this workspace link is not valid",
        hint="open the app without a ?ws= part to start a new workspace",
        stage="workspace",
    )


class Workspace:
    """One user's datasets. Every path is derived from validated ids: no traversal.

    With ``tokens``, only a token it issued opens a workspace, or one whose folder exists
    already (links made before tokens were signed keep working)."""

    def __init__(
        self,
        token: str,
        root: str | Path | None = None,
        *,
        tokens: Tokens | None = None,
        quota_bytes: int = 0,
        limits: Limits | None = None,
    ):
        if not valid_token(token):
            raise _invalid_link()
        path = Path(root or default_workspaces_dir()) / token
        if tokens is not None and not tokens.issued(token) and not path.is_dir():
            raise _invalid_link()
        self.token = token
        self.path = path
        self.quota_bytes = quota_bytes  # 0 = no quota
        self.limits = limits
        self.path.mkdir(parents=True, exist_ok=True)

    def _dir(self, dataset_id: str) -> Path:
        if not _DATASET_ID.fullmatch(dataset_id or ""):
            raise InputError(
                f"unknown dataset {dataset_id!r}", hint="pick a dataset from the list", stage="workspace"
            )
        return self.path / "datasets" / dataset_id

    def add(self, data: bytes, name: str) -> tuple[DatasetInfo, Table]:
        """Validate and keep an upload, parsed once; the same bytes twice are stored once.

        Refused (``InputError``) before anything is written when the table is past the limits
        or the workspace would pass its quota."""
        safe_name = Path(name).name[:200] or "upload.csv"
        dataset_id = hashlib.sha256(data).hexdigest()
        folder = self._dir(dataset_id)
        if (folder / "meta.json").exists():
            return self.info(dataset_id), self.table(dataset_id)
        # the kept bytes and the parsed copy: about twice the file (checked before parsing, too)
        self.check_quota(2 * len(data), f"storing {safe_name}")
        table = read_table(data, safe_name, limits=self.limits)  # InputError before anything is stored
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _write_bytes(folder / "source", data)
            _store_frame(folder, table.frame)
            info = DatasetInfo(
                id=dataset_id,
                name=safe_name,
                rows=len(table.frame),
                columns=[str(c) for c in table.frame.columns],
                suggested_column=suggest_text_column(table.frame),
                size_bytes=len(data),
                added_at=datetime.now(UTC).isoformat(timespec="seconds"),
                fingerprint=table.fingerprint,
                encoding=table.encoding,
                delimiter=table.delimiter,
                notes=list(table.notes),
            )
            _write_json(folder / "meta.json", asdict(info))
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)  # nothing half-stored is listed later
            raise _disk_error(exc, f"storing {safe_name}") from None
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
        """The parsed table, read memory-mapped from ``table.parquet`` (the upload is never parsed
        again; a dataset kept before that file existed is parsed once more and gets it)."""
        folder = self._dir(dataset_id)
        info = self.info(dataset_id)
        stored = _stored_frame_path(folder)
        if stored is None or not info.fingerprint:
            table = read_table((folder / "source").read_bytes(), info.name)
            try:
                _store_frame(folder, table.frame)
                meta = asdict(info) | {
                    "fingerprint": table.fingerprint,
                    "encoding": table.encoding,
                    "delimiter": table.delimiter,
                    "notes": list(table.notes),
                }
                _write_json(folder / "meta.json", meta)
            except OSError:
                log.warning("could not keep the parsed table of %s", dataset_id, exc_info=True)
            return table
        frame = _load_frame(stored)
        return Table(
            frame=frame,
            name=info.name,
            fingerprint=info.fingerprint,
            source_sha256=dataset_id,
            encoding=info.encoding,
            delimiter=info.delimiter,
            notes=tuple(info.notes),
        )

    def usage_bytes(self) -> int:
        """What this workspace holds on disk: uploads, parsed tables, caches, state."""
        return _folder_bytes(self.path)

    def check_run_quota(self, dataset_id: str, rows: int) -> None:
        """Refuse a run whose cached results would take the workspace past its quota (a dataset
        that has run before already holds most of what a re-run keeps)."""
        have = _folder_bytes(self.cache_dir(dataset_id))
        self.check_quota(max(0, rows * RUN_BYTES_PER_ROW - have), "clustering this dataset")

    def check_quota(self, needed: int, what: str) -> None:
        """Refuse (before anything is written) work that would take the workspace past its quota."""
        if not self.quota_bytes:
            return
        used = self.usage_bytes()
        if used + needed > self.quota_bytes:
            raise InputError(
                f"{what} needs about {size_text(needed)} more, and this workspace already uses "
                f"{size_text(used)} of its {size_text(self.quota_bytes)}",
                hint="delete datasets you no longer need (sidebar: Delete the open dataset), or ask "
                "the person running Clusterlab to raise workspace_quota_gb",
                stage="workspace",
            )

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

    def dataset_state(self, dataset_id: str) -> DatasetState:
        """The dataset's typed state (text column, settings, edit log); an empty one at first."""
        return DatasetState.from_dict(self.state(dataset_id))

    def save_dataset_state(self, dataset_id: str, state: DatasetState) -> None:
        """Written atomically: a reader sees the old state or the new one, never half of one."""
        self.save_state(dataset_id, state.to_dict())

    def delete(self, dataset_id: str) -> None:
        """Remove the dataset, its state and its cached results."""
        shutil.rmtree(self._dir(dataset_id), ignore_errors=True)


def _write_json(path: Path, data: Any) -> None:
    _write_bytes(path, json.dumps(data, indent=1, ensure_ascii=False).encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    """Atomic: a uniquely named temporary file, then a rename. A crash never leaves half a file,
    and two writers at once never share a temporary name (the last rename wins, whole)."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


TABLE_FILES = ("table.parquet", "table.pkl")
_FRAMES: OrderedDict[tuple[str, int], pd.DataFrame] = OrderedDict()  # the last parsed tables read
_FRAMES_LOCK = threading.Lock()
_FRAMES_KEPT = 2


def _store_frame(folder: Path, frame: pd.DataFrame) -> None:
    """Parquet; a column Parquet cannot hold as it is (numbers and text mixed, from Excel) makes
    it a pickle instead, so every value comes back exactly as parsed."""
    target = folder / TABLE_FILES[0]
    handle, tmp = tempfile.mkstemp(prefix=".table.", suffix=".tmp", dir=folder)
    os.close(handle)
    try:
        out = frame.copy(deep=False)
        if len(set(map(str, out.columns))) == out.shape[1] and all(isinstance(c, str) for c in out.columns):
            try:
                out.to_parquet(tmp, index=False)
            except (ValueError, TypeError, ImportError, NotImplementedError) as exc:
                log.info("table kept as a pickle: Parquet cannot hold it (%s)", type(exc).__name__)
                target = folder / TABLE_FILES[1]
        else:
            target = folder / TABLE_FILES[1]
        if target.name == TABLE_FILES[1]:
            frame.to_pickle(tmp)  # our own file in the server's folder, never a user's
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _stored_frame_path(folder: Path) -> Path | None:
    for name in TABLE_FILES:
        if (folder / name).exists():
            return folder / name
    return None


def _load_frame(path: Path) -> pd.DataFrame:
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns)
    with _FRAMES_LOCK:
        if key in _FRAMES:
            _FRAMES.move_to_end(key)
            return _FRAMES[key]
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path, memory_map=True)
    else:
        frame = pd.read_pickle(path)
    with _FRAMES_LOCK:
        _FRAMES[key] = frame
        while len(_FRAMES) > _FRAMES_KEPT:
            _FRAMES.popitem(last=False)
    return frame


def _folder_bytes(path: Path) -> int:
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # removed while counting
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def size_text(n: float) -> str:
    """``1.2 GB``, ``340.0 MB``, ``12 bytes``."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} GB"


def _disk_error(exc: OSError, what: str) -> InputError:
    import errno

    if exc.errno == errno.ENOSPC:
        return InputError(
            f"{what} failed: the disk holding the workspaces is full",
            hint="delete datasets you no longer need; the person running Clusterlab can free space",
            stage="workspace",
        )
    return InputError(
        f"{what} failed: {exc.strerror or type(exc).__name__}",
        hint="try again; if it persists, tell the person running Clusterlab",
        stage="workspace",
    )
