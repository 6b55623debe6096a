"""Explore's search box and filters: what the analyst is looking at, kept in this browser session
for the open dataset, as a ``View`` the page's sections all read.

The work is the library's (``pipeline.search``, ``pipeline.facets``); this module holds the
widgets and turns them into a ``View``: the rows the filters keep, the texts a search matched,
and the sentence that says so.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

import pipeline
from pipeline import InputError, PipelineError, facets, search
from pipeline.config import text_columns
from pipeline.edits import Edited

from .state import memo
from .text import md_escape

TEXTS = "the texts"  # the search box's default column: the clustered texts
MODES = {"words": "Words", "meaning": "Meaning"}
LISTED = 1000  # matches listed on the page; the per-cluster counts cover them all
VALUES_OFFERED = 200  # a category filter offers the values with most rows


@dataclass(frozen=True)
class Query:
    text: str = ""
    mode: str = "words"  # words | meaning | similar
    column: str | None = None
    regex: bool = False
    case: bool = False
    whole_word: bool = False
    row: int | None = None  # "texts like this one": the row (mode similar)


@dataclass(frozen=True)
class View:
    """What the page shows: ``rows`` (a mask over the table's rows, the filters'), ``texts`` (over
    the distinct texts: those with a row kept), ``matches`` (a search's, or None) and ``lit`` (the
    distinct texts to highlight on the map, or None for all)."""

    rows: np.ndarray
    texts: np.ndarray
    matches: search.Matches | None
    lit: np.ndarray | None
    filters: tuple = ()

    @property
    def filtered(self) -> bool:
        return bool(self.filters)


def filters() -> tuple:
    return tuple(st.session_state.get("filters", ()))


def query() -> Query:
    return st.session_state.get("query") or Query()


def set_query(new: Query) -> None:
    st.session_state["query"] = new


def remove_filter(index: int) -> None:
    kept = list(filters())
    if 0 <= index < len(kept):
        del kept[index]
    st.session_state["filters"] = tuple(kept)


def columns_info(
    result: pipeline.Result, table: pd.DataFrame, text_column: str | tuple[str, ...]
) -> list[facets.ColumnInfo]:
    """The table's other columns (not the text column, nor any of several joined), their kinds and
    ranges: once per dataset (about 1 s at 100,000 rows the first time)."""
    exclude = text_columns(text_column)
    key = (result.keys.get("corpus", ""), exclude)
    return memo("columns", key, lambda: facets.describe_columns(table, exclude=exclude))


def search_box(columns: list[facets.ColumnInfo]) -> None:
    """The search box, its mode and options; a change reruns the whole page (the map, the counts
    and the clusters table all follow the search)."""
    pending = st.session_state.pop("pending_similar", None)
    if pending is not None:  # "texts like this one", asked for anywhere on the page
        set_query(Query(mode="similar", row=int(pending)))
        st.session_state["search_text"] = ""
    current = query()
    left, middle, right = st.columns([5, 2, 1], vertical_alignment="bottom")
    text = left.text_input(
        "Search",
        key="search_text",
        placeholder="a word, a phrase, a regular expression, or what a text is about",
        help="Words: texts that contain it. Meaning: the texts nearest to it in meaning, by the "
        "run's own model (it finds 'my card was refused' for 'payment declined').",
    )
    mode = middle.segmented_control(
        "Search by", list(MODES), format_func=MODES.__getitem__, default="words", key="search_mode"
    )
    with right.popover("Options", icon=":material/tune:"):
        regex = st.checkbox("Regular expression", key="search_regex", help="Python's syntax")
        case = st.checkbox("Match case", key="search_case")
        whole = st.checkbox("Whole words", key="search_whole", help="'card' does not find 'cards'")
        options = [TEXTS, *[c.name for c in columns]]
        column = st.selectbox("In the column", options, key="search_column", help="Words only")
    wanted = Query(
        text=text.strip(),
        mode=mode or "words",
        column=None if column == TEXTS else column,
        regex=bool(regex),
        case=bool(case),
        whole_word=bool(whole),
    )
    if current.mode == "similar" and not text.strip():
        return  # "texts like this one" stays until a search is typed
    if wanted != current:
        set_query(wanted)


def filter_bar(columns: list[facets.ColumnInfo], table: pd.DataFrame, version: tuple) -> None:
    """The active filters as buttons that remove them, and a popover to add one."""
    active = filters()
    usable = [c for c in columns if c.kind in ("category", "number", "date")]
    cells = st.columns([1, 5], vertical_alignment="center")
    with cells[0].popover("Add a filter", icon=":material/filter_list:", disabled=not usable):
        add_filter_form(usable, table, version)
    if not usable:
        cells[1].caption("No other column to filter by: the table has only the texts.")
    chips = cells[1].container(horizontal=True)
    for index, item in enumerate(active):
        chips.button(
            md_escape(item.describe()),
            key=f"unfilter:{index}:{item.describe()}",
            icon=":material/close:",
            on_click=remove_filter,
            args=(index,),
            help="remove this filter",
        )


@st.fragment
def add_filter_form(usable: list[facets.ColumnInfo], table: pd.DataFrame, version: tuple) -> None:
    """Choosing a column and its values reruns this form alone; Apply reruns the page."""
    by_name = {c.name: c for c in usable}
    name = st.selectbox("Column", list(by_name), key="filter_column")
    if name not in by_name:  # no column to filter by
        return
    info = by_name[name]
    item = None
    try:
        if info.kind == "category":
            # once per table (``version``) and column, not on every value ticked (this form reruns on each)
            values, hidden = memo(
                "filter_values", (version, name), lambda: facets.top_values(table, name, top=VALUES_OFFERED)
            )
            rows = dict(zip(values["value"], values["rows"], strict=True))
            chosen = st.multiselect(
                f"Keep rows whose {md_escape(name)} is",
                list(rows),
                format_func=lambda v: f"{v} ({int(rows[v]):,})",
                key=f"filter_values:{name}",
            )
            if hidden:
                st.caption(f"The {VALUES_OFFERED} values with most rows; {hidden:,} more are not offered.")
            item = facets.CategoryFilter(name, tuple(chosen)) if chosen else None
        elif info.kind == "number" and info.low is not None:
            low, high = float(info.low), float(info.high)
            if low == high:
                st.caption(f"Every row with a number has {low:g}: nothing to filter.")
            else:
                picked = st.slider(
                    f"{md_escape(name)} between", low, high, (low, high), key=f"filter_range:{name}"
                )
                item = facets.NumberFilter(name, picked[0], picked[1])
        elif info.kind == "date" and info.low is not None:
            picked = st.date_input(
                f"{md_escape(name)} from … to",
                (info.low, info.high),
                min_value=info.low,
                max_value=info.high,
                key=f"filter_dates:{name}",
            )
            if isinstance(picked, tuple) and len(picked) == 2:
                item = facets.DateFilter(name, picked[0], picked[1])
        for note in info.notes:
            st.caption(md_escape(note))
    except InputError as exc:
        st.warning(md_escape(exc.message))
    if st.button("Apply the filter", key="filter_apply", disabled=item is None, type="primary"):
        st.session_state["filters"] = (*[f for f in filters() if f.column != name], item)
        st.rerun(scope="app")


def view(result: pipeline.Result, edited: Edited, table: pd.DataFrame, version: tuple, runtime) -> View:
    """The filters' rows and the search's matches for this result and edit state; a bad filter or
    search is said plainly and left out, never an error page."""
    active = filters()
    try:
        rows = memo("filter_mask", (version, active), lambda: facets.filter_mask(table, active))
    except InputError as exc:  # e.g. a column gone after another text column was chosen
        st.warning(md_escape(f"The filters were removed: {exc.message}"))
        st.session_state["filters"] = ()
        active, rows = (), np.ones(len(table), dtype=bool)
    index = result.corpus.row_to_unique
    texts = np.zeros(result.corpus.n_texts, dtype=bool)
    texts[index[rows & (index >= 0)]] = True
    matches = run_query(result, query(), version[0], runtime)
    lit = None
    if matches is not None:
        keep = rows[matches.rows]
        matches = dataclasses.replace(
            matches, rows=matches.rows[keep], scores=matches.scores[keep], row_texts=matches.row_texts[keep]
        )
        lit = np.zeros(result.corpus.n_texts, dtype=bool)
        lit[matches.row_texts[matches.row_texts >= 0]] = True
    return View(rows=rows, texts=texts, matches=matches, lit=lit, filters=active)


def run_query(result: pipeline.Result, wanted: Query, result_key: tuple, runtime) -> search.Matches | None:
    """The search's matches (None when there is no search), once per result and query."""
    if wanted.mode == "similar" and wanted.row is not None:
        return memo("search", (result_key, wanted), lambda: search.similar_to_row(result, wanted.row))
    if not wanted.text:
        return None
    try:
        if wanted.mode == "meaning":
            return memo("search", (result_key, wanted), lambda: meaning(result, wanted.text, runtime))
        return memo(
            "search",
            (result_key, wanted),
            lambda: search.search_words(
                result,
                wanted.text,
                column=wanted.column,
                regex=wanted.regex,
                case=wanted.case,
                whole_word=wanted.whole_word,
            ),
        )
    except PipelineError as exc:  # a bad pattern, a search that took too long, another model
        hint = f" ({exc.hint})" if exc.hint else ""
        st.warning(md_escape(exc.message + hint))
        return None


def meaning(result: pipeline.Result, text: str, runtime) -> search.Matches:
    with st.spinner("Embedding the search with the run's model (loaded once per server)…"):
        embedder = search.run_embedder(result, runtime)
        return search.search_meaning(result, text, embedder)


def similar(row: int) -> None:
    """Search for the texts nearest to this row's text on the page's next run (from a callback,
    or from a fragment followed by ``st.rerun(scope="app")``)."""
    st.session_state["pending_similar"] = int(row)


def clear_search() -> None:
    """An ``on_click`` callback: no search."""
    set_query(Query())
    st.session_state["search_text"] = ""
