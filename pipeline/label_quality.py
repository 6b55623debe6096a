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

from . import terms

if TYPE_CHECKING:
    from .result import Result

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
