"""Running the pipeline from a page: the live status box, who may call which language model with
which key, and what a run says afterwards (label fallbacks, the cost of naming with a model).

``runtime`` and ``served_on_loopback`` are the tests' hooks: patch them here, where
``run_with_status`` and ``llm_access`` look them up.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from typing import Any

import streamlit as st

import pipeline
import pipeline.stages
from pipeline import PipelineConfig, PipelineError
from pipeline.dataset_state import DatasetState
from pipeline.netguard import UrlGuard
from pipeline.store import Workspace
from pipeline.warmup import warm_in_background

from .session import operator
from .state import text_column
from .text import app_hint, md_escape, show_error
from .widgets import LLM_PANEL, build_config, pipeline_values

log = logging.getLogger("clusterlab.app")
STAGES = pipeline.stages.names()  # from the stages' declarations (pipeline/stages)
STAGE_TITLES = {stage.name: stage.title for stage in pipeline.stages.STAGES}
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


def runtime() -> pipeline.Runtime:
    return pipeline.Runtime()


@functools.cache
def warm_up() -> threading.Thread:
    """The server's warm-up (``pipeline.warmup.warm_in_background``: the default embedding model,
    about 5 s with torch's import, and UMAP's compiled code, 2 s; then the imports a slider step
    needs), started here on the first page view unless the server started it itself (``python -m
    pages.serve``, what ``clusterlab app`` and ``make run`` run). The operator's
    ``preload_model = false`` leaves the model and UMAP to the first run; a wrong setting costs
    nobody the page (it says so), and a failed step is only logged: the step that needs it does
    it again and says what is wrong."""
    try:
        preload = operator().preload_model
    except PipelineError:
        preload = False
    return warm_in_background(PipelineConfig().embed, runtime(), model=preload)


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


def saved_result(ws: Workspace, dataset_id: str, state: DatasetState) -> pipeline.Result | None:
    """The open result, or the dataset's last settings run again (loads from the cache)."""
    key = st.session_state.get("result_key")
    if key is not None and key[0] == dataset_id and st.session_state.get("result") is not None:
        return st.session_state["result"]
    column = text_column(ws, dataset_id, state)
    if column is None:
        return None
    return run_with_status(ws, dataset_id, build_config(column, dict(state.settings)))


def run_with_status(ws: Workspace, dataset_id: str, config: PipelineConfig) -> pipeline.Result | None:
    """Run (or load) the pipeline, showing each stage live in an ``st.status`` box. The box has
    a place on every rerun, empty when nothing ran: Streamlit places elements by position, and a
    box there on a slider step but not after a merge shifted everything below it, so the browser
    built the map (new WebGL contexts) and every table again on each such change."""
    key = (dataset_id, tuple(sorted(config.flat().items())))
    place = st.container()
    if st.session_state.get("result_key") == key:
        return st.session_state["result"]
    started = time.monotonic()
    with place.status("Clustering…", expanded=True) as box:
        lines = {stage: box.empty() for stage in STAGES}
        bar = box.progress(0.0)
        for stage in STAGES:
            lines[stage].text(f"○ {STAGE_TITLES[stage]}: waiting")
        try:
            table = ws.table(dataset_id)
            ws.check_run_quota(dataset_id, len(table.frame))
            access = llm_access(runtime(), config.label.llm.base_url)
            events = pipeline.stream(table, config, cache_dir=ws.cache_dir(dataset_id), runtime=access)
            for event in events:
                lines[event.stage].text(describe(event)) if event.kind != "warning" else box.text(
                    f"⚠ {STAGE_TITLES.get(event.stage, event.stage)}: {app_hint(event.message)}"
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
            label=f"Done in {time.monotonic() - started:.1f} s: {result.n_clusters} clusters found{note}",
            state="complete",
            expanded=False,
        )
    st.session_state["result"] = result
    st.session_state["result_key"] = key
    st.session_state["last_events_cached"] = {s.stage: s.cached for s in result.stages}
    return result


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


def show_llm_estimate(
    ws: Workspace, dataset_id: str, result: pipeline.Result, values: dict[str, Any]
) -> None:
    """Before any call: how many calls and roughly how many tokens naming the clusters takes,
    while the model's panel is open (planning reads every cluster's texts: 0.07 s of every slider
    step at 10,000 texts that nobody looking elsewhere needs)."""
    if values.get("llm_on") or not st.session_state.get(LLM_PANEL):
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
