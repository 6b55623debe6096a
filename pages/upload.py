"""Upload a table (or the sample), check it, pick the text column, run."""

import streamlit as st

import pipeline
from pages import ui
from pipeline import InputError

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
    try:
        info, _ = ws.add(pipeline.SAMPLE_CSV.read_bytes(), pipeline.SAMPLE_CSV.name)
    except InputError as exc:  # e.g. the workspace is full
        ui.show_error(exc)
        st.stop()
    ui.select_dataset(ws, info.id)
    ui.save_settings(ws, info.id, pipeline.SAMPLE_TEXT_COLUMN, {})
    st.rerun()  # the sidebar, drawn before this page, lists the new dataset
if uploaded is not None and st.session_state.get("uploaded_id") != uploaded.file_id:
    st.session_state["uploaded_id"] = uploaded.file_id
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
chosen = ui.text_column(ws, dataset_id)
column = st.selectbox(
    "Column with the texts",
    columns,
    index=columns.index(chosen) if chosen in columns else 0,
    key=f"text_column:{dataset_id}",
    help="suggested: the column with the longest texts",
)
if column != chosen:  # Explore clusters this column even before "Cluster the texts" is pressed
    ui.save_text_column(ws, dataset_id, column)
if st.button("Cluster the texts", type="primary", key="run"):
    ui.save_settings(ws, dataset_id, column, ws.state(dataset_id).get("settings", {}))
    config = ui.build_config(column, ws.state(dataset_id).get("settings", {}))
    result = ui.run_with_status(ws, dataset_id, config)
    if result is not None:
        st.success(
            f"{result.n_clusters} clusters in {result.corpus.n_rows:,} rows "
            f"({result.noise_share:.0%} unclustered). Open Explore to see and edit them."
        )
        st.page_link("pages/explore.py", label="Explore the clusters", icon="🗺️")
