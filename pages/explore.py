"""Explore: tune the clustering, see the map, read, rename and merge clusters.

A setting in the sidebar or an edit (rename, merge, undo) runs the whole page. Everything that
only reads (the suggestion sweep, the map and its selection, the tree, reading a cluster) is a
fragment: using it reruns that section alone. Figures and tables are built once per result and
edit state (``ui.memo``), not on every rerun.
"""

import numpy as np
import pandas as pd
import streamlit as st

from pages import ui
from pages.ui import curate, find, runbox, scatter
from pages.ui.duplicates import near_duplicates_section
from pipeline import InputError, PipelineError, facets, plots, search
from pipeline.cache import array_digest
from pipeline.clustering.sweep import suggest_settings
from pipeline.edits import (
    cluster_rows,
    corpus_of,
    current_ids,
    edited_clusters,
    edited_table,
    merge,
    rename,
    texts_of_rows,
    tree_level,
    tree_merges,
)
from pipeline.io import csv_bytes
from pipeline.label_quality import keyword_presence

ROWS_SHOWN = 5000  # rows of a cluster put in the page; the download has them all
SELECTED_SHOWN = 1000  # rows of a map selection put in the page (a box over the map holds thousands)
VALUES_SHOWN, CLUSTERS_SHOWN = 30, 25  # a breakdown's heatmap: the values and clusters with most rows
BREAKDOWN_NUMBERS = 50  # a column of numbers is offered for a breakdown up to this many values

ui.require_app()
ws = ui.workspace()
dataset_id = ui.current_dataset(ws)
if dataset_id is None:
    st.info("Upload a file or try the sample first.")
    st.page_link("pages/upload.py", label="Go to Upload", icon=":material/upload_file:")
    st.stop()

info = ws.info(dataset_id)
state = ui.dataset_state(ws, dataset_id)  # the one read of this rerun; changes save a new one
column = ui.text_column(ws, dataset_id, state)
if column is None:
    st.info("Pick the column with the texts on the Upload page.")
    st.stop()

with st.sidebar:
    values = ui.settings_widgets(info.rows, state.settings)
    values |= ui.llm_widgets(state.settings)
editable = not ui.read_only()  # a dataset shared with this person read-only: nothing changes it
state = ui.save_settings(ws, dataset_id, state, column, values) if editable else state
try:
    config = ui.build_config(column, values)
except PipelineError as exc:  # e.g. a server URL that is not a URL
    ui.show_error(exc)
    st.stop()
result = ui.run_with_status(ws, dataset_id, config)
if result is None:
    st.stop()
ui.show_llm_estimate(ws, dataset_id, result, values)
# Streamlit places elements by position: a note that comes and goes above the map would shift
# every element below it, and the browser would build the map (new WebGL contexts) and every table
# again. So whatever is shown only sometimes sits in a container that is there on every rerun.
with st.container():
    ui.show_label_fallbacks(result)

version = ui.version(result, state)
edited = ui.memo("edited", version, lambda: ui.edited(result, state))
clusters = ui.memo(
    "clusters", version, lambda: edited_clusters(result, edited, cache_dir=ws.cache_dir(dataset_id))
)
real = clusters[clusters["id"] >= 0]
names = dict(zip(clusters["id"].tolist(), clusters["label"], strict=True))
names_tag = ui.tag(tuple(names.items()))  # widgets listing clusters start fresh when this changes
table = ui.memo("table", version, lambda: edited_table(result, edited))
page = curate.Page(ws, dataset_id, state, result, edited, names)  # what move, tag, split, codebook act on
st.session_state.pop(curate.SAVED, None)  # this run shows the edit a form just saved
columns = find.columns_info(result, table, column)


def save_and_rerun(new_state) -> None:
    """An edit (or its undo) changes what every section shows: save it and run the whole page."""
    ui.save_state(ws, dataset_id, new_state)
    st.rerun(scope="app")


def save_edits(new_state) -> None:
    """An ``on_click`` callback: save the edit log; the run that follows shows it (one run, where
    ``save_and_rerun`` from a script costs the page twice)."""
    ui.save_state(ws, dataset_id, new_state)


