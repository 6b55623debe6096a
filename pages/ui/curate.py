"""Curating clusters: move or tag selected texts, split a cluster, code the texts by a codebook.

Every change is an edit of the dataset's log (``pipeline.edits``): matched by the texts it holds,
re-applied after every run, undoable one by one in the edit log. Selections come from the map, a
search, the filters or ticks in a cluster's rows; an edit applies to distinct texts, so every row
with the same text goes with it, and the forms say how many rows that is.

The codebook is no edit: it is kept with the dataset (``DatasetState.codebook``) and applied when
shown or exported (``pipeline.codebook``), at the threshold the slider sets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

import pipeline
from pipeline import InputError, PipelineError, codebook, search
from pipeline.dataset_state import DatasetState
from pipeline.edits import Edited, corpus_of, move, rows_of, split, split_cluster, tag, untag
from pipeline.store import Workspace

from .state import memo, save_state
from .text import md_escape, show_error

NEW, UNCLUSTERED = "new", "unclustered"
SAVED = "curate:saved"
PREVIEW_STEP = 0.01
CODEBOOK_EXAMPLE = (
    "Card problems: the card does not work | my card was declined | card not arrived\n"
    "Transfers: sending money to another account | transfer pending\n"
    "Refunds | I want my money back"
)


@dataclass(frozen=True)
class Page:
    """What the curation forms act on: the open dataset, its run and its edits."""

    ws: Workspace
    dataset_id: str
    state: DatasetState
    result: pipeline.Result
    edited: Edited
    names: dict[int, str]  # edited cluster id -> name, -1 included

    @property
    def counts(self) -> np.ndarray:
        return self.result.corpus.counts

    def save_edit(self, edit) -> None:
        save_state(self.ws, self.dataset_id, self.state.with_edits([edit]))
        st.session_state[SAVED] = True  # a fragment that ran the form runs the whole page next

    def cluster_ids(self) -> list[int]:
        return [c for c in self.names if c >= 0]


def rerun_if_saved() -> None:
    """At the top of a fragment: an edit made in it changes every section, so run the whole page.
    (A callback cannot rerun the app; the fragment's own rerun after it can.)"""
    if st.session_state.pop(SAVED, False):
        st.rerun(scope="app")


def _said(key: str) -> None:
    """The message a form's callback left (an error or what it did), shown once under the form."""
    error = st.session_state.pop(f"{key}:error", None)
    if error:
        st.error(md_escape(error))


def _fail(key: str, exc: InputError) -> None:
    st.session_state[f"{key}:error"] = exc.message + (f" ({exc.hint})" if exc.hint else "")


def selection_line(page: Page, texts: np.ndarray) -> str:
    rows = rows_of(page.counts, texts)
    return f"{len(texts):,} distinct text{'s' if len(texts) != 1 else ''} ({rows:,} row{'s' if rows != 1 else ''})"


def act_on_texts(page: Page, texts: np.ndarray, key: str, what: str) -> None:
    """Move or tag ``texts`` (distinct text indices): a form whose widgets are keyed by ``key``.
    ``what`` names the selection ("the texts selected on the map")."""
    texts = np.unique(np.asarray(texts, dtype=np.int64))
    if not len(texts):
        return
    st.caption(
        md_escape(
            f"Move or tag {what}: {selection_line(page, texts)}. Every row with the same text goes "
            "with it; the edit log keeps it and re-applies it after a re-run."
        )
    )
    left, right = st.columns(2)
    ids = page.cluster_ids()
    with left.form(f"{key}:move", border=True, clear_on_submit=True):
        st.selectbox(
            "Move to",
            [NEW, UNCLUSTERED, *ids],
            format_func=lambda c: {NEW: "a new cluster", UNCLUSTERED: "unclustered"}.get(
                c, f"{c}: {page.names.get(c, c)}"
            ),
            key=f"{key}:to",
        )
        st.text_input("Name of the new cluster", key=f"{key}:new_name", placeholder="e.g. Refund requests")
        st.form_submit_button("Move", on_click=_move, args=(page, texts, key), icon=":material/move_item:")
    with right.form(f"{key}:tag", border=True, clear_on_submit=True):
        st.text_input("Tag", key=f"{key}:tag_name", placeholder="e.g. urgent", max_chars=60)
        a, b = st.columns(2)
        a.form_submit_button("Add tag", on_click=_tag, args=(page, texts, key, True), icon=":material/sell:")
        b.form_submit_button("Remove tag", on_click=_tag, args=(page, texts, key, False))
        if page.edited.tag_names():
            st.caption(md_escape("Tags in use: " + ", ".join(page.edited.tag_names()[:20])))
    _said(key)


def _move(page: Page, texts: np.ndarray, key: str) -> None:
    target = st.session_state.get(f"{key}:to")
    try:
        if target == NEW:
            name = str(st.session_state.get(f"{key}:new_name") or "").strip()
            if not name:
                raise InputError("a new cluster needs a name", hint="type its name, then Move", stage="edit")
            to: int | str = name
        else:
            to = -1 if target == UNCLUSTERED else int(target)
        edit = move(page.edited.labels, page.edited.names, texts, to, corpus_of(page.result), page.counts)
        page.save_edit(edit)
    except InputError as exc:
        _fail(key, exc)


def _tag(page: Page, texts: np.ndarray, key: str, adding: bool) -> None:
    label = str(st.session_state.get(f"{key}:tag_name") or "")
    try:
        make = tag if adding else untag
        if not adding and label.strip() and label.strip() not in page.edited.tag_names():
            raise InputError(f"no text has the tag '{label.strip()}'", hint="pick a tag in use", stage="edit")
        page.save_edit(make(texts, label, corpus_of(page.result), page.counts))
    except InputError as exc:
        _fail(key, exc)


def split_form(page: Page, cid: int, key: str) -> None:
    """Split cluster ``cid``: automatic (the run's algorithm, settings for this many texts), into
    N pieces (k-means), or with a min cluster size; each piece gets its keyword label."""
    size = int((page.edited.labels == cid).sum())
    if cid < 0 or size < 2:
        return
    with st.form(f"{key}:split", border=True):
        st.write("**Split this cluster**")
        st.radio(
            "How",
            ["auto", "n", "mcs"],
            format_func={
                "auto": "automatic (finer than the run's settings)",
                "n": "into a number of pieces",
                "mcs": "with a min cluster size",
            }.__getitem__,
            horizontal=True,
            key=f"{key}:how",
        )
        a, b = st.columns(2)
        a.number_input("Pieces", min_value=2, max_value=max(2, min(50, size)), value=2, key=f"{key}:n")
        b.number_input(
            "Min cluster size",
            min_value=2,
            max_value=max(2, size),
            value=max(2, size // 10),
            key=f"{key}:mcs",
        )
        st.form_submit_button("Split", on_click=_split, args=(page, cid, key), icon=":material/call_split:")
    _said(key)


def _split(page: Page, cid: int, key: str) -> None:
    how = st.session_state.get(f"{key}:how", "auto")
    options: dict[str, Any] = {}
    if how == "n":
        options["n"] = int(st.session_state.get(f"{key}:n") or 2)
    elif how == "mcs":
        options["min_cluster_size"] = int(st.session_state.get(f"{key}:mcs") or 2)
    try:
        pieces = split_cluster(page.result, page.edited, cid, **options)
        page.save_edit(split(page.result, page.edited, cid, pieces, page.ws.cache_dir(page.dataset_id)))
    except InputError as exc:
        _fail(key, exc)


# --- the codebook ----------------------------------------------------------------------------------


def saved_codebook(state: DatasetState) -> codebook.Codebook | None:
    """The dataset's codebook as saved, or None."""
    records = state.codebook.get("categories") if state.codebook else None
    if not records:
        return None
    categories = tuple(
        codebook.Category(str(r.get("name", "")), str(r.get("description", "")), tuple(r.get("examples", ())))
        for r in records
        if isinstance(r, dict) and r.get("name")
    )
    return codebook.Codebook(categories, source=str(state.codebook.get("source", ""))) if categories else None


def as_lines(book: codebook.Codebook) -> str:
    """A codebook written as the box reads it (``parse_codebook_text``)."""
    lines = []
    for c in book.categories:
        head = c.name + (f": {c.description}" if c.description else "")
        lines.append(" | ".join([head, *c.examples]))
    return "\n".join(lines)


def assignment(page: Page, runtime: pipeline.Runtime) -> codebook.Assignment | None:
    """The saved codebook applied to the run (kept per run and codebook); None without one."""
    book = saved_codebook(page.state)
    if book is None:
        return None
    key = (page.result.keys.get("embeddings", ""), tuple(map(str, book.to_records())))
    return memo(
        "codebook",
        key,
        lambda: codebook.assign(
            page.result,
            book,
            search.run_embedder(page.result, runtime),
            0.0,
            cache=page.ws.cache_dir(page.dataset_id),  # read back after a restart: no model to load
        ),
    )


def threshold_of(state: DatasetState, found: codebook.Assignment) -> float:
    """The threshold in use: the one the user set, else the automatic one."""
    chosen = float(state.codebook.get("threshold") or 0.0)
    return found.threshold if chosen == 0.0 else chosen


def export_columns(page: Page, runtime: pipeline.Runtime) -> tuple[pd.DataFrame, dict] | None:
    """``category`` and ``category_score`` per row, and the manifest's entry; None without a codebook."""
    found = assignment(page, runtime)
    if found is None:
        return None
    at = threshold_of(page.state, found)
    return found.columns(at), found.manifest(None if not page.state.codebook.get("threshold") else at)


def codebook_section(page: Page, runtime: pipeline.Runtime, read_only: bool = False) -> None:
    """Type or upload categories; see how many texts each gets as the threshold moves; what the
    codebook misses, by cluster. Saved with the dataset; Export adds category and category_score."""
    book = saved_codebook(page.state)
    panel = st.expander("Codebook: your own categories", key="codebook_panel", on_change="rerun")
    if panel.open is False:  # the categories are embedded (the model loaded) only while it is open
        return
    with panel:
        if not read_only:
            _codebook_editor(page, book)
        if book is None:
            st.caption(
                "No codebook yet. Each text gets the closest category by meaning, when it is close enough."
            )
            return
        try:
            found = assignment(page, runtime)
        except PipelineError as exc:
            show_error(exc)
            return
        for line in book.warnings:
            st.warning(md_escape(line))
        at = threshold_of(page.state, found)
        auto = found.threshold
        st.slider(
            "Similarity threshold",
            min_value=-1.0,
            max_value=1.0,
            value=float(round(at, 2)),
            step=PREVIEW_STEP,
            key=f"codebook_threshold:{page.dataset_id}",
            help=f"a text gets its closest category when their cosine reaches this; automatic: {auto:.2f} "
            f"({found.rule}). Texts below it have no category.",
            on_change=_save_threshold,
            args=(page,),
            disabled=read_only,
        )
        if not read_only and page.state.codebook.get("threshold"):
            st.button("Back to automatic", key="codebook_auto", on_click=_save_threshold, args=(page, 0.0))
        st.text(found.summary(at if page.state.codebook.get("threshold") else None))  # "automatic" or "set"
        preview = found.preview(at).fillna({"category": codebook.NO_CATEGORY})
        preview["share"] = preview["share"] * 100
        st.dataframe(
            preview,
            hide_index=True,
            width="stretch",
            key="codebook_preview",
            column_config={
                "share": st.column_config.ProgressColumn(format="%.1f%%", min_value=0.0, max_value=100.0)
            },
        )
        missed = codebook.uncovered_clusters(found, page.edited.labels, page.edited.names, at)
        if len(missed):
            st.write("Where the codebook falls short: clusters of the texts with no category")
            st.dataframe(
                missed.head(15),
                hide_index=True,
                width="stretch",
                key="codebook_missed",
                column_config={"share_of_cluster": st.column_config.NumberColumn(format="percent")},
            )


def _codebook_editor(page: Page, book: codebook.Codebook | None) -> None:
    st.caption(
        "One category per line: a name, then ': ' and a description, then examples each after '|'. "
        "Or upload a CSV with a column name (and optionally description, examples)."
    )
    box = f"codebook_text:{page.dataset_id}"
    if box not in st.session_state:
        st.session_state[box] = as_lines(book) if book else ""
    st.text_area("Categories", key=box, height=140, placeholder=CODEBOOK_EXAMPLE)
    upload = st.file_uploader(
        "or a codebook file",
        type=["csv", "tsv", "txt", "xlsx", "parquet"],
        key=f"codebook_file:{page.dataset_id}",
    )
    left, right = st.columns(2)
    left.button("Use these categories", key="codebook_use", on_click=_use_codebook, args=(page, box, upload))
    if book is not None:
        right.button(
            "Remove the codebook", key="codebook_remove", on_click=_save_codebook, args=(page, None, "")
        )
    _said("codebook")
    for note in st.session_state.pop("codebook:notes", []):
        st.caption(md_escape(note))


def _use_codebook(page: Page, box: str, upload) -> None:
    try:
        if upload is not None:
            book = codebook.read_codebook(upload.getvalue(), upload.name)
            st.session_state[box] = as_lines(book)
        else:
            book = codebook.parse_codebook_text(str(st.session_state.get(box) or ""))
    except InputError as exc:
        _fail("codebook", exc)
        return
    st.session_state["codebook:notes"] = list(book.notes)
    _save_codebook(page, book, book.source)


def _save_codebook(page: Page, book: codebook.Codebook | None, source: str) -> None:
    saved = {} if book is None else {"source": source, "categories": book.to_records(), "threshold": 0.0}
    save_state(page.ws, page.dataset_id, dataclasses.replace(page.state, codebook=saved))
    st.session_state.pop(f"codebook_threshold:{page.dataset_id}", None)
    if book is None:
        st.session_state.pop(f"codebook_text:{page.dataset_id}", None)


def _save_threshold(page: Page, value: float | None = None) -> None:
    key = f"codebook_threshold:{page.dataset_id}"
    chosen = float(st.session_state.get(key, 0.0)) if value is None else value
    if value == 0.0:
        st.session_state.pop(key, None)
    # 0 means automatic: a threshold of exactly 0 is kept as the nearest step above it
    chosen = PREVIEW_STEP if value is None and chosen == 0.0 else chosen
    codebook_state = {**page.state.codebook, "threshold": chosen}
    save_state(page.ws, page.dataset_id, dataclasses.replace(page.state, codebook=codebook_state))
