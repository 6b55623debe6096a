"""The near-duplicates panel: groups of near-identical texts (``pipeline.duplicates``) at the
similarity the sidebar's *Near-duplicates* setting holds, the biggest first, and whether the
clustering counts each group once (``cluster.near_duplicates``, set by that setting's toggle).

The groups are a piece of the dataset's cache shared with the cluster stage: the panel and a run
that counts each group once find them once per corpus, model and similarity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

import pipeline
from pipeline import InputError, duplicates

from .state import memo
from .text import md_escape
from .widgets import near_duplicate_threshold

GROUPS_SHOWN = 200  # groups listed in the page, most rows first
EXAMPLES_SHOWN = 3  # other texts shown per group beside its representative


def near_duplicates_section(
    result: pipeline.Result, values: dict[str, Any], cache_dir: str | Path | None = None
) -> None:
    """The groups at the similarity in ``values`` (the sidebar's settings, as ``settings_widgets``
    returns them), what counting each once would change, and whether the clustering does."""
    threshold = near_duplicate_threshold(values)
    corpus = result.corpus
    if corpus.n_texts > duplicates.MAX_TEXTS:
        st.info(
            f"Near-duplicates are searched among at most {duplicates.MAX_TEXTS:,} distinct texts; this "
            f"dataset has {corpus.n_texts:,}."
        )
        return
    key = (result.keys.get("corpus"), result.keys.get("embeddings"), threshold)
    try:
        with st.spinner(f"Finding near-duplicates among {corpus.n_texts:,} texts…"):
            groups = memo(
                "near_duplicates",
                key,
                lambda: duplicates.cached_groups(corpus, result.embeddings, threshold, cache_dir)[0],
            )
    except InputError as exc:
        st.warning(md_escape(exc.message))
        return
    st.text(summary(groups, corpus.n_texts))
    st.caption(md_escape(clustering_note(result, threshold)))
    if groups.n_groups:
        st.dataframe(
            group_table(groups, corpus.texts),
            hide_index=True,
            width="stretch",
            column_config={
                "representative": st.column_config.TextColumn("clustered as", width="large"),
                "texts": st.column_config.NumberColumn("distinct texts"),
                "examples": st.column_config.TextColumn(f"some of its other texts (up to {EXAMPLES_SHOWN})"),
            },
        )
        if groups.n_groups > GROUPS_SHOWN:
            st.caption(f"The {GROUPS_SHOWN:,} groups with most rows of {groups.n_groups:,}.")


def summary(groups: duplicates.Groups, n_texts: int) -> str:
    """One sentence: how many groups, texts and rows, and what counting each once changes."""
    at = f"a similarity of at least {groups.threshold:.2f}"
    if not groups.n_groups:
        return f"No near-duplicates at {at}: every distinct text differs more from the others."
    texts, rows = int(groups.texts.sum()), int(groups.rows.sum())
    kept = n_texts - texts + groups.n_groups
    return (
        f"{groups.n_groups:,} group{'s' if groups.n_groups != 1 else ''} of near-duplicates at {at}: "
        f"{texts:,} distinct texts on {rows:,} rows. Counting each group once clusters {kept:,} texts "
        f"instead of {n_texts:,}."
    )


def clustering_note(result: pipeline.Result, threshold: float) -> str:
    """Whether this result's clustering counted each group once, and at which similarity."""
    folded = result.config.cluster.near_duplicates
    if not folded:
        return (
            "The clustering counts every text on its own. To count each group once, turn on "
            "'Count each group once in the clustering' in the sidebar (Near-duplicates)."
        )
    readouts = result.readouts
    done = readouts.get("near_duplicate_texts_folded")
    said = f": {done:,} texts joined their group's cluster" if done is not None else ""
    other = f" (the groups listed are at {threshold:.2f})" if abs(folded - threshold) > 1e-9 else ""
    return f"The clustering counts each group once at a similarity of {folded:.2f}{said}{other}."


def group_table(groups: duplicates.Groups, texts, shown: int = GROUPS_SHOWN) -> pd.DataFrame:
    """The first ``shown`` groups (most rows first): the text clustered for each, its distinct
    texts and rows, and a few of its other texts."""
    table = groups.table(texts, shown=EXAMPLES_SHOWN, limit=shown)
    return table[["representative", "texts", "rows", "examples"]]
