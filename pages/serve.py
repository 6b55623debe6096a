"""``python -m pages.serve APP [streamlit options]``: ``streamlit run APP``, warming up as it starts.

``clusterlab app`` (and so ``make run``) becomes this process. It lives with the app, not in
``pipeline`` (which never imports Streamlit), and outside ``pages/ui`` (whose package imports the
whole interface first, delaying the warm-up). ``app.py`` names its pages with ``st.navigation``,
so Streamlit never lists this file as one. It starts the server's warm-up
(``pipeline.warmup.warm_in_background``: the default embedding model loaded, UMAP's compiled
code read) in a thread, then runs Streamlit's own command line in this process, so the warm-up goes on
while the server starts and while its first visitor opens the page and picks a file; the app's
first page view finds it started and starts no second one. Without this (a plain ``streamlit
run app.py``) the app starts it on its first page view.

The operator's ``preload_model`` (``[clusterlab]`` in secrets.toml, or
``$CLUSTERLAB_PRELOAD_MODEL``) is read here as the app reads it; ``clusterlab app`` has already
refused a wrong one, and a wrong one here only means no preload.
"""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # app.py's


def preload_wanted() -> bool:
    from pipeline.errors import PipelineError
    from pipeline.launch import check_settings

    try:
        return check_settings().preload_model
    except PipelineError:
        return False


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import PipelineConfig
    from pipeline.context import Runtime
    from pipeline.warmup import warm_in_background

    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # the warm-up's line, before app.py's
    warm_in_background(PipelineConfig().embed, Runtime(), model=preload_wanted(), freeze=True)
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", "run", *argv]
    return streamlit_main(prog_name="streamlit")  # click exits with the server's status


if __name__ == "__main__":
    sys.exit(main())
