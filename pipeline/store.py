"""Workspaces: uploaded tables and their results on disk, by content hash.

A workspace is a folder named by an unguessable token (the app keeps it in the URL). Only
tokens this server issued open a new workspace: each carries an HMAC of its random part under a
server secret kept outside the workspaces folder (``Tokens``), so nobody can make up a
guessable one. Each dataset lives in ``<workspace>/datasets/<sha256>/`` with its original
bytes, the table parsed once (``table.parquet``, so a rerun never parses the upload again), a
small ``meta.json``, the user's ``state.json`` (text column, settings, edit log) and its own
pipeline cache, so deleting a dataset deletes its cached results, and one workspace can
never list or read another's files. A quota caps what one workspace may hold on disk.

With sign-in (``Team``), each person has one workspace, ``people/<sha256 of issuer and
subject>/``, which no URL names (a token cannot contain ``/``), and may share one dataset
read-only with another person by email (``people/shares.json``). A read-only view
(``Workspace.read_only``) lists and reads only the shared datasets and refuses every write of the
owner's data: uploads, settings, edits, deletion.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .dataset_state import DatasetState
from .errors import InputError
from .io import read_table, suggest_text_column
from .operator import Limits
from .recent import Recent
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
        self._open(token, path, quota_bytes, limits)

    def _open(
        self,
        token: str,
        path: Path,
        quota_bytes: int,
        limits: Limits | None,
        only: frozenset[str] | None = None,
    ) -> None:
        self.token = token  # "" for a person's workspace: no link opens it
        self.path = path
        self.quota_bytes = quota_bytes  # 0 = no quota
        self.limits = limits
        self.only = only  # a read-only view: the datasets it may read; None = all, writable
        # the folder is made by the first upload, not by a visit: a crawler opening the page a
        # million times without a link leaves nothing on disk

    @classmethod
    def at(
        cls,
        path: str | Path,
        *,
        quota_bytes: int = 0,
        limits: Limits | None = None,
        only: frozenset[str] | None = None,
    ) -> Workspace:
        """The workspace in ``path`` (a person's, found by ``Team``: never from a URL); with
        ``only``, a read-only view of those of its datasets."""
        ws = cls.__new__(cls)
        ws._open("", Path(path), quota_bytes, limits, only)
        return ws

    @property
    def read_only(self) -> bool:
        """Someone else's workspace, seen through the datasets they shared: nothing is written."""
        return self.only is not None

    def _writable(self, what: str) -> None:
        if self.read_only:
            raise InputError(
                f"{what} is not possible: this dataset was shared with you read-only",
                hint="explore and download it; to change it, ask its owner, or upload your own copy",
                stage="workspace",
            )

    def _dir(self, dataset_id: str) -> Path:
        if not _DATASET_ID.fullmatch(dataset_id or "") or (
            self.only is not None and dataset_id not in self.only
        ):
            raise InputError(
                f"unknown dataset {dataset_id!r}", hint="pick a dataset from the list", stage="workspace"
            )
        return self.path / "datasets" / dataset_id

    def add(self, data: bytes, name: str) -> tuple[DatasetInfo, Table]:
        """Validate and keep an upload, parsed once; the same bytes twice are stored once.

        Refused (``InputError``) before anything is written when the table is past the limits
        or the workspace would pass its quota."""
        self._writable("adding a file here")
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
            if self.only is not None and folder.name not in self.only:
                continue
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
        self._writable("changing its settings or edits")
        _write_json(self._dir(dataset_id) / "state.json", state)

    def dataset_state(self, dataset_id: str) -> DatasetState:
        """The dataset's typed state (text column, settings, edit log); an empty one at first."""
        return DatasetState.from_dict(self.state(dataset_id))

    def save_dataset_state(self, dataset_id: str, state: DatasetState) -> None:
        """Written atomically: a reader sees the old state or the new one, never half of one."""
        self.save_state(dataset_id, state.to_dict())

    def delete(self, dataset_id: str) -> None:
        """Remove the dataset, its state and its cached results."""
        self._writable("deleting it")
        shutil.rmtree(self._dir(dataset_id), ignore_errors=True)


# ---------------------------------------------------------------------------- people and sharing

PEOPLE_DIR = "people"  # not a valid token (too short): no ?ws= link reaches it
SHARES_FILE = "shares.json"
MAX_SHARES = 10_000  # a whole team's worth; more is a runaway script, not people
# conservative on purpose: an address is only ever compared, never a path, but one with "/", "\\",
# quotes, spaces or control characters is refused rather than stored
_EMAIL = re.compile(r"[a-z0-9.!#$%&'*+=?^_`{|}~-]{1,64}@[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63})+")


def normalize_email(text: str) -> str:
    """``text`` as an address shares are recorded under (trimmed, lower case), or ``InputError``."""
    email = str(text or "").strip().lower()
    if len(email) > 254 or not _EMAIL.fullmatch(email) or ".." in email:
        raise InputError(
            f"{str(text)[:80]!r} is not an email address",
            hint="type the address the person signs in with, e.g. name@example.org",
            stage="sharing",
        )
    return email


@dataclass(frozen=True)
class Person:
    """Who signed in, from the identity provider's claims (``iss``, ``sub``, ``email``,
    ``email_verified``, ``name``). Their workspace is named by ``id``: a hash of the issuer and the
    subject, which never change for one account (an email or a name can)."""

    issuer: str
    subject: str
    email: str = ""
    email_verified: bool = False
    name: str = ""

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Person:
        issuer, subject = str(claims.get("iss") or "").strip(), str(claims.get("sub") or "").strip()
        if not issuer or not subject:
            raise InputError(
                "the identity provider did not say who signed in (no iss or sub claim)",
                hint="the person running Clusterlab should check the [auth] settings",
                stage="sign-in",
            )
        # some providers send the flag as the string "true"; anything else is not verified
        flag = claims.get("email_verified")
        verified = flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")
        return cls(
            issuer=issuer,
            subject=subject,
            email=str(claims.get("email") or "").strip(),
            email_verified=verified,
            name=str(claims.get("name") or "").strip(),
        )

    @property
    def id(self) -> str:
        """sha256 of issuer and subject, length-prefixed so no two pairs share one."""
        text = f"{len(self.issuer)}:{self.issuer}{self.subject}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def verified_email(self) -> str:
        """The email, when the provider says it is verified and it is well-formed; else ""."""
        if not self.email_verified:
            return ""
        try:
            return normalize_email(self.email)
        except InputError:
            return ""

    @property
    def label(self) -> str:
        """How others see this person: name and email, or what there is."""
        if self.name and self.email:
            return f"{self.name} ({self.email})"
        return self.name or self.email or "someone"


@dataclass(frozen=True)
class Share:
    """One dataset of ``owner``'s, shared read-only with whoever signs in with ``email`` verified.

    ``recipient`` is empty until that person first signs in; from then on the share is theirs
    alone (another account that later gets the same verified address does not see it)."""

    owner: str
    owner_label: str
    dataset: str
    dataset_name: str
    email: str
    shared_at: str
    recipient: str = ""


class Team:
    """People's workspaces and what they share, in the workspaces folder (``people/``).

    Nothing here trusts a URL: a person is who the identity provider says (``Person``), a
    workspace is found from their id, and a shared dataset opens only for the person it was
    shared with, as a read-only view."""

    def __init__(self, root: str | Path, *, quota_bytes: int = 0, limits: Limits | None = None):
        self.root = Path(root) / PEOPLE_DIR
        self.quota_bytes = quota_bytes
        self.limits = limits

    def workspace(self, person: Person) -> Workspace:
        """The person's own workspace (made on first sign-in, with a note of who owns it)."""
        ws = Workspace.at(self.root / person.id, quota_bytes=self.quota_bytes, limits=self.limits)
        owner = {
            "issuer": person.issuer,
            "subject": person.subject,
            "email": person.email,
            "name": person.name,
        }
        path = ws.path / "person.json"
        try:
            if not path.exists() or json.loads(path.read_text(encoding="utf-8")) != owner:
                ws.path.mkdir(parents=True, exist_ok=True)  # a signed-in person's: made at sign-in
                _write_json(path, owner)
        except (OSError, ValueError):
            log.warning("could not record the owner of %s", ws.path, exc_info=True)
        return ws

    # -- sharing

    def share(self, owner: Person, dataset_id: str, email: str) -> Share:
        """Share one of ``owner``'s datasets with ``email``; the same share twice is one.

        The recipient need not have signed in yet: it is recorded by address and opens only for a
        person whose provider says that address is verified (``shared_with``)."""
        address = normalize_email(email)
        if address in {owner.verified_email, owner.email.strip().lower()}:
            raise InputError("that is your own address", hint="type the other person's", stage="sharing")
        ws = self.workspace(owner)
        if not (ws._dir(dataset_id) / "meta.json").exists():  # _dir: InputError for a malformed id
            raise InputError(f"unknown dataset {dataset_id!r}", hint="open one of yours", stage="sharing")
        info = ws.info(dataset_id)
        with self._locked() as shares:
            for share in shares:
                if (share.owner, share.dataset, share.email) == (owner.id, dataset_id, address):
                    return share
            if len(shares) >= MAX_SHARES:
                raise InputError("too many shares on this server", hint="revoke some", stage="sharing")
            share = Share(
                owner=owner.id,
                owner_label=owner.label,
                dataset=dataset_id,
                dataset_name=info.name,
                email=address,
                shared_at=datetime.now(UTC).isoformat(timespec="seconds"),
            )
            shares.append(share)
        return share

    def revoke(self, owner: Person, dataset_id: str, email: str | None = None) -> int:
        """Take back a share (every share of the dataset when ``email`` is None); how many went."""
        address = None if email is None else str(email).strip().lower()
        with self._locked() as shares:
            kept = [
                s
                for s in shares
                if not (s.owner == owner.id and s.dataset == dataset_id and address in (None, s.email))
            ]
            gone = len(shares) - len(kept)
            shares[:] = kept
        return gone

    def shared_by(self, owner: Person, dataset_id: str | None = None) -> list[Share]:
        """What ``owner`` shares (of one dataset, or all)."""
        return [s for s in self._read() if s.owner == owner.id and dataset_id in (None, s.dataset)]

    def shared_with(self, person: Person) -> list[Share]:
        """The datasets shared with ``person``: by their verified email, bound to them the first
        time they see it. Nothing without a verified email; never their own; never a dataset its
        owner has deleted."""
        address = person.verified_email
        if not address:
            return []
        if any(s.email == address and not s.recipient and s.owner != person.id for s in self._read()):
            with self._locked() as shares:  # first sign-in since it was shared: it becomes theirs
                shares[:] = [
                    dataclasses.replace(s, recipient=person.id)
                    if s.email == address and not s.recipient and s.owner != person.id
                    else s
                    for s in shares
                ]
        found = [
            s
            for s in self._read()
            if s.email == address and s.recipient == person.id and s.owner != person.id
        ]
        return [s for s in found if (self.root / s.owner / "datasets" / s.dataset / "meta.json").exists()]

    def open_shared(self, person: Person, owner_id: str, dataset_id: str) -> Workspace:
        """A read-only view of the one dataset ``owner_id`` shared with ``person``, or
        ``InputError`` (never shared, revoked, deleted: all look the same from outside)."""
        for share in self.shared_with(person):
            if share.owner == owner_id and share.dataset == dataset_id:
                return Workspace.at(
                    self.root / share.owner,
                    quota_bytes=self.quota_bytes,
                    limits=self.limits,
                    only=frozenset({dataset_id}),
                )
        raise InputError(
            "that dataset is not shared with you (any more)",
            hint="its owner may have stopped sharing it; your own datasets are in the sidebar",
            stage="sharing",
        )

    # -- the file

    def _path(self) -> Path:
        return self.root / SHARES_FILE

    def _read(self) -> list[Share]:
        try:
            rows = json.loads(self._path().read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            log.error("cannot read %s: no dataset is shown as shared", self._path(), exc_info=True)
            return []
        names = {f.name for f in dataclasses.fields(Share)}
        out = []
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and set(row) <= names:
                with contextlib.suppress(TypeError):
                    out.append(Share(**row))
        return out

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[Share]]:
        """The shares, to change in place; written back atomically when the block ends. One writer
        at a time, across processes too (an exclusive lock on a file beside it)."""
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".shares.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                shares = self._read()
                yield shares
                _write_json(self._path(), [asdict(s) for s in shares])
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _write_json(path: Path, data: Any) -> None:
    # no indent: json's C encoder only runs without one (an edit log of 8 merges: 7 ms -> 1.2 ms,
    # 50 ms in a busy server, on every merge, undo and slider step)
    _write_bytes(path, json.dumps(data, ensure_ascii=False).encode("utf-8"))


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
_FRAMES: Recent[pd.DataFrame] = Recent(2)  # the last parsed tables read, by path and mtime


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
    return _FRAMES.get(key, lambda: _read_frame(path))


def _read_frame(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path, memory_map=True)
    return pd.read_pickle(path)


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