def merge_clicked(ids_key: str, name_key: str) -> None:
    """The merge form's ``on_click``: merge what the form holds, or say why not."""
    chosen = st.session_state.get(ids_key) or []
    try:
        label = st.session_state.get(name_key) or (names[min(chosen)] if chosen else "")
        edit = merge(edited.labels, edited.names, chosen, label, corpus_of(result))
        page.save_edit(edit)
    except InputError as exc:
        st.session_state["merge_error"] = exc.message


st.title(f"{len(real)} clusters")
with st.container():
    if result.n_clusters != len(real):  # merges, splits and moves change the count
        st.caption(f"The run found {result.n_clusters}; with your edits there are {len(real)}.")
readouts = result.readouts or {}
cols = st.columns(6)
cols[0].metric("Rows", f"{result.corpus.n_rows:,}")
cols[1].metric("Distinct texts", f"{result.corpus.n_texts:,}")
cols[2].metric("Clusters", f"{len(real)}")
cols[3].metric("Unclustered", f"{result.noise_share:.0%}")
separation, stability = readouts.get("separation"), readouts.get("stability")
cols[4].metric(
    "Separation",
    "–" if separation is None else f"{separation:.2f}",
    help=str(readouts.get("separation_measure", "")) + "; higher = clusters stand apart (-1..1)",
)
cols[5].metric(
    "Stability",
    "–" if stability is None else f"{stability:.2f}",
    help=str(readouts.get("stability_measure", "")) + "; 1 = the same clusters every time",
)
largest = readouts.get("largest_share")
notes = st.container()  # the large-cluster fix, its note, stale edits
if largest is not None and largest > ui.LARGEST_SHARE and len(real) > 1:
    blob = notes.container(border=True)
    blob.warning(
        f"One cluster holds {largest:.0%} of the texts: at these settings the texts barely separate, "
        "so that cluster says little. The fix tries several settings on the current reduction and "
        "applies the one it recommends."
    )
    blob.button(
        "Fix it: apply the recommended setting",
        key="fix_blob",
        disabled=not editable,
        on_click=ui.fix_large_cluster,
        args=(result, info.rows),
        help="the same sweep as 'Suggest clustering settings'; only clustering and naming run again",
    )
if st.session_state.get("fix_blob_note"):
    notes.info(ui.md_escape(st.session_state.pop("fix_blob_note")))
for outcome in edited.stale:
    notes.warning(ui.md_escape(outcome.message))

with st.container(border=True):
    find.search_box(columns)
    find.filter_bar(columns, table, version)
view = find.view(result, edited, table, version, runbox.runtime())
kept = (version, view.filters)  # what depends on the rows the filters keep (not on the search)
looking = (*kept, find.query())  # what the map, the counts and the tabs show
shown = st.container()
if view.filtered:
    shown.text(
        f"Showing {int(view.rows.sum()):,} of {len(table):,} rows "
        f"({int(view.texts.sum()):,} of {result.corpus.n_texts:,} distinct texts): the filters above keep them."
    )


def open_suggestions() -> None:
    st.session_state["suggest_panel"] = True  # pressing the button keeps its panel open


