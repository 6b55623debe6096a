"""Who is visiting and what is open: the operator's settings, the signed-in person (when the
operator turned sign-in on), their workspace or the workspace of the URL, the open dataset and
the sidebar that lists a workspace's datasets and what others share."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import streamlit as st

from pipeline import PipelineError
from pipeline.operator import OperatorSettings, check_auth_section
from pipeline.store import Person, Team, Tokens, Workspace, default_workspaces_dir, size_text, valid_token

from .text import md_escape, show_error


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


# ---------------------------------------------------------------------------- sign-in


def auth_section() -> Mapping[str, Any] | None:
    """Streamlit's own ``[auth]`` section of secrets.toml (sign-in is on when it is there)."""
    try:
        section = st.secrets.get("auth")
    except Exception:  # no secrets.toml
        return None
    return section if isinstance(section, Mapping) and section else None


def signing_in() -> bool:
    """The operator turned sign-in on: an ``[auth]`` section in secrets.toml."""
    return auth_section() is not None


def person() -> Person | None:
    """Who signed in, as the identity provider says (None: sign-in is off, or nobody yet)."""
    if not signing_in():
        return None
    user = st.user.to_dict()
    if user.get("is_logged_in") is not True:
        return None
    return Person.from_claims(user)


def signed_out() -> bool:
    """Sign-in is on and nobody is signed in: the visitor sees the sign-in page only."""
    return signing_in() and person() is None


def team(settings: OperatorSettings | None = None) -> Team:
    settings = settings or operator()
    return Team(workspaces_root(settings), quota_bytes=settings.quota_bytes, limits=settings.limits)


def sign_in_page(settings: OperatorSettings) -> None:
    """All a signed-out visitor sees: what this is, and the button. Nothing is opened or made."""
    check_auth_section(auth_section() or {}, settings.sign_in_provider)  # say what is missing now
    st.title("Clusterlab")
    st.write("This Clusterlab is for its team: sign in to see your datasets.")
    if st.button("Sign in", type="primary", key="sign_in", icon=":material/login:"):
        st.login(settings.sign_in_provider or None)
    st.stop()


# ---------------------------------------------------------------------------- workspaces


def workspace() -> Workspace:
    """The workspace the open dataset lives in.

    Without sign-in: the workspace named in the URL (``?ws=``), or a new one whose token goes
    into the URL. Only links this server issued (or workspaces that exist already) open: a
    made-up token, however well-formed, starts a new workspace with a notice.

    With sign-in: a signed-out visitor gets the sign-in page and nothing else. A signed-in
    person gets their own workspace, or, while a dataset someone shared with them is open, a
    read-only view of it. ``?ws=`` links open only when the operator set ``token_links``."""
    settings = operator()
    if not signing_in():
        return _token_workspace(settings)
    who = person()
    if who is None:
        sign_in_page(settings)
    if settings.token_links and (st.session_state.get("ws_token") or st.query_params.get("ws")):
        return _token_workspace(settings)
    if "ws" in st.query_params:  # links are off: a ?ws= never opens anything
        del st.query_params["ws"]
        st.warning("Workspace links are turned off on this server: this is your own workspace.")
    owner = st.session_state.get("shared_from")
    if owner:
        try:
            return team(settings).open_shared(who, owner, st.session_state.get("dataset_id") or "")
        except PipelineError as exc:  # revoked or deleted since it was opened
            show_error(exc)
            select_dataset(None, None)
    return own_workspace(settings)


def own_workspace(settings: OperatorSettings | None = None) -> Workspace:
    """The visitor's own workspace, where uploads go (never a dataset shared with them)."""
    settings = settings or operator()
    who = person()
    if who is None or (settings.token_links and st.session_state.get("ws_token")):
        return _token_workspace(settings)
    return team(settings).workspace(who)


def _token_workspace(settings: OperatorSettings) -> Workspace:
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


def read_only() -> bool:
    """The open dataset is someone else's, shared with this person read-only: explore and
    download it, but no settings, edits, runs of other settings or deletion (the store refuses
    those writes too; this hides or disables the controls)."""
    return bool(st.session_state.get("shared_from"))


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
        if not signing_in():
            workspace()  # keep ?ws= from the bookmark
        st.switch_page("app.py")


def select_dataset(ws: Workspace | None, dataset_id: str | None, shared_from: str | None = None) -> None:
    """Open ``dataset_id`` (None: none): its result and the previous dataset's widgets go.
    ``shared_from``: the owner's id, for a dataset someone shared with this person.

    The settings widgets then start from the dataset's saved settings (``widgets._setting``),
    read with the rest of its state where the page loads it, so opening one reads nothing."""
    st.session_state["dataset_id"] = dataset_id
    st.session_state["shared_from"] = shared_from if dataset_id else None
    for key in ("result", "result_key", "memo", "reading", "suggestion", "filters", "query", "search_text"):
        st.session_state.pop(key, None)
    # the previous dataset's slider values must not carry over (nor be saved as this one's)
    for key in [k for k in st.session_state if str(k).startswith(("set:", "kept:"))]:
        del st.session_state[key]


