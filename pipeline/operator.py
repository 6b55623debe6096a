"""Operator settings: what the person running the server decides, never a visitor.

They live under ``[clusterlab]`` in ``.streamlit/secrets.toml``; each is also read from an
environment variable ``CLUSTERLAB_<NAME>`` (upper case), which wins over the file. The app
reads all of them; the command line, run by the machine's owner, obeys only the size limits
(``max_rows``, ``max_cells``; ``--max-rows`` overrides the first).

    [clusterlab]
    llm_base_url = "https://api.openai.com/v1"   # the only URL the server's own key is sent to
    llm_allowed_hosts = ["ollama.internal:11434"] # private addresses a typed URL may reach
    max_rows = 2000000
    max_cells = 50000000
    workspace_quota_gb = 20
    token_secret = "..."                          # signs workspace links (else generated)
    workspaces_dir = "/srv/clusterlab/workspaces"
    token_links = false                           # with sign-in on: open ?ws= links too
    sign_in_provider = ""                         # which [auth.<name>] provider signs people in
    preload_model = true                          # load the embedding model as the server starts

Sign-in itself is Streamlit's: an ``[auth]`` section at the top level of secrets.toml (Streamlit
reads it nowhere else) turns it on; ``check_auth_section`` says what it lacks before anyone
presses the button. An unknown key under ``[clusterlab]`` is an error, not silently ignored.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .config import DEFAULT_LLM_URL
from .errors import ConfigError

ENV_PREFIX = "CLUSTERLAB_"
DEFAULT_MAX_ROWS = 2_000_000
DEFAULT_MAX_CELLS = 50_000_000
DEFAULT_QUOTA_GB = 20.0


@dataclass(frozen=True)
class Limits:
    """How big a table may be, in rows and in cells (rows x columns); 0 = no limit."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_cells: int = DEFAULT_MAX_CELLS

    def __post_init__(self):
        for name in ("max_rows", "max_cells"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"{name} = {value!r} is not allowed; expected a whole number >= 0 (0 = no limit)",
                    hint=f"set {name} under [clusterlab] in .streamlit/secrets.toml or "
                    f"{ENV_PREFIX}{name.upper()}",
                    stage="settings",
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The limits the command line obeys: ``$CLUSTERLAB_MAX_ROWS``/``MAX_CELLS`` or the defaults."""
        environ = os.environ if environ is None else environ
        # only the two limits: another setting's bad value must not stop a command-line run
        names = {ENV_PREFIX + "MAX_ROWS", ENV_PREFIX + "MAX_CELLS"}
        settings = OperatorSettings.load({}, {k: v for k, v in environ.items() if k in names})
        return settings.limits

    def check(self, rows: int, columns: int, name: str) -> None:
        """Refuse a table past the limits, saying by how much and what to do."""
        if self.max_rows and rows > self.max_rows:
            raise too_big(name, f"{rows:,} rows", f"at most {self.max_rows:,} rows", "max_rows")
        if self.max_cells and rows * columns > self.max_cells:
            raise too_big(
                name,
                f"{rows:,} rows x {columns:,} columns = {rows * columns:,} cells",
                f"at most {self.max_cells:,} cells",
                "max_cells",
            )


def too_big(name: str, found: str, allowed: str, setting: str):
    from .errors import InputError

    return InputError(
        f"{name} is too big: it has {found}; this server accepts {allowed}",
        hint="split the file or keep only the columns you need; the person running Clusterlab can "
        f"raise the limit ({setting} under [clusterlab] in .streamlit/secrets.toml or "
        f"{ENV_PREFIX}{setting.upper()}; on the command line, --max-rows)",
    )


@dataclass(frozen=True)
class OperatorSettings:
    """Everything under ``[clusterlab]``; see the module docstring."""

    llm_base_url: str = DEFAULT_LLM_URL
    llm_allowed_hosts: tuple[str, ...] = ()
    max_rows: int = DEFAULT_MAX_ROWS
    max_cells: int = DEFAULT_MAX_CELLS
    workspace_quota_gb: float = DEFAULT_QUOTA_GB
    token_secret: str = field(default="", repr=False)
    workspaces_dir: str = ""
    token_links: bool = False
    sign_in_provider: str = ""
    preload_model: bool = True

    @property
    def limits(self) -> Limits:
        return Limits(self.max_rows, self.max_cells)

    @property
    def quota_bytes(self) -> int:
        return int(self.workspace_quota_gb * 1e9)

    @classmethod
    def load(
        cls, section: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> OperatorSettings:
        """From a ``[clusterlab]`` table (secrets.toml) and the environment, which wins."""
        environ = os.environ if environ is None else environ
        section = dict(section or {})
        known = [item.name for item in fields(cls)]
        unknown = sorted(str(key) for key in section if key not in known)
        if unknown:
            raise ConfigError(
                f"unknown setting{'s' if len(unknown) > 1 else ''} under [clusterlab] in "
                f".streamlit/secrets.toml: {', '.join(unknown)}",
                hint=f"the settings are {', '.join(known)} (see README.md, Operator settings); "
                "fix the spelling or remove the line",
                stage="settings",
            )
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = environ.get(ENV_PREFIX + item.name.upper())
            if raw is None or str(raw).strip() == "":
                raw = section.get(item.name)
            if raw is None:
                continue
            values[item.name] = _parse(item.name, raw, cls.__dataclass_fields__[item.name].default)
        return cls(**values)


def _parse(name: str, raw: Any, default: Any) -> Any:
    where = f"{name} (under [clusterlab] in .streamlit/secrets.toml, or {ENV_PREFIX}{name.upper()})"
    if name == "llm_allowed_hosts":
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        return tuple(str(i).strip().lower() for i in items if str(i).strip())
    if isinstance(default, bool):
        return _parse_bool(where, raw)
    if isinstance(default, str):
        return str(raw).strip()
    try:
        number = float(str(raw).replace("_", "").strip()) if isinstance(raw, str) else float(raw)
    except (TypeError, ValueError):
        number = -1.0
    if number < 0 or (isinstance(default, int) and number != int(number)):
        kind = "a whole number" if isinstance(default, int) else "a number"
        raise ConfigError(
            f"{where} = {raw!r} is not allowed; expected {kind} >= 0",
            hint=f"fix {name}; 0 means no limit",
            stage="settings",
        )
    return int(number) if isinstance(default, int) else number


_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _parse_bool(where: str, raw: Any) -> bool:
    """true/false/1/0/yes/no (any case), or a TOML boolean; anything else is refused, never
    guessed: a misspelt "ture" must not turn a setting off (or on) without a word."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(
        f"{where} = {raw!r} is not allowed; expected true or false",
        hint="write true or false (also accepted: 1/0, yes/no)",
        stage="settings",
    )


