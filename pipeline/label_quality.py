"""Label coverage: how much of a cluster its short keyword label speaks for.

For each word of a cluster's short label (every word of a phrase must appear), the share of the
cluster's distinct texts that contain it, after the same normalisation as the keywords (stop
words, word forms joined); a label's coverage is the mean over its keywords and phrases; the
result's coverage is the median over clusters (the unclustered are not a cluster).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import terms

if TYPE_CHECKING:
    from .result import Result

_WORDS = re.compile(r"[^\W_]+")  # a keyword's words (letters and digits)
_NUMBER = re.compile(r" \(\d+\)$")  # "refund, card (2)": unique_labels numbers repeats


def label_terms(label: str, keywords: list[str], source: str, label_words: int) -> list[str]:
    """The keywords and phrases of a cluster's short keyword label: the label itself when it is
    made of the cluster's keywords (as ``unique_labels`` may extend or number it), else (a model's
    label) the first ``label_words`` keywords."""
    parts = _NUMBER.sub("", str(label)).split(", ")
    if source == "keywords" and keywords and set(parts) <= set(keywords):
        return parts
    return list(keywords[:label_words])


def label_coverage(result: Result) -> float:
    """The median over clusters of their labels' coverage (see the module docstring); a cluster
    with no keywords (its texts have no words) counts 0; NaN when there is no cluster."""
    texts = [str(t) for t in result.corpus.texts]
    ids = np.asarray(result.clustering.labels)
    params = result.config.label
    stop_words, codes = terms.resolve_stop_words(params.stop_words, texts)
    analyzer = terms.Analyzer(stop_words, codes, 1)
    clusters = result.labels.clusters
    coverages = []
    for cid, label, keywords, source in zip(
        clusters["id"], clusters["label"], clusters["keywords"], clusters["source"], strict=True
    ):
        if cid < 0:
            continue
        words = [
            set(analyzer.word_keys(term)) for term in label_terms(label, keywords, source, params.label_words)
        ]
        words = [w for w in words if w]
        members = np.flatnonzero(ids == cid)
        if not words or not len(members):
            coverages.append(0.0)
            continue
        found = [set(analyzer.word_keys(texts[i])) for i in members]
        coverages.append(float(np.mean([sum(w <= f for f in found) / len(found) for w in words])))
    return float(np.median(coverages)) if coverages else float("nan")


def keyword_presence(
    result: Result,
    labels: np.ndarray,
    cluster_id: int,
    keywords: list[str],
    sample: int = 5000,
    seed: int = 0,
) -> pd.DataFrame:
    """How telling each keyword of a cluster is: ``keyword, in_cluster`` (the share of the
    cluster's distinct texts in which every word of the keyword starts a word, so 'charge' counts
    'charged') and ``elsewhere`` (the same share among the other clustered texts), each over at
    most ``sample`` texts. ``labels`` are the cluster ids per distinct text (the edited ones, so a
    merged cluster is read as one). Vectorised (Arrow's RE2 kernels): milliseconds per cluster."""
    import pyarrow as pa
    import pyarrow.compute as pc

    texts = result.corpus.texts
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)

    def sampled(members: np.ndarray) -> pa.Array:
        if len(members) > sample:
            members = rng.choice(members, size=sample, replace=False)
        return pa.array([str(texts[i]) for i in members], type=pa.string())

    inside = sampled(np.flatnonzero(labels == cluster_id))
    outside = sampled(np.flatnonzero((labels != cluster_id) & (labels >= 0)))

    def share(values: pa.Array, words: list[str]) -> float:
        if not len(values):
            return 0.0
        found = np.ones(len(values), dtype=bool)
        for word in words:
            pattern = r"(?:^|[^\pL\pN_])" + re.escape(word)
            found &= pc.match_substring_regex(values, pattern, ignore_case=True).to_numpy(
                zero_copy_only=False
            )
        return float(found.mean())

    rows = []
    for keyword in keywords:
        words = _WORDS.findall(str(keyword).lower())
        if words:
            rows.append(
                {"keyword": keyword, "in_cluster": share(inside, words), "elsewhere": share(outside, words)}
            )
    return pd.DataFrame(rows, columns=["keyword", "in_cluster", "elsewhere"])
