"""Explore: tune the clustering, see the map, read, rename and merge clusters."""

import numpy as np
import pandas as pd
import streamlit as st

from pages import ui
from pipeline import InputError, PipelineError, plots
from pipeline.clustering.sweep import suggest_settings
from pipeline.edits import (
    cluster_rows,
    corpus_of,
    current_ids,
    edited_clusters,
    merge,
    rename,
    tree_level,
    tree_merges,
)

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
state = ui.save_settings(ws, dataset_id, state, column, values)
try:
    config = ui.build_config(column, values)
except PipelineError as exc:  # e.g. a server URL that is not a URL
    ui.show_error(exc)
    st.stop()
result = ui.run_with_status(ws, dataset_id, config)
if result is None:
    st.stop()
ui.show_llm_estimate(ws, dataset_id, result, values)
ui.show_label_fallbacks(result)

edits = state.edits
edited = ui.edited(result, state)
clusters = edited_clusters(result, edited)
real = clusters[clusters["id"] >= 0]

st.title(f"{len(real)} clusters")
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
if largest is not None and largest > ui.LARGEST_SHARE and len(real) > 1:
    blob = st.container(border=True)
    blob.warning(
        f"One cluster holds {largest:.0%} of the texts: at these settings the texts barely separate, "
        "so that cluster says little. The fix tries several settings on the current reduction and "
        "applies the one it recommends."
    )
    blob.button(
        "Fix it: apply the recommended setting",
        key="fix_blob",
        on_click=ui.fix_large_cluster,
        args=(result, info.rows),
        help="the same sweep as 'Suggest clustering settings'; only clustering and naming run again",
    )
if st.session_state.get("fix_blob_note"):
    st.info(ui.md_escape(st.session_state.pop("fix_blob_note")))
for outcome in edited.stale:
    st.warning(ui.md_escape(outcome.message))


def suggest_section() -> None:
    """Sweep HDBSCAN settings on the cached reduction; Apply puts the pick into the sidebar."""
    key = (dataset_id, result.keys.get("projection", ""))
    stored = st.session_state.get("suggestion")
    suggestion = stored[1] if stored is not None and stored[0] == key else None
    with st.expander("Suggest clustering settings", expanded=stored is not None and stored[0] == key):
        st.caption(
            "Tries several min cluster sizes on the current reduction and recommends one by "
            "stability, separation and unclustered share: a starting point, not ground truth."
        )
        if st.button("Suggest settings", key="suggest"):
            suggestion = None
            with st.spinner("Trying settings on the current reduction…"):
                try:
                    suggestion = suggest_settings(
                        result.projection, weights=result.corpus.counts, vectors=result.embeddings.vectors
                    )
                except Exception:  # a sweep never costs the results
                    ui.log.exception("suggest_settings failed")
            st.session_state["suggestion"] = (key, suggestion)
            stored = st.session_state["suggestion"]
        if stored is None or stored[0] != key:
            return
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
        st.button(
            f"Apply: min cluster size {size}, min samples {samples}",
            key="apply_suggestion",
            on_click=ui.apply_suggestion,
            args=(suggestion, info.rows),
            help="sets the sidebar's sliders; only clustering and naming run again",
        )


def tree_section() -> None:
    """The hierarchy above the clusters, and merging the clusters of one of its levels."""
    n = result.tree.n_clusters
    if n < 2:
        st.info("The cluster tree needs two or more clusters.")
        return
    now = current_ids(result, edited)
    names = {c: edited.names.get(e, str(e)) for c, e in now.items()}
    kind = st.radio(
        "Chart", ["icicle", "sunburst"], horizontal=True, key="tree_kind", format_func=str.capitalize
    )
    try:
        st.plotly_chart(plots.tree_figure(result, kind=kind, names=names), width="stretch", key="tree")
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
        help="one merge per group of two or more clusters; Undo in the edit log takes them all back",
    ):
        try:
            ui.save_state(ws, dataset_id, state.with_edits(tree_merges(result, edited, groups)))
            st.rerun()
        except InputError as exc:
            st.error(ui.md_escape(exc.message))