AUTH_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


def check_auth_section(auth: Mapping[str, Any], provider: str = "") -> None:
    """Say what Streamlit's ``[auth]`` section lacks before anyone presses "Sign in" (Streamlit
    itself only says so on the click). ``provider``: the ``[auth.<name>]`` table to sign in with
    (``sign_in_provider``), else the keys of ``[auth]`` itself."""
    where = ".streamlit/secrets.toml"
    missing = [key for key in AUTH_KEYS if not str(auth.get(key) or "").strip()]
    table = "[auth]"
    details: Mapping[str, Any] = auth
    if provider:
        table = f"[auth.{provider}]"
        details = auth.get(provider) if isinstance(auth.get(provider), Mapping) else {}
        if not details:
            raise ConfigError(
                f"sign_in_provider = {provider!r}, but {where} has no {table} table",
                hint=f"add {table} with {', '.join(PROVIDER_KEYS)}, or remove sign_in_provider",
                stage="settings",
            )
    missing += [key for key in PROVIDER_KEYS if not str(details.get(key) or "").strip()]
    if missing:
        raise ConfigError(
            f"sign-in is on ([auth] in {where}) but {table} lacks {', '.join(missing)}",
            hint="see README.md, Sign-in for a team; or remove [auth] to turn sign-in off",
            stage="settings",
        )
    redirect = str(auth.get("redirect_uri")).strip()
    if not redirect.startswith(("http://", "https://")) or not redirect.endswith("/oauth2callback"):
        raise ConfigError(
            f"redirect_uri = {redirect!r} in [auth] is not this app's sign-in address",
            hint="it is the app's own URL ending in /oauth2callback, e.g. "
            "https://clusterlab.example.org/oauth2callback (registered with the provider too)",
            stage="settings",
        )
