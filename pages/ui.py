"""UI helpers shared by the pages: workspace, settings widgets, the run status box, safe text.

All ML goes through ``pipeline``'s public API; this module only turns widgets into a
``PipelineConfig`` and events into what the status box shows. User text is only ever
shown as text (``st.text``, dataframes) or escaped before it reaches anything that
renders Markdown or HTML.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import time
from typing import Any

import pandas as pd
import streamlit as st

import pipeline
import pipeline.embedders
import pipeline.stages
from pipeline import PipelineConfig, PipelineError
from pipeline.clustering import CLUSTERERS
from pipeline.edits import Edit, Edited, edited_from_result
from pipeline.netguard import UrlGuard
from pipeline.operator import OperatorSettings
from pipeline.stages.cluster import LARGEST_SHARE  # a larger cluster is flagged, with a fix
from pipeline.store import Tokens, Workspace, default_workspaces_dir, size_text, valid_token

log = logging.getLogger("clusterlab.app")
STAGES = pipeline.stages.names()  # from the stages' declarations (pipeline/stages)
STAGE_TITLES = {stage.name: stage.title for stage in pipeline.stages.STAGES}
# embed.backend -> what the sidebar calls it, from the backends' declarations (pipeline/embedders)
BACKENDS = {name: backend.label for name, backend in pipeline.embedders.BACKENDS.items()}
LEVELS = {  # cluster.epsilon -> what the sidebar calls it
    -1.0: "Automatic: the best separated level",
    0.0: "HDBSCAN's own selection",
}
ABOUT_K = "about_k"  # HDBSCAN's "about K clusters": cluster.n_clusters when the method is hdbscan
APP_KEYS = ("llm_on", ABOUT_K)  # saved with the settings, not PipelineConfig keys as such
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])")

# Export builds every download when its page opens; openpyxl takes about 12 s for 50,000 rows of
# 9 columns here (a million would be minutes and gigabytes), so bigger tables get CSV and Parquet
EXCEL_IN_APP_ROWS = 50_000


def md_escape(text: Any) -> str:
    """Text safe to put inside Markdown: every character Markdown or HTML reads is escaped."""
    return _MARKDOWN.sub(r"\\\1", str(text)).replace("\n", " ")


def show_error(exc: PipelineError) -> None:
    """A pipeline error as a user sees it: the message and what to do, escaped."""
    advice = app_hint(exc.hint)
    hint = f"  \n**What to do:** {md_escape(advice)}" if advice else ""
    st.error(md_escape(exc.message) + hint)


def app_hint(hint: str) -> str:
    """The pipeline's advice in the app's words: a visitor has no --cache-dir or --set."""
    if "--cache-dir" in hint or "CLUSTERLAB_CACHE_DIR" in hint:
        return (
            "delete datasets you no longer need (sidebar); if it persists, tell the person running "
            "Clusterlab that the server's disk is full or its data folder cannot be written"
        )
    return hint


def _setting(key: str, default: Any, saved: dict[str, Any]) -> Any:
    """A settings widget's value: this session's, else the dataset's saved one, else the default.

    Streamlit drops a widget's value while the widget is hidden (HDBSCAN's sliders while k-means
    is chosen); ``kept:`` holds the last value shown, so switching back restores it."""
    kept = st.session_state.get(f"kept:{key}", saved.get(key, default))
    return st.session_state.setdefault(f"set:{key}", kept)


def _keep(values: dict[str, Any]) -> None:
    for key, value in values.items():
        st.session_state[f"kept:{key}"] = value


def cell_text(value: Any) -> str:
    """A data_editor cell as text: an emptied cell comes back as None (or NaN), never "None"."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return ""
    return str(value)


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
    st.session_state["dataset_id"] = dataset_id
    for key in ("result", "result_key", "map_selection"):
        st.session_state.pop(key, None)
    # the previous dataset's slider values must not carry over (nor be saved as this one's)
    for key in [k for k in st.session_state if str(k).startswith(("set:", "kept:"))]:
        del st.session_state[key]
    if dataset_id:
        state = ws.state(dataset_id)
        for key, value in state.get("settings", {}).items():
            st.session_state[f"set:{key}"] = value


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