@st.fragment
def suggest_section() -> None:
    """Sweep HDBSCAN settings on the cached reduction; Apply puts the pick into the sidebar."""
    key = (dataset_id, result.keys.get("projection", ""))
    stored = st.session_state.get("suggestion")
    panel = st.expander("Suggest clustering settings", key="suggest_panel", on_change="rerun")
    with panel:
        st.caption(
            "Tries several min cluster sizes on the current reduction and recommends one by "
            "stability, separation and unclustered share: a starting point, not ground truth."
        )
        if st.button("Suggest settings", key="suggest", on_click=open_suggestions):
            with st.spinner("Trying settings on the current reduction…"):
                try:
                    found = suggest_settings(
                        result.projection, weights=result.corpus.counts, vectors=result.embeddings.vectors
                    )
                except Exception:  # a sweep never costs the results
                    ui.log.exception("suggest_settings failed")
                    found = None
            stored = st.session_state["suggestion"] = (key, found)
        if stored is None or stored[0] != key:
            return
        suggestion = stored[1]
        if suggestion is None:
            st.warning("No setting could be tried on these texts; there may be too few of them to cluster.")
            return
        best = suggestion.table[suggestion.table["recommended"]]
        if best.empty or int(best["clusters"].iloc[0]) < 2:
            st.warning(
                f"None of the {len(suggestion.table)} settings tried found two or more clusters in "
                f"{result.corpus.n_texts:,} distinct texts: there may be too few texts, or too little "
                "structure, to suggest a setting."
            )
            return
        try:
            st.plotly_chart(plots.sweep_figure(suggestion.table), width="stretch", key="sweep")
        except Exception:
            ui.log.exception("sweep chart failed")
        st.text(f"Recommended: {suggestion.reason}")
        size = suggestion.settings["cluster.min_cluster_size"]
        samples = suggestion.settings["cluster.min_samples"]
        current = (values.get("cluster.min_cluster_size"), values.get("cluster.min_samples"))
        if values.get("cluster.algorithm") == suggestion.algorithm and current == (size, samples):
            st.caption("These are the current settings.")
            return
        if values.get(ui.ABOUT_K):
            st.caption(
                f"'About {values[ui.ABOUT_K]} clusters' stays on; set it to 0 to see HDBSCAN's own count."
            )
        if st.button(
            f"Apply: min cluster size {size}, min samples {samples}",
            key="apply_suggestion",
            disabled=not editable,
            help="sets the sidebar's sliders; only clustering and naming run again",
        ):
            ui.apply_suggestion(suggestion, info.rows)
            st.rerun(scope="app")


def selection_panel(texts: np.ndarray) -> None:
    """What a map selection holds: its rows with their clusters, counted per cluster; read a
    cluster of it or download the rows."""
    index = result.corpus.row_to_unique
    rows = np.flatnonzero(np.isin(index, texts) & view.rows)
    picked = table.iloc[rows]
    per_cluster = (
        picked.groupby("cluster_id", dropna=False).size().sort_values(ascending=False).rename("rows selected")
    )
    st.text(
        f"{len(texts):,} texts selected ({len(rows):,} rows) in {len(per_cluster)} "
        f"cluster{'s' if len(per_cluster) != 1 else ''}"
    )
    counts = per_cluster.reset_index()
    counts.insert(1, "cluster", [names.get(int(c), str(c)) for c in counts["cluster_id"]])
    left, right = st.columns([2, 1])
    left.dataframe(counts, hide_index=True, width="stretch", key="selection_counts")
    top = int(counts["cluster_id"].iloc[0])
    if right.button(
        f"Read cluster {top}", key="read_selected", help="the cluster most of the selection is in"
    ):
        st.session_state["reading"] = top
        st.rerun(scope="app")
    ui.download(
        right,
        "Download the selected rows (CSV)",
        lambda: csv_bytes(picked),
        f"{ui.file_stem(info.name)}_selection.csv",
        "text/csv",
        "dl_selection",
    )
    shown = picked.iloc[:SELECTED_SHOWN]
    if len(picked) > SELECTED_SHOWN:
        st.caption(f"The first {SELECTED_SHOWN:,} of {len(picked):,} rows; the download has them all.")
    st.dataframe(shown, hide_index=True, width="stretch", key="selection_rows")
    if editable:
        curate.act_on_texts(page, texts, f"selected:{names_tag}", "the texts selected on the map")


def map_base_key(frame: pd.DataFrame) -> tuple:
    """What the map's base depends on: the texts, their layout and which of them are drawn."""
    drawn = array_digest(frame.index.to_numpy(), np.int64)
    return result.keys.get("corpus"), result.keys.get("projection"), drawn