suggest_section()
map_tab, sizes_tab, tree_tab = st.tabs(["Map", "Cluster sizes", "Cluster tree"])
selected_from_map = None
with map_tab:
    try:
        figure = plots.map_figure(result, labels=edited.labels, names=edited.names)
        event = st.plotly_chart(
            figure, width="stretch", on_select="rerun", key="map", selection_mode=("points", "box", "lasso")
        )
        points = (
            (event or {}).get("selection", {}).get("points", [])
            if isinstance(event, dict)
            else (event.selection.points if event is not None else [])
        )
        if points:
            order = plots.trace_order(edited.labels)
            picked = [order[p["curve_number"]] for p in points if p.get("curve_number") is not None]
            if picked:
                selected_from_map = int(pd.Series(picked).mode().iloc[0])
    except Exception:  # a chart never costs the results
        ui.log.exception("map failed")
        st.warning("The map could not be drawn; the table and downloads below are unaffected.")
with sizes_tab:
    try:
        st.plotly_chart(plots.sizes_figure(result, clusters), width="stretch", key="sizes")
    except Exception:
        ui.log.exception("sizes chart failed")
        st.warning("The size chart could not be drawn; the results are unaffected.")
with tree_tab:
    tree_section()

st.subheader("Clusters")
st.caption("Rename a cluster by editing its label. Edits are kept and re-applied after re-running.")
table = clusters[["id", "label", "size", "share", "keywords"]].copy()
changed = st.data_editor(
    table,
    key=f"editor:{len(edits)}",
    hide_index=True,
    width="stretch",
    disabled=["id", "size", "share", "keywords"],
    column_config={"share": st.column_config.NumberColumn(format="percent")},
)
renamed = [
    (int(cid), ui.cell_text(new))
    for cid, old, new in zip(table["id"], table["label"], changed["label"], strict=True)
    if ui.cell_text(new) != str(old)
]
if renamed:  # the unclustered row included: rename() says why it cannot be renamed
    try:
        corpus = corpus_of(result)
        new_edits = [rename(edited.labels, edited.names, cid, label, corpus) for cid, label in renamed]
        ui.save_state(ws, dataset_id, state.with_edits(new_edits))
        st.rerun()
    except InputError as exc:
        st.error(ui.md_escape(exc.message))

with st.form("merge", clear_on_submit=True, border=True):
    st.write("**Merge clusters**")
    options = real["id"].tolist()
    names = dict(zip(clusters["id"], clusters["label"], strict=True))
    chosen = st.multiselect(
        "Clusters to merge", options, format_func=lambda c: f"{c}: {names[c]}", key="merge_ids"
    )
    new_name = st.text_input("Name of the merged cluster", key="merge_name")
    if st.form_submit_button("Merge"):
        try:
            label = new_name or (names[min(chosen)] if chosen else "")
            edit = merge(edited.labels, edited.names, chosen, label, corpus_of(result))
            ui.save_state(ws, dataset_id, state.with_edits([edit]))
            st.rerun()
        except InputError as exc:
            st.error(ui.md_escape(exc.message))

if edits:
    with st.expander(f"Edit log ({len(edits)})"):
        for outcome in edited.outcomes:
            st.text(("✓ " if outcome.applied else "✗ ") + outcome.message)
        left, right = st.columns(2)
        if left.button("Undo last edit", key="undo", help="a tree merge is taken back as a whole"):
            ui.save_state(ws, dataset_id, state.undo())
            st.rerun()
        if right.button("Clear all edits", key="clear_edits"):
            ui.save_state(ws, dataset_id, state.cleared())
            st.rerun()

st.subheader("Read a cluster")
ids = clusters["id"].tolist()
default = ids.index(selected_from_map) if selected_from_map in ids else 0
cid = st.selectbox("Cluster", ids, index=default, format_func=lambda c: f"{c}: {names[c]}", key="inspect")
row = clusters.set_index("id").loc[cid]
st.text(f"{row['size']:,} rows ({row['share']:.1%}) · keywords: {row['keywords']}")
st.write("Most representative texts")
st.dataframe(
    pd.DataFrame({"text": str(row["representative_texts"]).split(" | ")}), hide_index=True, width="stretch"
)
members = np.flatnonzero(edited.labels[np.maximum(result.corpus.row_to_unique, 0)] == cid)
members = members[result.corpus.row_to_unique[members] >= 0]
frame = result.corpus.table.frame
st.write(f"All {len(members):,} rows in this cluster")
st.dataframe(frame.iloc[members[:5000]], hide_index=True, width="stretch")
