"""Clusterlab: upload a table of short texts, find its clusters, name them, download.

``streamlit run app.py`` (or ``make run``). Page config, the workspace (or, with sign-in on,
the sign-in page), the shared sidebar and navigation live here; each page in pages/ is a thin
script over ``pipeline``.
"""

import logging

import streamlit as st

import pipeline
from pages import ui

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
st.set_page_config(page_title="Clusterlab", page_icon=":material/hub:", layout="wide")
ui.page_style()  # changes come in one step, not faded in (see PAGE_CSS)

st.session_state["via_app"] = True
ui.warm_up()  # once per server process, in the background: the model, UMAP, imports
PAGES = [
    st.Page("pages/upload.py", title="Upload", icon=":material/upload_file:", default=True),
    st.Page("pages/explore.py", title="Explore", icon=":material/scatter_plot:"),
    st.Page("pages/export.py", title="Export", icon=":material/download:"),
]
try:
    # with sign-in on, a signed-out visitor sees no pages: workspace() shows the sign-in and stops
    navigation = st.navigation(PAGES, position="hidden" if ui.signed_out() else "sidebar")
    ws = ui.workspace()
except pipeline.PipelineError as exc:  # the operator's settings are wrong: say which, to everyone
    ui.show_error(exc)
    st.stop()
ui.current_dataset(ws)  # after a reload or a bookmark, the newest: highlighted in the sidebar
usage_line = ui.sidebar(ws)
try:
    navigation.run()
finally:  # also after st.stop() or st.rerun() in the page
    usage_line()
