"""The Explore map as a component that stays mounted (``scatter.js``), so a new clustering or an
edit updates its points in place, and only what changed goes to the browser.

``st.plotly_chart`` hashes its figure into the element's identity: every figure change (the
colours after a slider step, a name after a merge) makes a new element, and the browser builds a
new graph and new WebGL contexts for it, which in a browser drawing WebGL in software (no GPU) was
seconds of every slider step, merge and undo. This component is keyed by name only; its data is
the map in two parts (``plots.map_layers``: the points' base and the clustering's paint), each
as JSON with its revision, and the browser calls ``Plotly.react`` on the graph it has.

plotly.js itself comes from the installed ``plotly`` package (the same file ``--plots`` embeds in
its HTML), served by Streamlit's static file serving (``server.enableStaticServing``) from
``static/`` next to ``app.py``, where ``serve_plotly_js`` copies it. Where it cannot be copied
(a read-only install), the page falls back to ``st.plotly_chart``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

log = logging.getLogger("clusterlab.app")

ROOT = Path(__file__).resolve().parents[2]  # the folder of app.py: Streamlit serves its static/
STATIC_JS = ROOT / "static" / "plotly.min.js"
SCRIPT_URL = "./app/static/plotly.min.js"  # relative: right under a proxy's base path too
SENT = "_map_sent"  # session state: {map key (+ ":base"): the revisions of that part the browser keeps}
ASKED = "_map_asked"  # session state: {map key: the revision the browser asked for again}


@functools.cache
def serve_plotly_js() -> bool:
    """Put the installed plotly.js where Streamlit serves static files (once per process; again
    when the installed one changed). False where that is not possible."""
    import plotly

    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    try:
        if not STATIC_JS.is_file() or STATIC_JS.stat().st_size != source.stat().st_size:
            STATIC_JS.parent.mkdir(exist_ok=True)
            # a copy of its own per caller (two sessions may start at once), then renamed into
            # place: a browser never gets half a file
            handle, partial = tempfile.mkstemp(prefix=".plotly.", suffix=".partial", dir=STATIC_JS.parent)
            os.close(handle)
            try:
                shutil.copyfile(source, partial)
                # mkstemp makes the file readable by its owner only: a server running as another
                # user than `make install-app` would serve a file it cannot read (no map at all)
                shutil.copymode(source, partial)
                os.replace(partial, STATIC_JS)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
        return True
    except OSError:
        log.warning("plotly.js could not be copied to %s; the map falls back to st.plotly_chart", STATIC_JS)
        return False


_map = st.components.v2.component(
    "clusterlab_map",
    js=(Path(__file__).parent / "scatter.js").read_text(encoding="utf-8"),
    css=".clusterlab-map { width: 100%; }",
    isolate_styles=False,  # plotly.js puts its styles in the document's head
)


KEPT = 2  # revisions of each part the browser keeps (scatter.js's KEPT): the current and the one before


def _used(revisions: tuple[str, ...], revision: str) -> tuple[str, ...]:
    """The revisions the browser keeps after it drew ``revision``: as scatter.js keeps them, the
    last ``KEPT`` drawn, most recent last (an undo draws the one before without it being sent)."""
    return (*(r for r in revisions if r != revision), revision)[-KEPT:]


def figure_json(spec: dict) -> str:
    """A dict of ``plots`` (numpy arrays inside: ``map_base``, ``map_paint``) as JSON."""
    import plotly.io

    return plotly.io.to_json(spec, validate=False, engine="json")


def _plotly_chart_regions(selection: dict) -> list:
    """st.plotly_chart's boxes and lassos ({"box": [{"x": [x0, x1], "y": [y0, y1]}], "lasso":
    [{"x": [...], "y": [...]}]}) as scatter.js reports them."""
    regions: list = []
    with contextlib.suppress(TypeError, ValueError, KeyError, AttributeError):
        regions += [{"box": [*b["x"], *b["y"]]} for b in selection.get("box") or []]
        regions += [
            {"lasso": [list(p) for p in zip(a["x"], a["y"], strict=True)]}
            for a in selection.get("lasso") or []
        ]
    return regions


def scatter_map(
    base: str, base_revision: str, paint: str, revision: str, key: str = "map"
) -> tuple[list[dict], list]:
    """Draw the map of ``base`` and ``paint`` (``plots.map_layers`` as ``figure_json``) and
    return what is selected on this revision of it: (the points drawn in the selection, in
    st.plotly_chart's shape [{"curve_number", "point_index"}]; the selection's areas as the
    browser reports them, for ``plots.selection_regions``: every text inside, drawn or not).
    Where plotly.js cannot be served, with st.plotly_chart.

    Each part goes to the browser once per revision: the base (5 MB of JSON at 100,000 texts)
    once per set of points, the paint (0.5 MB) once per clustering and edit state.
    Reruns that change nothing on the map (a selection, a pick, a tab) send only the revisions,
    and the browser draws what it keeps (scatter.js). A browser without them asks ("need") once."""
    if not serve_plotly_js():
        import plotly.graph_objects as go

        from pipeline import plots

        event = st.plotly_chart(
            go.Figure(plots.compose(json.loads(base), json.loads(paint)), skip_invalid=True),
            width="stretch",
            on_select="rerun",
            key=key,
            selection_mode=("points", "box", "lasso"),
        )
        selection = event.get("selection") or {}
        return selection.get("points", []), _plotly_chart_regions(selection)
    sent, asked = st.session_state.setdefault(SENT, {}), st.session_state.setdefault(ASKED, {})
    send_paint = revision not in sent.get(key, ())
    send_base = base_revision not in sent.get(key + ":base", ())
    state = _map(
        key=key,
        data={
            "revision": revision,
            "paint": paint if send_paint else None,
            "base_revision": base_revision,
            "base": base if send_base else None,
            "script": SCRIPT_URL,
        },
        on_selection_change=lambda: None,  # a selection reruns the map's fragment
        on_need_change=lambda: None,
    )
    for part, shown in ((key, revision), (key + ":base", base_revision)):
        sent[part] = _used(sent.get(part, ()), shown)
    if (
        not (send_paint or send_base)
        and getattr(state, "need", None) == revision
        and asked.get(key) != revision
    ):
        asked[key] = revision  # once per revision: a browser that keeps asking gets no loop
        sent.pop(key, None)  # its copies are gone (a reloaded script, an emptied cache): send them
        sent.pop(key + ":base", None)
        st.rerun()
    selection = getattr(state, "selection", None)
    if not isinstance(selection, dict) or selection.get("revision") != revision:
        return [], []  # none, or made on an older map (its points meant other texts), or not ours
    regions = selection.get("regions") or []
    try:  # it comes from the browser: anything but [trace, index] pairs selects nothing
        pairs = np.asarray(selection.get("points") or [], dtype=np.int64).reshape(-1, 2)
    except (TypeError, ValueError, OverflowError):
        return [], regions
    return [{"curve_number": int(c), "point_index": int(i)} for c, i in pairs], regions