def map_view() -> None:
    points = ui.memo(
        "map_points",
        looking,
        lambda: plots.map_frame(
            result,
            labels=edited.labels,
            names=edited.names,
            shown=view.texts if view.filtered else None,
            highlight=view.lit,
        ),
    )
    try:
        # the base (the points: texts and positions) is built and sent once per set of points; an
        # edit or a slider step changes only the paint (plots.map_layers)
        base_key = ui.memo("map_base_key", looking, lambda: map_base_key(points[0]))
        base = ui.memo("map_base", base_key, lambda: scatter.figure_json(plots.map_base(points[0])))
        paint = ui.memo("map_paint", looking, lambda: scatter.figure_json(plots.map_paint(points)))
        picked, areas = scatter.scatter_map(base, ui.tag(base_key), paint, ui.tag(looking))
    except Exception:  # a chart never costs the results
        ui.log.exception("map failed")
        st.warning("The map could not be drawn; the table and downloads below are unaffected.")
        return
    drawn, total = len(points[0]), points[1]
    st.caption(
        "Drag a box (or pick the lasso in the chart's toolbar) to read the texts in an area"
        + (
            f": all of them, with the {total - drawn:,} the map leaves out of its sample."
            if total > drawn
            else "."
        )
    )
    regions = plots.selection_regions(areas)
    if regions:  # every text in the area the map shows, drawn or not
        shown = np.flatnonzero(view.texts) if view.filtered else np.arange(result.corpus.n_texts)
        texts = ui.memo(  # once per selection, not on every rerun of the map's section
            "map_selected",
            (looking, areas),
            lambda: plots.texts_in_regions(result.projection.layout, shown, regions),
        )
    else:
        texts = plots.selected_texts(picked, plots.trace_members(points[0]))
    if texts.size:
        selection_panel(texts)


def sizes_view() -> None:
    try:
        figure = ui.memo("sizes", version, lambda: plots.sizes_figure(result, clusters))
        st.plotly_chart(figure, width="stretch", key="sizes")
    except Exception:
        ui.log.exception("sizes chart failed")
        st.warning("The size chart could not be drawn; the results are unaffected.")


