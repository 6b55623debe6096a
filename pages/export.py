"""Export: the labeled table (CSV, Excel, Parquet), the cluster summary and the manifest."""

import streamlit as st

from pages import ui
from pages.ui import curate, find, runbox
from pipeline import InputError, PipelineError, codebook, facets
from pipeline.edits import clusters_with_parents, edited_clusters, edited_table
from pipeline.io import csv_bytes, excel_bytes, manifest_bytes, parquet_bytes

ui.require_app()
ws = ui.workspace()
dataset_id = ui.current_dataset(ws)
state = ui.dataset_state(ws, dataset_id) if dataset_id is not None else None  # read once
result = ui.saved_result(ws, dataset_id, state) if dataset_id is not None else None
if dataset_id is None or result is None:
    st.info("Run a clustering first (Upload, then Cluster the texts).")
    st.page_link("pages/upload.py", label="Go to Upload", icon=":material/upload_file:")
    st.stop()

# the same tables as Explore's, built once per result and edit state
version = ui.version(result, state)
edited = ui.memo("edited", version, lambda: ui.edited(result, state))
table = ui.memo("table", version, lambda: edited_table(result, edited))
summary = ui.memo(
    "clusters", version, lambda: edited_clusters(result, edited, cache_dir=ws.cache_dir(dataset_id))
)
# the summary's parent ids and the manifest's tree need the cluster tree (1.3 s at 100,000 texts):
# built when their download is asked for, not when the page opens
extra = {"edits": [o.edit.to_dict() | {"applied": o.applied} for o in edited.outcomes]}
stem = ui.file_stem(ws.info(dataset_id).name)
if state.codebook:  # Explore's codebook: category and category_score at the threshold set there
    try:
        coded = curate.export_columns(
            curate.Page(ws, dataset_id, state, result, edited, edited.names), runbox.runtime()
        )
    except PipelineError as exc:
        st.warning(ui.md_escape(f"The codebook's columns are left out: {exc.message}"))
        coded = None
    if coded is not None:
        table, notes = codebook.add_columns(table, coded[0])
        extra["codebook"] = coded[1]
        for note in notes:
            st.text(f"Note: {note}")

st.title("Download")
active = find.filters()
if active:  # Explore's filters: download every row, or the rows they keep
    try:
        kept = facets.filter_mask(table, active)
    except InputError as exc:
        st.warning(ui.md_escape(f"The filters do not apply to this table: {exc.message}"))
        kept = None
    if kept is not None:
        choice = st.radio(
            "Rows",
            ["all", "filtered"],
            format_func={
                "all": f"All {len(table):,} rows",
                "filtered": f"The {int(kept.sum()):,} rows Explore's filters keep",
            }.__getitem__,
            horizontal=True,
            key="export_rows",
        )
        st.caption(ui.md_escape("Filters: " + "; ".join(f.describe() for f in active)))
        if choice == "filtered":
            table = table[kept]
            extra["filters"] = [f.describe() for f in active]
st.text(f"{len(table):,} rows, {len(table.columns)} columns; {int((summary['id'] >= 0).sum())} clusters")
st.caption("CSV and Excel files are spreadsheet-safe: cells that start like a formula get a leading '.")
for note in result.output_notes:  # e.g. an input column named cluster_id, renamed
    st.text(f"Note: {note}")
# Each file is built when its button is clicked (a deferred download), not when the page opens:
# an Excel file of 50,000 rows takes seconds, and most visits download one file or none
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
cols = st.columns(3)
ui.download(cols[0], "Table as CSV", lambda: csv_bytes(table), f"{stem}_clusters.csv", "text/csv", "dl_csv")
if len(table) > ui.EXCEL_IN_APP_ROWS:
    cols[1].info(
        f"Excel here is for tables up to {ui.EXCEL_IN_APP_ROWS:,} rows; this one has {len(table):,}. "
        "Download CSV (Excel opens it) or Parquet."
    )
else:
    ui.download(
        cols[1], "Table as Excel", lambda: excel_bytes(table), f"{stem}_clusters.xlsx", XLSX, "dl_xlsx"
    )
ui.download(
    cols[2],
    "Table as Parquet",
    lambda: parquet_bytes(table),
    f"{stem}_clusters.parquet",
    "application/octet-stream",
    "dl_parquet",
)
cols = st.columns(3)
ui.download(
    cols[0],
    "Cluster summary (CSV)",
    lambda: csv_bytes(clusters_with_parents(result, edited, summary)),
    f"{stem}_summary.csv",
    "text/csv",
    "dl_summary",
)
ui.download(
    cols[1],
    "Run manifest (JSON)",
    lambda: manifest_bytes(result.manifest() | extra),
    f"{stem}_manifest.json",
    "application/json",
    "dl_manifest",
)
st.subheader("Preview")
st.dataframe(table.head(100), hide_index=True, width="stretch")
