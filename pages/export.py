"""Export: the labeled table (CSV, Excel, Parquet), the cluster summary and the manifest."""

import streamlit as st

from pages import ui
from pipeline import InputError
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

edited = ui.edited(result, state)
table = edited_table(result, edited)
clusters = clusters_with_parents(result, edited, edited_clusters(result, edited))
manifest = result.manifest()
manifest["edits"] = [o.edit.to_dict() | {"applied": o.applied} for o in edited.outcomes]
stem = ws.info(dataset_id).name.rsplit(".", 1)[0] or "clusters"

st.title("Download")
st.text(f"{len(table):,} rows, {len(table.columns)} columns; {int((clusters['id'] >= 0).sum())} clusters")
st.caption("CSV and Excel files are spreadsheet-safe: cells that start like a formula get a leading '.")
for note in result.output_notes:  # e.g. an input column named cluster_id, renamed
    st.text(f"Note: {note}")
cols = st.columns(3)
cols[0].download_button("Table as CSV", csv_bytes(table), f"{stem}_clusters.csv", "text/csv", key="dl_csv")
if len(table) > ui.EXCEL_IN_APP_ROWS:
    cols[1].info(
        f"Excel here is for tables up to {ui.EXCEL_IN_APP_ROWS:,} rows; this one has {len(table):,}. "
        "Download CSV (Excel opens it) or Parquet."
    )
else:
    try:
        cols[1].download_button(
            "Table as Excel",
            excel_bytes(table),
            f"{stem}_clusters.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            key="dl_xlsx",
        )
    except InputError as exc:
        cols[1].warning(ui.md_escape(exc.message))
cols[2].download_button(
    "Table as Parquet",
    parquet_bytes(table),
    f"{stem}_clusters.parquet",
    "application/octet-stream",
    key="dl_parquet",
)
cols = st.columns(3)
cols[0].download_button(
    "Cluster summary (CSV)", csv_bytes(clusters), f"{stem}_summary.csv", "text/csv", key="dl_summary"
)
cols[1].download_button(
    "Run manifest (JSON)",
    manifest_bytes(manifest),
    f"{stem}_manifest.json",
    "application/json",
    key="dl_manifest",
)
st.subheader("Preview")
st.dataframe(table.head(100), hide_index=True, width="stretch")