def settings_widgets(n_texts: int, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """The clustering and reduction controls; returns ``{"section.key": value}``.

    ``saved`` are the dataset's last settings: Streamlit forgets a widget's value when its
    page is not shown, so coming back to Explore starts from them, not from defaults."""
    get = functools.partial(_setting, saved=saved or {})

    values: dict[str, Any] = {}
    st.subheader("Clustering")
    get("cluster.algorithm", PipelineConfig().cluster.algorithm)
    algorithm = st.radio(
        "Method",
        list(CLUSTERERS),
        key="set:cluster.algorithm",
        format_func=lambda a: CLUSTERERS[a].label,
    )
    values["cluster.algorithm"] = algorithm
    clusterer = CLUSTERERS[algorithm]  # its declaration says which controls apply
    uses = clusterer.settings
    size_max, samples_max = slider_bounds(n_texts)
    if "min_cluster_size" in uses:
        get("cluster.min_cluster_size", 0)
        values["cluster.min_cluster_size"] = st.slider(
            "Min cluster size (0 = automatic)",
            0,
            size_max,
            key="set:cluster.min_cluster_size",
            help="the smallest group of texts that counts as a cluster; larger = fewer, bigger clusters",
        )
    if "min_samples" in uses:
        get("cluster.min_samples", 0)
        values["cluster.min_samples"] = st.slider(
            "Min samples (0 = automatic)",
            0,
            samples_max,
            key="set:cluster.min_samples",
            help="how conservative clustering is; larger = more texts left unclustered",
        )
    if clusterer.about_k:
        get(ABOUT_K, 0)
        values[ABOUT_K] = st.number_input(
            "About this many clusters (0 = let HDBSCAN decide)",
            0,
            int(max(2, min(1000, n_texts))),
            key=f"set:{ABOUT_K}",
            help="HDBSCAN's clusters are split or joined (closest first) to about this many; "
            "its unclustered texts stay unclustered. For exactly this many, use k-means.",
        )
    if "epsilon" in uses:
        if get("cluster.epsilon", -1.0) not in LEVELS:  # e.g. a distance set on the command line
            st.session_state["set:cluster.epsilon"] = -1.0
        values["cluster.epsilon"] = st.selectbox(
            "Level",
            list(LEVELS),
            key="set:cluster.epsilon",
            format_func=LEVELS.__getitem__,
            help="automatic: HDBSCAN's fine clusters joined to the best separated level, no cluster "
            "holding most texts when that can be avoided; HDBSCAN's own: its selection as it is, "
            "which leaves more texts unclustered",
        )
    if "method" in uses:
        get("cluster.method", "eom")
        values["cluster.method"] = st.selectbox(
            "Selection",
            ["eom", "leaf"],
            key="set:cluster.method",
            format_func=lambda m: {
                "eom": "eom: fewer, larger clusters",
                "leaf": "leaf: more, smaller clusters",
            }[m],
        )
    if clusterer.noise:
        get("cluster.assign_outliers", False)
        values["cluster.assign_outliers"] = st.checkbox(
            "Assign unclustered texts to their nearest cluster",
            key="set:cluster.assign_outliers",
            help="a text joins a cluster when it lies close to it and its nearest neighbours agree; "
            "texts far from every cluster stay unclustered. The original label stays in raw_cluster_id",
        )
    if clusterer.needs_k:
        get("cluster.n_clusters", min(10, max(2, n_texts // 10)))
        values["cluster.n_clusters"] = st.slider(
            "Number of clusters", 1, int(max(2, min(200, n_texts))), key="set:cluster.n_clusters"
        )
    with st.expander("Reduction (UMAP)"):
        get("reduce.n_neighbors", 15)
        values["reduce.n_neighbors"] = st.slider(
            "Neighbours",
            2,
            100,
            key="set:reduce.n_neighbors",
            help="larger = broader structure, fewer clusters",
        )
        get("reduce.n_components", 5)
        values["reduce.n_components"] = st.slider(
            "Dimensions for clustering", 2, 20, key="set:reduce.n_components"
        )
        get("reduce.min_dist", 0.0)
        values["reduce.min_dist"] = st.slider("Min distance", 0.0, 0.99, step=0.01, key="set:reduce.min_dist")
    with st.expander("Embedding"):
        get("embed.backend", "torch")
        values["embed.backend"] = st.selectbox(
            "Backend",
            list(BACKENDS),
            key="set:embed.backend",
            format_func=BACKENDS.__getitem__,
            help="how the texts become vectors (the same model, all-MiniLM-L6-v2). Changing it embeds "
            "the texts again; each backend's vectors are cached, so switching back is instant.",
        )
    _keep(values)
    return values


def slider_bounds(n_texts: int) -> tuple[int, int]:
    """The largest min cluster size and min samples the sliders offer for ``n_texts`` rows."""
    upper = int(max(20, min(500, n_texts // 2)))
    return upper, min(100, upper)


def apply_suggestion(settings: dict[str, int], n_texts: int) -> None:
    """An ``on_click`` callback: put a suggested HDBSCAN setting into the sidebar's sliders.

    Callbacks run before the script, so the widgets are created with the new values (a widget's
    value cannot be set once it exists in a run)."""
    size_max, samples_max = slider_bounds(n_texts)
    st.session_state["set:cluster.algorithm"] = "hdbscan"
    size = int(settings.get("cluster.min_cluster_size", 0))
    samples = int(settings.get("cluster.min_samples", 0))
    st.session_state["set:cluster.min_cluster_size"] = min(size, size_max)
    st.session_state["set:cluster.min_samples"] = min(samples, samples_max)


def fix_large_cluster(result: pipeline.Result, n_texts: int) -> None:
    """An ``on_click`` callback: sweep settings on the cached reduction and put the recommended
    one into the sliders (a sweep never recommends a setting with a large cluster when another
    has none); when no setting avoids it, say what else to try."""
    from pipeline.clustering.sweep import suggest_settings

    try:
        suggestion = suggest_settings(
            result.projection, weights=result.corpus.counts, vectors=result.embeddings.vectors
        )
    except Exception:  # a sweep never costs the results
        log.exception("suggest_settings failed")
        st.session_state["fix_blob_note"] = "No other setting could be tried on these texts."
        return
    best = suggestion.table[suggestion.table["recommended"]]
    if best.empty or float(best["largest_share"].iloc[0]) > LARGEST_SHARE:
        st.session_state["fix_blob_note"] = (
            "No min cluster size avoids one large cluster here. Try 'About this many clusters' in the "
            "sidebar, or k-means with a number of clusters."
        )
        return
    apply_suggestion(suggestion.settings, n_texts)
    st.session_state["fix_blob_note"] = f"Applied: {suggestion.reason}"


def build_config(text_column: str, values: dict[str, Any]) -> PipelineConfig:
    """The config of saved or widget settings (the app's own switches translated or left out)."""
    return PipelineConfig().with_values({"preprocess.text_column": text_column, **pipeline_values(values)})


def typed_api_key() -> str:
    """The key typed in the app: kept in this browser session only, never saved."""
    return str(st.session_state.get("llm_key") or "").strip()


def operator_api_key() -> str | None:
    """The server's own key: ``OPENAI_API_KEY`` in secrets.toml or the environment."""
    try:
        key = st.secrets.get("OPENAI_API_KEY")
    except Exception:  # no secrets.toml
        key = None
    return str(key or os.environ.get("OPENAI_API_KEY", "")).strip() or None


def served_on_loopback() -> bool:
    """The app listens on loopback only (``make run``'s default): its visitor is its owner."""
    address = str(st.get_option("server.address") or "").strip("[]").lower()
    return address in LOOPBACK_NAMES


def llm_access(runtime: pipeline.Runtime, base_url: str) -> pipeline.Runtime:
    """Who may send what where. The server's own key goes only to the operator's URL
    (``llm_base_url``); a URL typed in the app (or saved with a dataset's settings) gets only a
    key typed in the app, in this browser session, and reaches only public addresses or the
    hosts the operator allows (``netguard``)."""
    settings = operator()
    own_url = base_url.strip().rstrip("/") == settings.llm_base_url.strip().rstrip("/")
    typed = typed_api_key()
    if typed:
        key, bound_to = typed, base_url
    elif own_url:
        key, bound_to = operator_api_key(), settings.llm_base_url
    else:
        key, bound_to = None, base_url
    guard = None if own_url else UrlGuard(settings.llm_allowed_hosts, allow_loopback=served_on_loopback())
    return dataclasses.replace(
        runtime, llm_api_key=key, llm_key_url=bound_to, llm_env_key=False, llm_guard=guard
    )


def runtime() -> pipeline.Runtime:
    return pipeline.Runtime()


def llm_widgets(saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """Opt-in cluster names from an OpenAI-compatible API; returns its ``label.*`` settings."""
    from pipeline.config import DEFAULT_LLM_MODEL

    get = functools.partial(_setting, saved=saved or {})

    values: dict[str, Any] = {}
    with st.expander("Names from a language model"):
        st.caption(
            "Any OpenAI-compatible server: OpenAI, or a local Ollama, llama.cpp or vLLM. "
            "Only cluster keywords and a few example texts are sent; unclustered texts never are."
        )
        get("label.llm.base_url", operator().llm_base_url)
        values["label.llm.base_url"] = st.text_input("Server URL", key="set:label.llm.base_url").strip()
        get("label.llm.model", DEFAULT_LLM_MODEL)
        values["label.llm.model"] = st.text_input("Model", key="set:label.llm.model").strip()
        st.text_input(
            "API key",
            type="password",
            key="llm_key",
            help="kept in this browser session only and sent only to the server URL above. Without "
            "one, the server's own key (if it has one) is used, and only for its own server URL",
        )
        get("label.llm.max_clusters", 0)
        values["label.llm.max_clusters"] = st.number_input(
            "Label at most this many clusters, largest first (0 = all)",
            0,
            1000,
            key="set:label.llm.max_clusters",
        )
        get("llm_on", False)
        on = st.toggle("Name clusters with the model", key="set:llm_on")
    values["label.method"] = "llm" if on else "keywords"
    values["llm_on"] = on
    return values


def pipeline_values(values: dict[str, Any]) -> dict[str, Any]:
    """Widget values as PipelineConfig takes them: the app's own switches left out, and HDBSCAN's
    "about K clusters" as ``cluster.n_clusters`` (k-means keeps its own slider and value, so
    switching methods never carries one K over to the other)."""
    out = {k: v for k, v in values.items() if k not in APP_KEYS}
    if values.get("cluster.algorithm", "hdbscan") == "hdbscan" and ABOUT_K in values:
        out["cluster.n_clusters"] = int(values[ABOUT_K] or 0)
    return out


def show_llm_estimate(
    ws: Workspace, dataset_id: str, result: pipeline.Result, values: dict[str, Any]
) -> None:
    """Before any call: how many calls and roughly how many tokens naming the clusters takes."""
    if values.get("llm_on"):
        st.session_state.pop("llm_estimate", None)  # answers may be cached after this run
        return
    try:
        config = result.config.with_values({**pipeline_values(values), "label.method": "llm"})
        # planning the prompts reads every cluster's texts (about 3 s for 100,000 texts): once per
        # clustering and settings, not on every rerun of the page
        memo_key = (dataset_id, tuple(sorted(result.keys.items())), config.label)
        memo = st.session_state.get("llm_estimate")
        if memo is None or memo[0] != memo_key:
            memo = (
                memo_key,
                pipeline.estimate_llm_labels(result, config, cache_dir=ws.cache_dir(dataset_id)),
            )
            st.session_state["llm_estimate"] = memo
        estimate = memo[1]
    except PipelineError as exc:
        st.sidebar.warning(md_escape(exc.message))
        return
    st.sidebar.caption(md_escape(f"Naming with the model would take {estimate}."))


def show_label_fallbacks(result: pipeline.Result) -> None:
    failed = [f for f in result.label_fallbacks if f.kind == "failed"]
    capped = [f for f in result.label_fallbacks if f.kind == "capped"]
    if failed:
        lines = "; ".join(f"cluster {f.cluster}: {f.reason}" for f in failed[:10])
        st.warning(
            md_escape(
                f"{len(failed)} clusters kept keyword names because the model call failed ({lines}). "
                "Running again asks only for those."
            )
        )
    if capped:
        st.info(md_escape(f"{len(capped)} smaller clusters kept keyword names (over the cap)."))


def saved_result(ws: Workspace, dataset_id: str) -> pipeline.Result | None:
    """The open result, or the dataset's last settings run again (loads from the cache)."""
    key = st.session_state.get("result_key")
    if key is not None and key[0] == dataset_id and st.session_state.get("result") is not None:
        return st.session_state["result"]
    column = text_column(ws, dataset_id)
    if column is None:
        return None
    return run_with_status(
        ws, dataset_id, build_config(column, pipeline_values(ws.state(dataset_id).get("settings", {})))
    )


def run_with_status(ws: Workspace, dataset_id: str, config: PipelineConfig) -> pipeline.Result | None:
    """Run (or load) the pipeline, showing each stage live in an ``st.status`` box."""
    key = (dataset_id, tuple(sorted(config.flat().items())))
    if st.session_state.get("result_key") == key:
        return st.session_state["result"]
    started = time.monotonic()
    with st.status("Clustering…", expanded=True) as box:
        lines = {stage: box.empty() for stage in STAGES}
        bar = box.progress(0.0)
        for stage in STAGES:
            lines[stage].text(f"○ {STAGE_TITLES[stage]}: waiting")
        try:
            table = ws.table(dataset_id)
            check_run_quota(ws, dataset_id, table)
            access = llm_access(runtime(), config.label.llm.base_url)
            events = pipeline.stream(table, config, cache_dir=ws.cache_dir(dataset_id), runtime=access)
            for event in events:
                lines[event.stage].text(describe(event)) if event.kind != "warning" else box.text(
                    f"⚠ {STAGE_TITLES.get(event.stage, event.stage)}: {event.message}"
                )
                done = STAGES.index(event.stage) + (1.0 if event.kind == "finished" else event.fraction)
                bar.progress(min(done / len(STAGES), 1.0))
            result = events.result
        except PipelineError as exc:
            box.update(label=f"{STAGE_TITLES.get(exc.stage, exc.stage)} failed", state="error", expanded=True)
            show_error(exc)
            return None
        except Exception:  # never a traceback on screen; it goes to the log
            log.exception("unexpected error while clustering")
            box.update(label="Clustering failed", state="error", expanded=True)
            st.error(
                "Something unexpected broke while clustering; the details are in the server log. "
                "Finished stages are cached: running again resumes where it stopped."
            )
            return None
        cached = [s.stage for s in result.stages if s.cached]
        note = f" ({', '.join(cached)} from cache)" if cached else ""
        box.update(
            label=f"Done in {time.monotonic() - started:.1f} s: {result.n_clusters} clusters{note}",
            state="complete",
            expanded=False,
        )
    st.session_state["result"] = result
    st.session_state["result_key"] = key
    st.session_state["last_events_cached"] = {s.stage: s.cached for s in result.stages}
    return result


def check_run_quota(ws: Workspace, dataset_id: str, table: pipeline.Table) -> None:
    ws.check_run_quota(dataset_id, len(table.frame))


def describe(event: pipeline.Event) -> str:
    title = STAGE_TITLES.get(event.stage, event.stage)
    if event.kind == "finished":
        source = "from cache" if event.cached else f"done in {event.elapsed_s:.1f} s"
        return f"✓ {title}: {source} · {event.message.split(': ', 1)[-1]}"
    if event.kind == "failed":
        return f"✗ {title}: failed after {event.elapsed_s:.1f} s"
    if event.kind == "started":
        return f"… {title}: {'loading from cache' if event.cached else 'started'}"
    return f"… {title}: {event.fraction:.0%} · {event.elapsed_s:.0f} s · {event.message}"


def edits_for(ws: Workspace, dataset_id: str) -> list[Edit]:
    return [Edit.from_dict(e) for e in ws.state(dataset_id).get("edits", [])]


def save_edits(ws: Workspace, dataset_id: str, edits: list[Edit], steps: list[int] | None = None) -> None:
    """Save the edit log. ``steps`` groups it into what one click made (a tree merge is several
    merges): Undo takes back a whole step. Without it, every edit is its own step."""
    state = ws.state(dataset_id)
    state["edits"] = [e.to_dict() for e in edits]
    state["edit_steps"] = steps if steps is not None and sum(steps) == len(edits) else [1] * len(edits)
    ws.save_state(dataset_id, state)


def edit_steps(ws: Workspace, dataset_id: str) -> list[int]:
    """How many edits each click added, oldest first (an older log: one edit per step)."""
    state = ws.state(dataset_id)
    count = len(state.get("edits", []))
    steps = [int(s) for s in state.get("edit_steps", []) if int(s) > 0]
    return steps if sum(steps) == count else [1] * count


def add_edits(ws: Workspace, dataset_id: str, new: list[Edit]) -> None:
    """Append edits made by one click, as one step."""
    if new:
        save_edits(ws, dataset_id, edits_for(ws, dataset_id) + new, edit_steps(ws, dataset_id) + [len(new)])


def undo_edits(ws: Workspace, dataset_id: str) -> None:
    """Take back the last step (one click's edits)."""
    steps = edit_steps(ws, dataset_id)
    if steps:
        edits = edits_for(ws, dataset_id)
        save_edits(ws, dataset_id, edits[: len(edits) - steps[-1]], steps[:-1])


def save_settings(ws: Workspace, dataset_id: str, text_column: str, values: dict[str, Any]) -> None:
    state = ws.state(dataset_id)
    if state.get("settings") != values or state.get("text_column") != text_column:
        state.update(settings=values, text_column=text_column)
        ws.save_state(dataset_id, state)


def save_text_column(ws: Workspace, dataset_id: str, column: str) -> None:
    state = ws.state(dataset_id)
    if state.get("text_column") != column:
        state["text_column"] = column
        ws.save_state(dataset_id, state)


def edited(ws: Workspace, dataset_id: str, result: pipeline.Result) -> Edited:
    return edited_from_result(result, edits_for(ws, dataset_id))


def text_column(ws: Workspace, dataset_id: str) -> str | None:
    state = ws.state(dataset_id)
    return state.get("text_column") or ws.info(dataset_id).suggested_column
