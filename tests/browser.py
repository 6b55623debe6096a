"""Start the real app and a real browser: shared by tests/test_e2e.py and docs/screenshot.py.

``streamlit run app.py`` runs as a subprocess on 127.0.0.1 on a free port, with its own
workspaces and cache folders; Chromium is Debian's (/usr/bin/chromium), driven by Playwright.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer on {url}/_stcore/health within {timeout_s:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """Stop streamlit and anything it started (its own process group)."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def streamlit_server(
    data_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> Iterator[str]:
    """Run the app; yield its base URL; always stop it. Folders default to fresh temporary ones.

    The server's output goes to a log file whose tail is raised with any start-up failure."""
    with tempfile.TemporaryDirectory(prefix="clusterlab-e2e-") as tmp:
        workspaces = Path(data_dir) if data_dir else Path(tmp, "workspaces")
        cache = Path(cache_dir) if cache_dir else Path(tmp, "cache")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "CLUSTERLAB_WORKSPACES_DIR": str(workspaces),
            "CLUSTERLAB_CACHE_DIR": str(cache),
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        }
        log_path = Path(tmp, "streamlit.log")
        command = [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.address", "127.0.0.1",
            "--server.port", str(port),
            "--server.headless", "true",
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            try:
                wait_healthy(url, process)
            except Exception as exc:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{exc}\n--- streamlit log ---\n{tail}") from exc
            yield url
        finally:
            stop(process)


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def launch_chromium(playwright):
    """Debian's Chromium, headless (Playwright's own browser download does not work here)."""
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    return playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