# ---------------------------------------------------------------------------- the sidebar


USAGE_SHOWN_S = 5.0  # the sidebar's "uses ... of ..." is measured again at most this often


def shown_usage(own: Workspace, datasets: list[str]) -> int:
    """The workspace's bytes for the sidebar's line: walking its folders takes 20-30 ms once its
    caches hold a few hundred results. Measured again after ``USAGE_SHOWN_S`` or when the
    datasets change (an upload, a delete); the quota itself is always checked on a fresh walk."""
    key = (own.path, tuple(datasets))
    held = st.session_state.get("usage_shown")
    now = time.monotonic()
    if held is None or held[0] != key or now - held[1] > USAGE_SHOWN_S:
        held = (key, now, own.usage_bytes())
        st.session_state["usage_shown"] = held
    return held[2]


def sidebar(ws: Workspace) -> Callable[[], None]:
    """Your datasets (open, delete, share), those shared with you, and how to come back. Returns
    what writes the line on the workspace's disk use, for after the page: its walk then runs while
    the browser draws the page, where before the page it held back every full rerun (a merge, an
    undo, a slider step) by its 20-30 ms."""
    own = own_workspace() if ws.read_only else ws
    who = person() if signing_in() else None
    with st.sidebar:
        if who is not None:
            st.caption(md_escape(f"Signed in as {who.label}"))
        st.subheader("Your datasets")
        datasets = own.datasets()
        if not datasets:
            st.caption("None yet: upload a file or try the sample.")
        current = st.session_state.get("dataset_id")
        for info in datasets:
            if st.button(
                f"{md_escape(info.name)} · {info.rows:,} rows",  # button labels render Markdown
                key=f"open:{info.id}",
                width="stretch",
                type="primary" if info.id == current and not read_only() else "secondary",
                help=f"{info.rows:,} rows, {len(info.columns)} columns; added {info.added_at[:10]}",
            ):
                select_dataset(own, info.id)
                st.rerun()
        mine = current and not read_only() and current in {d.id for d in datasets}
        if mine:
            if st.button(
                "Delete the open dataset",
                key=f"delete:{current}",
                icon=":material/delete:",
                help="removes the file, its settings, edits and cached results from this workspace",
            ):
                own.delete(current)
                if who is not None:
                    team().revoke(who, current)  # nobody keeps a view of what is gone
                select_dataset(own, None)
                st.rerun()
        if who is not None and not own.token:
            if mine:
                share_box(who, current)
            shared_section(who, current)
        st.divider()
        usage = st.empty()  # written after the page (usage_line)
        if own.token:
            st.caption("Bookmark this page to come back to your workspace. Anyone with the link can open it.")
        if who is not None and st.button("Sign out", key="sign_out", icon=":material/logout:"):
            st.logout()

    def usage_line() -> None:
        if own.quota_bytes:
            # measured after the page: what the page wrote (a run's results) is in the figure
            used = shown_usage(own, [info.id for info in datasets])
            usage.caption(
                f"This workspace uses {size_text(used)} of {size_text(own.quota_bytes)}; deleting a "
                "dataset frees its file and cached results."
            )

    return usage_line


def share_box(who: Person, dataset_id: str) -> None:
    """Share the open dataset read-only with a person by email; revoke a share."""
    shares = team().shared_by(who, dataset_id)
    with st.expander(f"Share the open dataset ({len(shares)})" if shares else "Share the open dataset"):
        st.caption(
            "The person sees it read-only (explore and download, no edits or settings) once they "
            "sign in with this address, verified by the sign-in provider."
        )
        with st.form("share", clear_on_submit=True, border=False):
            email = st.text_input("Their email", key="share_email", placeholder="name@example.org")
            if st.form_submit_button("Share read-only"):
                try:
                    share = team().share(who, dataset_id, email)
                    st.success(md_escape(f"Shared with {share.email}."))
                    shares = team().shared_by(who, dataset_id)
                except PipelineError as exc:
                    show_error(exc)
        for share in shares:
            left, right = st.columns([3, 2], vertical_alignment="center")
            seen = "" if share.recipient else " (not signed in yet)"
            left.caption(md_escape(f"{share.email}{seen}"))
            if right.button("Revoke", key=f"revoke:{dataset_id}:{share.email}"):
                team().revoke(who, dataset_id, share.email)
                st.rerun()


def shared_section(who: Person, current: str | None) -> None:
    """Datasets others shared with this person, marked as shared and by whom."""
    shares = team().shared_with(who)
    if not shares:
        return
    st.subheader("Shared with you")
    for share in shares:
        opened = (
            read_only() and current == share.dataset and st.session_state.get("shared_from") == share.owner
        )
        if st.button(
            f"{md_escape(share.dataset_name)} · shared by {md_escape(share.owner_label)}",
            key=f"shared:{share.owner}:{share.dataset}",
            width="stretch",
            icon=":material/visibility:",
            type="primary" if opened else "secondary",
            help="read-only: explore and download; the owner's settings and edits",
        ):
            select_dataset(None, share.dataset, shared_from=share.owner)
            st.rerun()
