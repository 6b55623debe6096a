"""``clusterlab app``: start the web app with the project's own settings, from any folder.

Streamlit reads ``.streamlit/config.toml`` and ``.streamlit/secrets.toml`` from the folder it is
started in, so the app is started in the project's folder (the one holding ``app.py``), exactly as
``make run`` does: the upload limit, the theme, the missing file watcher and the operator's
``[clusterlab]`` settings are the same wherever the command is typed. Relative paths in
``$CLUSTERLAB_WORKSPACES_DIR``, ``$CLUSTERLAB_CACHE_DIR`` and ``$CLUSTERLAB_MODELS_DIR`` are made
absolute first, against the folder the command was typed in, so that move does not move the data.

Before anything starts, the ``[clusterlab]`` settings are checked as the app checks them
(``OperatorSettings.load``): a wrong one is one line naming it and a non-zero exit, never a
server that starts and then shows every visitor an error. The process then becomes streamlit
(``exec`` of ``python -m pages.serve``, which starts the server's warm-up and runs Streamlit in
the same process): a service manager's signals reach the server itself. See docs/deploy.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from .cache import ENV_CACHE_DIR, ENV_MODELS_DIR
from .errors import ConfigError, PipelineError
from .operator import OperatorSettings, check_auth_section
from .store import ENV_WORKSPACES_DIR

ROOT = Path(__file__).resolve().parent.parent  # the project's folder: app.py, pages/, .streamlit/
APP = ROOT / "app.py"
SECRETS = ROOT / ".streamlit" / "secrets.toml"
DEFAULT_ADDRESS = "127.0.0.1"
DEFAULT_PORT = 8501
FOLDER_VARIABLES = (ENV_WORKSPACES_DIR, ENV_CACHE_DIR, ENV_MODELS_DIR)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``clusterlab app``; any other option goes to ``streamlit run`` as it is."""
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        help=f"address to serve on (default {DEFAULT_ADDRESS}: this machine only; 0.0.0.0: the network)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")


def operator_section(secrets: Path = SECRETS, name: str = "clusterlab") -> dict[str, Any]:
    """The ``[clusterlab]`` table (or another top-level one) of ``secrets`` ({} when the file
    does not exist or has none)."""
    if not secrets.exists():
        return {}
    try:
        data = tomllib.loads(secrets.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {secrets} ({getattr(exc, 'strerror', None) or type(exc).__name__})",
            hint="make it readable by the user that runs the app",
            stage="settings",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{secrets} is not valid TOML: {exc}", hint="fix the line it names", stage="settings"
        ) from None
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(
            f"{name} in {secrets} must be a table ([{name}]); found {type(section).__name__}",
            hint=f"write the settings under a [{name}] line",
            stage="settings",
        )
    return section


def check_settings(secrets: Path = SECRETS, environ: Mapping[str, str] | None = None) -> OperatorSettings:
    """The operator's settings, checked the way the app checks them, and Streamlit's ``[auth]``
    section when sign-in is on; ConfigError names a wrong one."""
    settings = OperatorSettings.load(operator_section(secrets), environ)
    auth = operator_section(secrets, "auth")
    if auth:
        check_auth_section(auth, settings.sign_in_provider)
    return settings


def absolute_folders(environ: MutableMapping[str, str], base: Path) -> None:
    """Make the folder variables absolute against ``base`` (the caller's folder), in place."""
    for name in FOLDER_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            environ[name] = str((base / Path(value).expanduser()).resolve())


def streamlit_command(address: str, port: int, extra: list[str]) -> list[str]:
    """``streamlit run <project>/app.py`` in this Python, on ``address:port``, plus ``extra``,
    through ``pages.serve``: the server's warm-up starts with the process."""
    return [
        sys.executable, "-m", "pages.serve", str(APP),
        "--server.address", address,
        "--server.port", str(port),
        *extra,
    ]  # fmt: skip


def main(args: argparse.Namespace, extra: list[str]) -> int:
    """Check the settings, then become ``streamlit run`` in the project's folder; 2 on a bad setting."""
    try:
        if not APP.is_file():
            raise ConfigError(
                f"clusterlab app needs the project's folder (app.py, pages/, .streamlit/); {APP} "
                "does not exist",
                hint="install the project from its checkout (`pip install -e .`, which make run does)",
                stage="app",
            )
        check_settings()
        if not 0 < args.port < 65536:
            raise ConfigError(f"--port {args.port} is not a port", hint="use 1..65535", stage="app")
    except PipelineError as exc:  # ConfigError, from OperatorSettings.load: a line, not a traceback
        print(f"error: [{exc.stage}] {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    absolute_folders(env, Path.cwd())
    command = streamlit_command(args.address, args.port, extra)
    print(f"Clusterlab: open http://{args.address}:{args.port} in your browser", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os.chdir(ROOT)
    os.execve(sys.executable, command, env)
    return 0  # not reached: the process is streamlit now
