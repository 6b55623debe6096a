"""The sidebar's settings: widgets that only build a ``PipelineConfig``.

Defaults come from ``PipelineConfig()``, the method choice and which controls it shows from the
clustering algorithms' declarations (``pipeline.clustering.CLUSTERERS``), the backend list from
``pipeline.embedders.BACKENDS``: none of them is restated here.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import streamlit as st

import pipeline
import pipeline.embedders
from pipeline import PipelineConfig
from pipeline.clustering import CLUSTERERS
from pipeline.clustering.readouts import LARGEST_SHARE  # a larger cluster is flagged, with a fix
from pipeline.clustering.sweep import Suggestion
from pipeline.config import MIN_NEAR_DUPLICATES
from pipeline.duplicates import THRESHOLD as NEAR_DUPLICATES_DEFAULT

from .session import operator, read_only

log = logging.getLogger("clusterlab.app")
DEFAULTS = PipelineConfig()
# embed.backend -> what the sidebar calls it, from the backends' declarations (pipeline/embedders)
BACKENDS = {name: backend.label for name, backend in pipeline.embedders.BACKENDS.items()}
LEVELS = {  # cluster.epsilon -> what the sidebar calls it
    -1.0: "Automatic: the best separated level",
    0.0: "HDBSCAN's own selection",
}
SELECTIONS = {  # cluster.method -> what the sidebar calls it
    "eom": "eom: fewer, larger clusters",
    "leaf": "leaf: more, smaller clusters",
}
# "about K clusters", for an algorithm that declares about_k: cluster.n_clusters when it is chosen
ABOUT_K = "about_k"
LLM_PANEL = "llm_panel"  # the open state of the sidebar's panel "Names from a language model"
# near-duplicates counted once (cluster.near_duplicates = the similarity when on, else 0): kept
# apart so the similarity the user picked survives switching it off
NEAR_DUPLICATES_ON, NEAR_DUPLICATES_AT = "near_duplicates_on", "near_duplicates_at"
APP_KEYS = ("llm_on", ABOUT_K, NEAR_DUPLICATES_ON, NEAR_DUPLICATES_AT)  # saved with the settings


def _setting(key: str, default: Any, saved: dict[str, Any]) -> Any:
    """A settings widget's value: this session's, else the dataset's saved one, else the default.

    Streamlit drops a widget's value while the widget is hidden (HDBSCAN's sliders while k-means
    is chosen); ``kept:`` holds the last value shown, so switching back restores it."""
    kept = st.session_state.get(f"kept:{key}", saved.get(key, default))
    return st.session_state.setdefault(f"set:{key}", kept)


def _keep(values: dict[str, Any]) -> None:
    for key, value in values.items():
        st.session_state[f"kept:{key}"] = value


def settings_widgets(n_texts: int, saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """The clustering and reduction controls; returns ``{"section.key": value}``.

    ``saved`` are the dataset's last settings: Streamlit forgets a widget's value when its
    page is not shown, so coming back to Explore starts from them, not from defaults."""
    if read_only():  # someone else's dataset, shared: their settings, not changeable here
        st.caption("Shared with you read-only: the owner's settings.")
        return dict(saved or {})
    get = functools.partial(_setting, saved=saved or {})
    cluster, reduce = DEFAULTS.cluster, DEFAULTS.reduce
    for key, value in st.session_state.pop("pending_settings", {}).items():  # e.g. a suggestion applied
        st.session_state[f"set:{key}"] = value

    values: dict[str, Any] = {}
    st.subheader("Clustering")
    get("cluster.algorithm", cluster.algorithm)
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
        get("cluster.min_cluster_size", cluster.min_cluster_size)
        # only values the pipeline takes: 0 (automatic) or 2 and more (a cluster of 1 is no cluster)
        sizes = [0, *range(2, size_max + 1)]
        chosen = int(st.session_state.get("set:cluster.min_cluster_size") or 0)
        if chosen not in sizes:  # saved by an older version, or for a larger dataset
            st.session_state["set:cluster.min_cluster_size"] = min(max(chosen, 2), size_max)
        values["cluster.min_cluster_size"] = st.select_slider(
            "Min cluster size (0 = automatic)",
            sizes,
            key="set:cluster.min_cluster_size",
            help="the smallest group of texts that counts as a cluster; larger = fewer, bigger clusters",
        )
    if "min_samples" in uses:
        get("cluster.min_samples", cluster.min_samples)
        values["cluster.min_samples"] = st.slider(
            "Min samples (0 = automatic)",
            0,
            samples_max,
            key="set:cluster.min_samples",
            help="how conservative clustering is; larger = more texts left unclustered",
        )
    if clusterer.about_k:
        get(ABOUT_K, cluster.n_clusters)
        values[ABOUT_K] = st.number_input(
            f"About this many clusters (0 = let {clusterer.title} decide)",
            0,
            int(max(2, min(1000, n_texts))),
            key=f"set:{ABOUT_K}",
            help=f"{clusterer.title}'s clusters are split or joined (closest first) to about this many; "
            "its unclustered texts stay unclustered. For exactly this many, use k-means.",
        )
    if "epsilon" in uses:
        if get("cluster.epsilon", cluster.epsilon) not in LEVELS:  # e.g. a distance set on the command line
            st.session_state["set:cluster.epsilon"] = cluster.epsilon
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
        get("cluster.method", cluster.method)
        values["cluster.method"] = st.selectbox(
            "Selection", list(SELECTIONS), key="set:cluster.method", format_func=SELECTIONS.__getitem__
        )
    if clusterer.noise:
        get("cluster.assign_outliers", cluster.assign_outliers)
        values["cluster.assign_outliers"] = st.checkbox(
            "Assign unclustered texts to their nearest cluster",
            key="set:cluster.assign_outliers",
            help="a text joins a cluster when it lies close to it and its nearest neighbours agree; "
            "texts far from every cluster stay unclustered. The original label stays in raw_cluster_id",
        )
    if clusterer.needs_k:
        # PipelineConfig has no K to offer (0 = unset): start from one that fits the corpus
        get("cluster.n_clusters", min(10, max(2, n_texts // 10)))
        values["cluster.n_clusters"] = st.slider(
            "Number of clusters", 1, int(max(2, min(200, n_texts))), key="set:cluster.n_clusters"
        )
    with st.expander("Near-duplicates"):
        get(NEAR_DUPLICATES_ON, cluster.near_duplicates > 0)
        values[NEAR_DUPLICATES_ON] = st.toggle(
            "Count each group once in the clustering",
            key=f"set:{NEAR_DUPLICATES_ON}",
            help="texts at least this similar (different spellings, a template with another name in "
            "it) form a group: one of them is clustered, weighted by the group's rows, and the others "
            "get its cluster, as exact duplicates always are. The groups are listed on Explore.",
        )
        get(NEAR_DUPLICATES_AT, cluster.near_duplicates or NEAR_DUPLICATES_DEFAULT)
        values[NEAR_DUPLICATES_AT] = st.slider(
            "Similarity at least (cosine)",
            MIN_NEAR_DUPLICATES,
            1.0,
            step=0.01,
            key=f"set:{NEAR_DUPLICATES_AT}",
            help="1 = the same meaning to the model; lower groups texts that differ more",
        )
    with st.expander("Reduction (UMAP)"):
        get("reduce.n_neighbors", reduce.n_neighbors)
        values["reduce.n_neighbors"] = st.slider(
            "Neighbours",
            2,
            100,
            key="set:reduce.n_neighbors",
            help="larger = broader structure, fewer clusters",
        )
        get("reduce.n_components", reduce.n_components)
        values["reduce.n_components"] = st.slider(
            "Dimensions for clustering", 2, 20, key="set:reduce.n_components"
        )
        get("reduce.min_dist", reduce.min_dist)
        values["reduce.min_dist"] = st.slider("Min distance", 0.0, 0.99, step=0.01, key="set:reduce.min_dist")
    with st.expander("Embedding"):
        get("embed.backend", DEFAULTS.embed.backend)
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


def llm_widgets(saved: dict[str, Any] | None = None) -> dict[str, Any]:
    """Opt-in cluster names from an OpenAI-compatible API; returns its ``label.*`` settings."""
    if read_only():  # the owner's settings (settings_widgets returned them all)
        return {}
    get = functools.partial(_setting, saved=saved or {})
    llm = DEFAULTS.label.llm

    values: dict[str, Any] = {}
    # stateful: the page estimates the model's calls only while this is open (show_llm_estimate)
    with st.expander("Names from a language model", key=LLM_PANEL, on_change="rerun"):
        st.caption(
            "Any OpenAI-compatible server: OpenAI, or a local Ollama, llama.cpp or vLLM. "
            "Only cluster keywords and a few example texts are sent; unclustered texts never are."
        )
        get("label.llm.base_url", operator().llm_base_url)
        values["label.llm.base_url"] = st.text_input("Server URL", key="set:label.llm.base_url").strip()
        get("label.llm.model", llm.model)
        values["label.llm.model"] = st.text_input("Model", key="set:label.llm.model").strip()
        st.text_input(
            "API key",
            type="password",
            key="llm_key",
            help="kept in this browser session only and sent only to the server URL above. Without "
            "one, the server's own key (if it has one) is used, and only for its own server URL",
        )
        get("label.llm.max_clusters", llm.max_clusters)
        values["label.llm.max_clusters"] = st.number_input(
            "Label at most this many clusters, largest first (0 = all)",
            0,
            1000,
            key="set:label.llm.max_clusters",
        )
        get("llm_on", DEFAULTS.label.method == "llm")
        on = st.toggle("Name clusters with the model", key="set:llm_on")
    values["label.method"] = "llm" if on else "keywords"
    values["llm_on"] = on
    return values


def slider_bounds(n_texts: int) -> tuple[int, int]:
    """The largest min cluster size and min samples the sliders offer for ``n_texts`` rows."""
    upper = int(max(20, min(500, n_texts // 2)))
    return upper, min(100, upper)


def apply_suggestion(suggestion: Suggestion, n_texts: int) -> None:
    """Put a suggested setting (and its algorithm) into the sidebar on the page's next run.

    The values wait in ``pending_settings`` until ``settings_widgets`` creates the widgets (a
    widget's value cannot be set once it exists in a run), so this works from a callback and from
    a fragment that then reruns the whole page."""
    size_max, samples_max = slider_bounds(n_texts)
    size = int(suggestion.settings.get("cluster.min_cluster_size", DEFAULTS.cluster.min_cluster_size))
    samples = int(suggestion.settings.get("cluster.min_samples", DEFAULTS.cluster.min_samples))
    st.session_state["pending_settings"] = {
        "cluster.algorithm": suggestion.algorithm,
        "cluster.min_cluster_size": min(size, size_max),
        "cluster.min_samples": min(samples, samples_max),
    }


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
    apply_suggestion(suggestion, n_texts)
    st.session_state["fix_blob_note"] = f"Applied: {suggestion.reason}"


def pipeline_values(values: dict[str, Any]) -> dict[str, Any]:
    """Widget values as PipelineConfig takes them: the app's own switches left out, and "about K
    clusters" as ``cluster.n_clusters`` for an algorithm that declares ``about_k`` (one that
    needs K keeps its own slider and value, so switching methods never carries one K over)."""
    out = {k: v for k, v in values.items() if k not in APP_KEYS}
    clusterer = CLUSTERERS.get(values.get("cluster.algorithm", DEFAULTS.cluster.algorithm))
    if clusterer is not None and clusterer.about_k and ABOUT_K in values:
        out["cluster.n_clusters"] = int(values[ABOUT_K] or 0)
    if NEAR_DUPLICATES_ON in values:
        on = bool(values[NEAR_DUPLICATES_ON])
        out["cluster.near_duplicates"] = near_duplicate_threshold(values) if on else 0.0
    return out


def near_duplicate_threshold(values: dict[str, Any]) -> float:
    """The near-duplicate similarity the settings hold (the default before one was picked)."""
    # rounded: a slider's 0.01 steps come back as 0.8700000000000001, another cache key
    return round(float(values.get(NEAR_DUPLICATES_AT) or NEAR_DUPLICATES_DEFAULT), 4)


def build_config(text_column: str | tuple[str, ...] | list[str], values: dict[str, Any]) -> PipelineConfig:
    """The config of saved or widget settings (the app's own switches translated or left out);
    ``text_column`` is a name, or several names joined into each text."""
    return PipelineConfig().with_values({"preprocess.text_column": text_column, **pipeline_values(values)})
