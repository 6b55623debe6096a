"""Start the real app and a real browser: shared by tests/test_e2e.py and docs/screenshot.py.

The helpers live in ``pipeline/bench_browser.py``, which the browser benchmark
(``python -m pipeline.bench --browser``) runs on: ``streamlit run app.py`` as a subprocess on
127.0.0.1 on a free port, with its own workspaces and cache folders; Chromium is Debian's
(/usr/bin/chromium), driven by Playwright.
"""

from pipeline.bench_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    chromium_available,
    free_port,
    launch_chromium,
    stop,
    streamlit_server,
    wait_healthy,
)

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "ROOT",
    "chromium_available",
    "free_port",
    "launch_chromium",
    "stop",
    "streamlit_server",
    "wait_healthy",
]
