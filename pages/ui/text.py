"""Text a user sees: escaping for anything that renders Markdown or HTML, errors, table cells.

User text is only ever shown as text (``st.text``, dataframes) or escaped by ``md_escape`` before
it reaches anything that renders Markdown or HTML (``st.error``, button labels, ``st.caption``).
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from pipeline import PipelineError

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])")


def md_escape(text: Any) -> str:
    """Text safe to put inside Markdown: every character Markdown or HTML reads is escaped."""
    return _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")


def show_error(exc: PipelineError) -> None:
    """A pipeline error as a user sees it: the message and what to do, escaped."""
    advice = app_hint(exc.hint)
    hint = f"  \n**What to do:** {md_escape(advice)}" if advice else ""
    st.error(md_escape(exc.message) + hint)


# setting -> the sidebar control that sets it, for advice shown in the app
CONTROLS = {
    "cluster.min_cluster_size": "'Min cluster size'",
    "cluster.min_samples": "'Min samples'",
    "cluster.n_clusters": "'About this many clusters' (or 'Number of clusters')",
    "cluster.method": "'Selection'",
    "cluster.epsilon": "'Level'",
    "cluster.algorithm": "'Method'",
    "reduce.n_neighbors": "'Neighbours' (Reduction)",
    "reduce.n_components": "'Dimensions for clustering' (Reduction)",
    "reduce.min_dist": "'Min distance' (Reduction)",
    "embed.backend": "'Backend' (Embedding)",
    "label.llm.base_url": "'Server URL'",
    "label.llm.model": "'Model'",
    "label.llm.max_clusters": "'Label at most this many clusters'",
}
_SET_EXAMPLE = re.compile(r"\s*\((?:e\.g\. )?--set [^)]*\)")
_SET_FLAG = re.compile(r"--set ([\w.]+)=\S*")


def app_hint(hint: str) -> str:
    """The pipeline's advice in the app's words: a visitor has no --cache-dir or --set, but the
    sidebar's controls ("set cluster.min_cluster_size to ..." -> "set 'Min cluster size' to ...")."""
    if "--cache-dir" in hint or "CLUSTERLAB_CACHE_DIR" in hint:
        return (
            "delete datasets you no longer need (sidebar); if it persists, tell the person running "
            "Clusterlab that the server's disk is full or its data folder cannot be written"
        )
    hint = _SET_EXAMPLE.sub("", hint)
    hint = _SET_FLAG.sub(lambda m: CONTROLS.get(m.group(1), m.group(1)), hint)
    for key in sorted(CONTROLS, key=len, reverse=True):
        hint = re.sub(rf"(?<![\w.']){re.escape(key)}(?![\w])", CONTROLS[key], hint)
    return hint


def cell_text(value: Any) -> str:
    """A data_editor cell as text: an emptied cell comes back as None (or NaN), never "None"."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value)


# Streamlit animates its changes with CSS transitions; the costly one fades every element a rerun
# has not drawn yet (opacity over 1 s, starting 0.5 s into the run). In a browser drawing without
# a GPU each frame of a fade repaints the page, the map's WebGL canvas included: 0.7-1.0 s of the
# browser's CPU per slider step at 100,000 texts (Chromium here, measured), taken from the server
# when both share the machine, and 0.2-0.5 s of the step itself. Every transition keeps its delay
# and comes as one step: stale elements still dim, 0.5 s into a run, in one frame.
PAGE_CSS = "*, *::before, *::after { transition-duration: 0s !important; }"


def page_style() -> None:
    """The app's own CSS (``PAGE_CSS``; never user text), on every page: a style-only ``st.html``
    goes to the page's event container, so no element below it moves."""
    st.html(f"<style>{PAGE_CSS}</style>")
