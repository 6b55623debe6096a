"""Download buttons whose file is built when clicked, not when the page opens.

Streamlit runs a deferred download's callable on its own thread when the button is clicked and
the page does not rerun (``on_click="ignore"``): opening Export costs nothing per format, and a
download never resets what is on screen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("clusterlab.app")


def file_stem(name: str) -> str:
    """A download's name from the dataset's file name: "tickets.csv" -> "tickets"."""
    return name.rsplit(".", 1)[0] or "clusters"


def download(
    where, label: str, build: Callable[[], bytes], file_name: str, mime: str, key: str, **options
) -> None:
    """A button in ``where`` (a column, the sidebar, ``st``) that downloads ``build()``."""

    def built() -> bytes:
        try:
            return build()
        except Exception:  # the browser reports a failed download; the details go to the log
            log.exception("building the download %s failed", file_name)
            raise

    where.download_button(label, built, file_name, mime, key=key, on_click="ignore", **options)
