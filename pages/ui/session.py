"""Who is visiting and what is open: the operator's settings, the workspace of the URL, the open
dataset and the sidebar that lists a workspace's datasets."""

from __future__ import annotations

import streamlit as st

from pipeline import PipelineError
from pipeline.operator import OperatorSettings
from pipeline.store import Tokens, Workspace, default_workspaces_dir, size_text, valid_token

from .text import md_escape


def operator() -> OperatorSettings:
    """The operator's settings: ``[clusterlab]`` in secrets.toml, each overridden by its
    ``CLUSTERLAB_<NAME>`` environment variable. Nothing a visitor types reaches them."""
    try:
        section = st.secrets.get("clusterlab", {})
    except Exception:  # no secrets.toml: the environment and the defaults
        section = {}
    return OperatorSettings.load(section)


def workspaces_root(settings: OperatorSettings | None = None) -> str:
    settings = settings or operator()
    return str(settings.workspaces_dir or default_workspaces_dir())


def tokens(settings: OperatorSettings | None = None) -> Tokens:
    """What issues and recognises this server's workspace links."""
    settings = settings or operator()
    return Tokens.for_root(workspaces_root(settings), settings.token_secret)


def workspace() -> Workspace:
    """The workspace named in the URL (``?ws=``), or a new one whose token goes into the URL.

    Only links this server issued (or workspaces that exist already) open: a made-up token,
    however well-formed, starts a new workspace with a notice."""
    settings = operator()
    root, issuer = workspaces_root(settings), tokens(settings)
    options = dict(tokens=issuer, quota_bytes=settings.quota_bytes, limits=settings.limits)
    token = st.session_state.get("ws_token") or st.query_params.get("ws")
    ws = None
    if token:
        try:
            ws = Workspace(token, root, **options) if valid_token(token) else None
        except PipelineError:
            ws = None
        if ws is None:
            st.warning("That workspace link is not valid; a new, empty workspace was started.")
    if ws is None:
        ws = Workspace(issuer.new(), root, **options)
    st.session_state["ws_token"] = ws.token
    if st.query_params.get("ws") != ws.token:
        st.query_params["ws"] = ws.token  # a bookmark of this URL comes back here
    return ws


def current_dataset(ws: Workspace) -> str | None:
    """The open dataset; after a reload or a bookmark, the workspace's newest one."""
    datasets = ws.datasets()
    dataset_id = st.session_state.get("dataset_id")
    if dataset_id and dataset_id in {d.id for d in datasets}:
        return dataset_id
    if datasets and "dataset_id" not in st.session_state:  # a new session: reopen, don't ask again
        select_dataset(ws, datasets[0].id)
        return datasets[0].id
    return None


def require_app() -> None:
    """Pages run through app.py's navigation. On a fresh server, a bookmarked page URL can
    reach a page script directly (Streamlit's pages/ folder mode): go through app.py first."""
    if not st.session_state.get("via_app"):
        workspace()  # keep ?ws= from the bookmark
        st.switch_page("app.py")


def select_dataset(ws: Workspace, dataset_id: str | None) -> None:
    """Open ``dataset_id`` (None: none): its result and the previous dataset's widgets go.

    The settings widgets then start from the dataset's saved settings (``widgets._setting``),
    read with the rest of its state where the page loads it, so opening one reads nothing."""
    st.session_state["dataset_id"] = dataset_id
    for key in ("result", "result_key", "memo", "reading", "suggestion", "filters", "query", "search_text"):
        st.session_state.pop(key, None)
    # the previous dataset's slider values must not carry over (nor be saved as this one's)
    for key in [k for k in st.session_state if str(k).startswith(("set:", "kept:"))]:
        del st.session_state[key]


def sidebar(ws: Workspace) -> None:
    """Datasets of this workspace (open, delete) and the link that returns here."""
    with st.sidebar:
        st.subheader("Your datasets")
        datasets = ws.datasets()
        if not datasets:
            st.caption("None yet: upload a file or try the sample.")
        current = st.session_state.get("dataset_id")
        for info in datasets:
            if st.button(
                f"{md_escape(info.name)} · {info.rows:,} rows",  # button labels render Markdown
                key=f"open:{info.id}",
                width="stretch",
                type="primary" if info.id == current else "secondary",
                help=f"{info.rows:,} rows, {len(info.columns)} columns; added {info.added_at[:10]}",
            ):
                select_dataset(ws, info.id)
                st.rerun()
        if current and current in {d.id for d in datasets}:
            if st.button(
                "Delete the open dataset",
                key=f"delete:{current}",
                icon="🗑",
                help="removes the file, its settings, edits and cached results from this workspace",
            ):
                ws.delete(current)
                select_dataset(ws, None)
                st.rerun()
        st.divider()
        if ws.quota_bytes:
            used = ws.usage_bytes()
            st.caption(
                f"This workspace uses {size_text(used)} of {size_text(ws.quota_bytes)}; deleting a "
                "dataset frees its file and cached results."
            )
        st.caption("Bookmark this page to come back to your workspace. Anyone with the link can open it.")