def tree_view() -> None:
    """The hierarchy above the clusters, and merging the clusters of one of its levels."""
    n = result.tree.n_clusters
    if n < 2:
        st.info("The cluster tree needs two or more clusters.")
        return
    now = current_ids(result, edited)
    tree_names = {c: edited.names.get(e, str(e)) for c, e in now.items()}
    kind = st.radio(
        "Chart", ["icicle", "sunburst"], horizontal=True, key="tree_kind", format_func=str.capitalize
    )
    try:
        figure = ui.memo(
            "tree", (version, kind), lambda: plots.tree_figure(result, kind=kind, names=tree_names)
        )
        st.plotly_chart(figure, width="stretch", key="tree")
    except Exception:
        ui.log.exception("tree chart failed")
        st.warning("The tree could not be drawn; the results are unaffected.")
    # a level kept from a run with more clusters must fit this run's slider
    st.session_state["tree_level"] = min(max(int(st.session_state.get("tree_level", max(1, n // 2))), 1), n)
    level = st.slider(
        "Groups at this level",
        1,
        n,
        key="tree_level",
        help="cut the tree where this many groups remain: which clusters fall together",
    )
    groups = tree_level(result, edited, level)
    size = cluster_rows(result, edited)
    st.dataframe(
        pd.DataFrame(
            {
                "group": range(1, len(groups) + 1),
                "clusters": ["; ".join(f"{c}: {edited.names.get(c, c)}" for c in g) for g in groups],
                "rows": [sum(size[c] for c in g) for g in groups],
            }
        ),
        hide_index=True,
        width="stretch",
        key="tree_groups",
    )
    if all(len(g) == 1 for g in groups):
        st.caption("Every group at this level is one cluster: nothing to merge.")
        return
    if st.button(
        f"Merge into these {len(groups)} groups",
        key="tree_merge",
        disabled=not editable,
        help="one merge per group of two or more clusters; the edit log takes them back as one",
    ):
        try:
            save_and_rerun(state.with_edits(tree_merges(result, edited, groups)))
        except InputError as exc:
            st.error(ui.md_escape(exc.message))


def full_breakdown(by: str) -> facets.Breakdown:
    """Every value's breakdown by ``by`` over the kept rows: the download's, and what *Read a
    cluster* shows of where a cluster's rows come from (computed once for both)."""
    return ui.memo("breakdown_all", (kept, by), lambda: facets.breakdown(table, by, mask=view.rows))


def breakdown_view() -> None:
    """Clusters by the values of another column: shares per value, and what stands out."""
    # categories, then numbers with few values (a score, a rating); ids and dates are no breakdown
    options = [c.name for c in columns if c.kind == "category"]
    options += [c.name for c in columns if c.kind == "number" and c.distinct <= BREAKDOWN_NUMBERS]
    if not options:
        st.info("The table has no other column (with categories) to break the clusters down by.")
        return
    name = st.selectbox("By the column", options, key="breakdown_column")
    try:
        shown = ui.memo(
            "breakdown",
            (kept, name),
            lambda: facets.breakdown(table, name, top=VALUES_SHOWN, mask=view.rows),
        )
    except InputError as exc:
        st.warning(ui.md_escape(exc.message))
        return
    for note in shown.notes:
        st.caption(ui.md_escape(note))
    if shown.frame.empty:
        st.info("No row with a cluster has a value here (the filters may keep none).")
        return
    order = shown.frame.groupby("value", sort=False)["rows"].sum().sort_values(ascending=False, kind="stable")
    values = order.index.tolist()[:VALUES_SHOWN]  # the values with most rows
    clusters_by_rows = shown.frame.groupby("cluster_id")["rows"].sum().sort_values(ascending=False)
    top = sorted(clusters_by_rows.index[:CLUSTERS_SHOWN].tolist(), key=lambda c: (c == -1, c))
    if shown.hidden:
        st.caption(f"The {len(values)} values with most rows; {shown.hidden:,} more values are hidden.")
    if len(clusters_by_rows) > CLUSTERS_SHOWN:
        st.caption(f"The {CLUSTERS_SHOWN} clusters with most rows of {len(clusters_by_rows)}.")
    try:
        figure = ui.memo(
            "breakdown_figure",
            (kept, name),
            lambda: plots.breakdown_figure(shown.frame, values, top, name),
        )
        st.plotly_chart(figure, width="stretch", key="breakdown_chart")
    except Exception:
        ui.log.exception("breakdown chart failed")
        st.warning("The chart could not be drawn; the table below is unaffected.")
    st.write("What stands out (clusters over-represented beyond chance: residual above 2, by lift)")
    lines = [facets.describe_over_represented(shown.frame, v) for v in values[:12]]
    st.text("\n".join(line for line in lines if line) or "Nothing stands out: the clusters spread alike.")
    ui.download(
        st,
        f"Download the breakdown by {ui.md_escape(name)} (CSV, every value)",
        lambda: csv_bytes(full_breakdown(name).frame),
        f"{ui.file_stem(info.name)}_breakdown.csv",
        "text/csv",
        "dl_breakdown",
    )


def trends_view() -> None:
    """Rows per period of a date column: which clusters grew or shrank."""
    options = [c.name for c in columns if c.kind == "date"]
    if not options:
        st.info("No column of the table reads as dates (a column counts when 80% of its values are dates).")
        return
    name = st.selectbox("Dates in the column", options, key="trends_column")
    try:
        trend = ui.memo("trends", (kept, name), lambda: facets.trends(table, name, mask=view.rows))
    except InputError as exc:
        st.warning(ui.md_escape(exc.message))
        return
    for note in trend.notes:
        st.caption(ui.md_escape(note))
    if trend.frame.empty:
        st.info("No row kept by the filters has a date here.")
        return
    movers = facets.movers(trend.frame, min_rows=10, top=5)
    if not movers.empty:
        st.write(f"Biggest changes from the first {trend.period} to the last (clusters with 10 rows or more)")
        listed = movers.assign(
            change=[
                facets.change_text(int(a), int(b))
                for a, b in zip(movers["first_rows"], movers["last_rows"], strict=True)
            ]
        )[["cluster_id", "cluster_label", "first_rows", "last_rows", "change"]]
        st.dataframe(listed, hide_index=True, width="stretch", key="movers")
    sizes = trend.frame.groupby("cluster_id")["rows"].sum().sort_values(ascending=False)
    default = movers["cluster_id"].tolist()[:5] if not movers.empty else sizes.index[:5].tolist()
    picked = st.multiselect(
        "Clusters on the chart",
        sizes.index.tolist(),
        default=[c for c in default if c in sizes.index],
        format_func=lambda c: f"{c}: {names.get(c, c)}",
        key=f"trend_clusters:{name}:{names_tag}",
    )
    st.plotly_chart(
        plots.trends_figure(trend.frame, picked, trend.period), width="stretch", key="trends_chart"
    )
    ui.download(
        st,
        "Download rows per period (CSV)",
        lambda: csv_bytes(trend.frame),
        f"{ui.file_stem(info.name)}_trends.csv",
        "text/csv",
        "dl_trends",
    )


VIEWS = {
    "Map": map_view,
    "Cluster sizes": sizes_view,
    "Cluster tree": tree_view,
    "Breakdown": breakdown_view,
    "Over time": trends_view,
}


def match_counts():
    """The search's matches per cluster: the sentence above the list and the cluster table's
    *matches* column, counted once per view."""
    return ui.memo(
        "match_counts",
        looking,
        lambda: search.per_cluster(view.matches, edited.labels, edited.names, result.corpus.counts),
    )


def matches_section() -> None:
    """What the search found: counted per cluster, listed best first; any match can start a
    search for the texts like it."""
    if view.matches is None:
        return
    wanted = find.query()
    counts = match_counts()
    about = "Texts like row " + str(wanted.row) if wanted.mode == "similar" else f"Search '{wanted.text}'"
    left, right = st.columns([6, 1], vertical_alignment="center")
    left.text(f"{about}: {search.summary_line(counts)}")
    right.button("Clear the search", key="clear_search", on_click=find.clear_search)
    listing = search.matches_table(result, view.matches, edited.labels, edited.names, limit=find.LISTED)
    if len(view.matches) > find.LISTED:
        st.caption(
            f"The best {find.LISTED:,} of {len(view.matches):,} matching rows; the counts include them all."
        )
    event = st.dataframe(
        listing,
        hide_index=True,
        width="stretch",
        key=f"matches:{ui.tag(looking)}",
        on_select="rerun",
        selection_mode="single-row",
        column_config={"score": st.column_config.NumberColumn(format="%.3f")},
    )
    chosen = event.selection.rows if event is not None else []
    if chosen:
        row = int(listing["row"].iloc[chosen[0]])
        st.button(f"Find texts like row {row}", key="similar_to_match", on_click=find.similar, args=(row,))
    else:
        st.caption("Pick a row (the box at its left) to find the texts like it.")


def found_section() -> None:
    """Move or tag every text the search (within the filters) or the filters alone keep."""
    if not editable or (view.matches is None and not view.filtered):
        return
    found = view.lit if view.matches is not None else view.texts
    what = "the texts the search found" if view.matches is not None else "the texts the filters keep"
    with st.expander(f"Move or tag {what}", key="found_panel", on_change="rerun"):
        curate.act_on_texts(page, np.flatnonzero(found), f"found:{names_tag}:{ui.tag(looking)}", what)


@st.fragment
def views_section() -> None:
    """Only the open tab is drawn: switching tabs or selecting on the map reruns this section."""
    curate.rerun_if_saved()
    tabs = st.tabs(list(VIEWS), key="view_tab", on_change="rerun")
    for tab, view in zip(tabs, VIEWS.values(), strict=True):
        if tab.open is not False:
            with tab:
                view()


def clusters_section() -> None:
    """The cluster table (rename by editing a label) and the merge form."""
    st.subheader("Clusters")
    st.caption("Rename a cluster by editing its label. Edits are kept and re-applied after re-running.")
    shown = ["id", "label", "size", "share", "keywords"] + (["tags"] if edited.tags else [])
    summary = clusters[shown].copy()
    if view.filtered:  # sizes and shares of the rows the filters keep; all rows beside them
        counts = ui.memo("filtered_clusters", kept, lambda: facets.filtered_clusters(table, view.rows))
        counts = counts.set_index("id").reindex(summary["id"])
        summary.insert(4, "rows (all)", summary["size"].to_numpy())
        summary["size"], summary["share"] = (
            counts["rows"].fillna(0).astype(int).to_numpy(),
            counts["share"].to_numpy(),
        )
    if view.matches is not None:
        found = match_counts().dropna(subset=["cluster_id"])
        summary.insert(
            2,
            "matches",
            summary["id"]
            .map(dict(zip(found["cluster_id"].astype(int), found["matches"], strict=True)))
            .fillna(0)
            .astype(int),
        )
    changed = st.data_editor(
        summary,
        key=f"editor:{names_tag}",
        hide_index=True,
        width="stretch",
        disabled=not editable or [c for c in summary.columns if c != "label"],
        column_config={"share": st.column_config.NumberColumn(format="percent")},
    )
    renamed = [
        (int(cid), ui.cell_text(new))
        for cid, old, new in zip(summary["id"], summary["label"], changed["label"], strict=True)
        if ui.cell_text(new) != str(old)
    ]
    if renamed:  # the unclustered row included: rename() says why it cannot be renamed
        try:
            corpus = corpus_of(result)
            new_edits = [rename(edited.labels, edited.names, cid, label, corpus) for cid, label in renamed]
            save_and_rerun(state.with_edits(new_edits))
        except InputError as exc:
            st.error(ui.md_escape(exc.message))

    if not editable:
        st.info("Shared with you read-only: renaming and merging are up to its owner.")
        return
    # the form's widgets are new whenever the clusters' names change (a merge, an undo): a choice
    # never outlives the cluster it named
    with st.form(f"merge:{names_tag}", clear_on_submit=True, border=True):
        st.write("**Merge clusters**")
        st.multiselect(
            "Clusters to merge",
            real["id"].tolist(),
            format_func=lambda c: f"{c}: {names[c]}",
            key=f"merge_ids:{names_tag}",
        )
        st.text_input("Name of the merged cluster", key=f"merge_name:{names_tag}")
        st.form_submit_button(
            "Merge", on_click=merge_clicked, args=(f"merge_ids:{names_tag}", f"merge_name:{names_tag}")
        )
        if st.session_state.get("merge_error"):
            st.error(ui.md_escape(st.session_state.pop("merge_error")))


def edit_log_section() -> None:
    """Every edit with what became of it; remove any one (the others stay), undo, redo."""
    if not editable or (not state.edits and not state.undone):
        return
    panel = st.expander("Edit log", key="edit_log", on_change="rerun")
    with panel:
        st.caption(
            f"{len(state.edits)} edit{'s' if len(state.edits) != 1 else ''}, applied in order after "
            "every run. Removing one re-applies the others."
        )
        outcomes = iter(edited.outcomes)
        for step, edits in state.steps_with_edits():
            left, right = st.columns([6, 1], vertical_alignment="center")
            for _ in edits:
                outcome = next(outcomes)
                mark = "✓ " if outcome.applied else "✗ "
                left.text(mark + outcome.message)
            right.button(
                "Remove",
                key=f"remove:{step}:{ui.tag(edits)}",
                help="take back this edit only",
                on_click=save_edits,
                args=(state.remove_step(step),),
            )
        left, middle, right = st.columns(3)
        left.button(
            "Undo last edit",
            key="undo",
            disabled=not state.edits,
            help="a tree merge as a whole",
            on_click=save_edits,
            args=(state.undo(),),
        )
        middle.button(
            f"Redo ({len(state.undone)})" if state.undone else "Redo",
            key="redo",
            disabled=not state.undone,
            help="put back the edit undone or removed last",
            on_click=save_edits,
            args=(state.redo(),),
        )
        right.button(
            "Clear all edits",
            key="clear_edits",
            disabled=not state.edits,
            on_click=save_edits,
            args=(state.cleared(),),
        )


def presence_key(labels: np.ndarray, cid: int) -> str:
    """What a cluster's keyword presence depends on besides the texts: which texts are in it and
    which are in another cluster. A merge or rename elsewhere, or an undo, keeps it (50-80 ms of
    each at 10,000 texts, where the edit log's version as key recomputed it)."""
    labels = np.asarray(labels)
    where = (labels >= 0).astype(np.int8) + (labels == cid).astype(np.int8)
    return array_digest(where)


@st.fragment
def read_section() -> None:
    """One cluster: its keywords and how telling they are, its most representative texts, its
    rows (those the filters keep), how it spreads over the breakdown's column, and its nearest
    clusters. The choice is kept by cluster id; the list is new whenever the names change, so it
    never shows a name from before an edit."""
    curate.rerun_if_saved()
    st.subheader("Read a cluster")
    ids = clusters["id"].tolist()
    wanted = st.session_state.get("reading")
    cid = st.selectbox(
        "Cluster",
        ids,
        index=ids.index(wanted) if wanted in ids else 0,
        format_func=lambda c: f"{c}: {names[c]}",
        key=f"inspect:{names_tag}",
    )
    st.session_state["reading"] = cid
    row = clusters.set_index("id").loc[cid]
    st.text(f"{row['size']:,} rows ({row['share']:.1%}) · keywords: {row['keywords']}")
    left, right = st.columns(2)
    keywords = [k for k in str(row["keywords"]).split(", ") if k][:8]
    if cid >= 0 and keywords:
        try:
            presence = ui.memo(
                "keywords",
                (result.keys.get("corpus"), presence_key(edited.labels, cid), tuple(keywords)),
                lambda: keyword_presence(result, edited.labels, cid, keywords),
            )
            left.dataframe(
                presence.rename(
                    columns={"in_cluster": "in this cluster", "elsewhere": "in the other clusters"}
                ),
                hide_index=True,
                width="stretch",
                key="read_keywords",
                column_config={
                    c: st.column_config.ProgressColumn(c, format="percent", min_value=0.0, max_value=1.0)
                    for c in ("in this cluster", "in the other clusters")
                },
            )
        except Exception:
            ui.log.exception("keyword chart failed")
    with right:
        st.write("Most representative texts")
        st.dataframe(
            pd.DataFrame({"text": str(row["representative_texts"]).split(" | ")}),
            hide_index=True,
            width="stretch",
            key="read_examples",
        )
        if cid >= 0:
            centroids = ui.memo("centroids", version, lambda: search.cluster_centroids(result, edited.labels))
            st.write("Nearest clusters")
            st.dataframe(
                search.nearest_clusters(centroids, cid, names),
                hide_index=True,
                width="stretch",
                key="read_nearest",
            )
    index = result.corpus.row_to_unique
    members = np.flatnonzero((index >= 0) & (edited.labels[np.maximum(index, 0)] == cid) & view.rows)
    shown = f"the first {ROWS_SHOWN:,} of " if len(members) > ROWS_SHOWN else "all "
    kept = " the filters keep" if view.filtered else ""
    st.write(f"{shown.capitalize()}{len(members):,} rows{kept} in this cluster")
    event = st.dataframe(
        result.corpus.table.frame.iloc[members[:ROWS_SHOWN]],
        hide_index=True,
        width="stretch",
        key=f"read_rows:{cid}:{ui.tag(kept)}",  # ticks never outlive the rows they point at
        on_select="rerun",
        selection_mode="multi-row",
    )
    chosen = event.selection.rows if event is not None else []
    if len(chosen) == 1 and st.button(
        f"Find texts like row {int(members[chosen[0]])}", key="similar_to_read"
    ):
        find.similar(int(members[chosen[0]]))
        st.rerun(scope="app")
    if editable and chosen:
        ticked = texts_of_rows(result, members[np.asarray(chosen, dtype=np.int64)])
        curate.act_on_texts(page, ticked, f"ticked:{cid}:{names_tag}", "the ticked rows' texts")
    if editable and cid >= 0:
        curate.split_form(page, cid, f"split:{cid}:{names_tag}")
    by = st.session_state.get("breakdown_column")
    if by and any(c.name == by for c in columns):
        try:
            spread = full_breakdown(by).frame
        except InputError:
            return
        mine = spread[spread["cluster_id"] == cid].sort_values("rows", ascending=False)
        st.write(f"By {ui.md_escape(by)} (the Breakdown tab's column): where this cluster's rows come from")
        st.dataframe(
            mine[["value", "rows", "share_of_value", "lift", "residual"]].head(30),
            hide_index=True,
            width="stretch",
            key="read_breakdown",
            column_config={
                "share_of_value": st.column_config.NumberColumn(format="percent"),
                "lift": st.column_config.NumberColumn(format="%.2f"),
                "residual": st.column_config.NumberColumn(format="%+.1f"),
            },
        )


with st.container():
    matches_section()
with st.container():
    found_section()
suggest_section()
views_section()
clusters_section()
with st.container():
    edit_log_section()
curate.codebook_section(page, runbox.runtime(), read_only=not editable)
duplicates_panel = st.expander("Near-duplicates", key="duplicates_panel", on_change="rerun")
if duplicates_panel.open is not False:  # drawn (and its groups read) only while open
    with duplicates_panel:
        near_duplicates_section(result, values, cache_dir=ws.cache_dir(dataset_id))
read_section()
