"""Upload a table (or the sample), check it, pick the text column (or several, joined), run."""

import streamlit as st

import pipeline
from pages import ui
from pipeline import InputError
from pipeline.config import text_columns

ui.require_app()
ws = ui.workspace()
st.title("Clusterlab")
st.write(
    "Upload a spreadsheet of short texts (survey answers, tickets, reviews, keywords). "
    "Clusterlab groups similar texts, names each group, and gives you back every row with its cluster."
)

uploaded = st.file_uploader(
    "CSV, TSV, Excel or Parquet",
    type=["csv", "tsv", "txt", "xlsx", "parquet"],
    key="upload",
    help="Encoding (UTF-8, Windows-1252, Latin-1) and delimiter (comma, semicolon, tab, pipe) are detected.",
)
if st.button("No file at hand? Try the sample (420 app reviews)", key="sample"):
    ws = ui.own_workspace()  # a dataset shared with you may be open: the sample goes to yours
    try:
        info, _ = ws.add(pipeline.SAMPLE_CSV.read_bytes(), pipeline.SAMPLE_CSV.name)
    except InputError as exc:  # e.g. the workspace is full
        ui.show_error(exc)
        st.stop()
    ui.select_dataset(ws, info.id)
    # the same bytes are the same dataset: a sample opened before keeps its edits
    ui.save_settings(ws, info.id, ui.dataset_state(ws, info.id), pipeline.SAMPLE_TEXT_COLUMN, {})
    st.rerun()  # the sidebar, drawn before this page, lists the new dataset
if uploaded is not None and st.session_state.get("uploaded_id") != uploaded.file_id:
    st.session_state["uploaded_id"] = uploaded.file_id
    ws = ui.own_workspace()  # a dataset shared with you may be open: uploads go to yours
    try:
        info, _ = ws.add(uploaded.getvalue(), uploaded.name)
    except InputError as exc:
        ui.show_error(exc)
        st.stop()
    ui.select_dataset(ws, info.id)
    st.rerun()  # the sidebar, drawn before this page, lists the new dataset

dataset_id = ui.current_dataset(ws)
if dataset_id is None:
    st.stop()

info = ws.info(dataset_id)
state = ui.dataset_state(ws, dataset_id)  # the one read of this rerun; changes save a new one
table = ws.table(dataset_id)
st.subheader("Preview")
st.text(f"{info.name}: {info.rows:,} rows, {len(info.columns)} columns")
for note in table.notes:
    st.warning(ui.md_escape(note))
st.dataframe(table.frame.head(50), width="stretch", hide_index=True)

if info.suggested_column is None:
    st.warning(
        "No column looks like text: every column holds numbers, codes or dates. Pick the column "
        "to cluster below, or upload a file with a column of texts."
    )
columns = [str(c) for c in table.frame.columns]
chosen = ui.text_column(ws, dataset_id, state)
saved = [c for c in text_columns(chosen) if c in columns]
picked = st.multiselect(
    "Columns with the texts",
    columns,
    default=saved or columns[:1],
    key=f"text_column:{dataset_id}",
    disabled=ui.read_only(),
    help="suggested: the column with the longest texts. Pick several (a title and a body) to join them "
    "into one text per row, a line between them, in the order picked; empty cells are left out.",
)
if not picked:
    st.warning("Pick at least one column with the texts.")
    st.stop()
column = picked[0] if len(picked) == 1 else tuple(picked)  # as preprocess.text_column takes it
if len(picked) > 1:
    st.caption(ui.md_escape(f"Each row's text: {' + '.join(picked)}, a line between them."))
# Explore clusters this choice even before "Cluster the texts" is pressed (never someone else's)
if column != chosen and not ui.read_only():
    state = ui.save_state(ws, dataset_id, state.with_text_column(column))
if st.button("Cluster the texts", type="primary", key="run", disabled=ui.read_only()):
    state = ui.save_settings(ws, dataset_id, state, column, state.settings)
    config = ui.build_config(column, state.settings)
    result = ui.run_with_status(ws, dataset_id, config)
    if result is not None:
        st.success(
            f"{result.n_clusters} clusters in {result.corpus.n_rows:,} rows "
            f"({result.noise_share:.0%} unclustered). Open Explore to see and edit them."
        )
        st.page_link("pages/explore.py", label="Explore the clusters", icon=":material/scatter_plot:")
