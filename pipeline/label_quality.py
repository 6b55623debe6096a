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
from .recent import Recent

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


MATCH_SAMPLE = 20_000  # distinct texts a word is matched on once per corpus: all of them up to this many
_SAMPLES: Recent[tuple[np.ndarray, object]] = Recent(keep=4)  # corpus -> (its sample, as Arrow strings)
# (corpus, seed, word) -> which texts of the corpus's sample it starts a word of
_MATCHES: Recent[np.ndarray] = Recent(keep=512)
_THIS_CALL = 1 << 20  # a Recent that forgets nothing: kept for one call only


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
    'charged') and ``elsewhere`` (the same share among the other clustered texts). ``labels`` are
    the cluster ids per distinct text (the edited ones, so a merged cluster is read as one).

    Each word is matched once per corpus (Arrow's RE2 kernels) on its texts, or past
    ``MATCH_SAMPLE`` of them on a seeded sample of that many, and kept in this process: reading
    another cluster, or the same one after an edit or a slider step, matches only words not seen
    before (2 ms a word at 10,000 texts). Up to ``MATCH_SAMPLE`` texts both shares are exact;
    past it, ``elsewhere`` is measured on the sample and ``in_cluster`` on at most ``sample`` of the
    cluster's texts."""
    labels = np.asarray(labels)
    texts = result.corpus.texts
    corpus = result.keys.get("corpus")  # none (a result made by hand): nothing kept
    samples, matches = (_SAMPLES, _MATCHES) if corpus else (Recent(_THIS_CALL), Recent(_THIS_CALL))
    shared, values = samples.get((corpus, seed), lambda: _corpus_sample(texts, seed))
    every = len(shared) == len(texts)
    members = np.flatnonzero(labels == cluster_id)
    if not every and len(members) > sample:
        members = np.sort(np.random.default_rng(seed).choice(members, size=sample, replace=False))
    own = None if every else _strings([str(texts[i]) for i in members])
    own_matches: Recent[np.ndarray] = Recent(_THIS_CALL)  # a word in two keywords is matched once
    in_shared, others = labels[shared] == cluster_id, (labels[shared] != cluster_id) & (labels[shared] >= 0)

    def found(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Which texts of the sample, and of the cluster's own sample, hold every word."""
        in_all, in_own = np.ones(len(shared), dtype=bool), np.ones(len(members), dtype=bool)
        for word in words:
            in_all &= matches.get((corpus, seed, word), lambda w=word: _readonly(_starts_a_word(values, w)))
            if own is not None:
                in_own &= own_matches.get(word, lambda w=word: _starts_a_word(own, w))
        return in_all, (in_all[in_shared] if own is None else in_own)

    def share(hits: np.ndarray) -> float:
        return float(hits.mean()) if len(hits) else 0.0

    rows = []
    for keyword in keywords:
        words = _WORDS.findall(str(keyword).lower())
        if words:
            in_all, in_own = found(words)
            rows.append({"keyword": keyword, "in_cluster": share(in_own), "elsewhere": share(in_all[others])})
    return pd.DataFrame(rows, columns=["keyword", "in_cluster", "elsewhere"])


def _corpus_sample(texts: np.ndarray, seed: int) -> tuple[np.ndarray, object]:
    """The distinct texts words are matched on (all, or a seeded ``MATCH_SAMPLE``), as indices
    and as an Arrow array of strings."""
    n = len(texts)
    shared = (
        np.arange(n)
        if n <= MATCH_SAMPLE
        else np.sort(np.random.default_rng(seed).choice(n, MATCH_SAMPLE, replace=False))
    )
    return _readonly(shared), _strings([str(texts[i]) for i in shared])


def _strings(values: list[str]):
    import pyarrow as pa

    return pa.array(values, type=pa.string())


def _starts_a_word(values, word: str) -> np.ndarray:
    """Which of ``values`` (Arrow strings) have a word starting with ``word`` (any case)."""
    import pyarrow.compute as pc

    if not len(values):
        return np.zeros(0, dtype=bool)
    pattern = r"(?:^|[^\pL\pN_])" + re.escape(word)
    return pc.match_substring_regex(values, pattern, ignore_case=True).to_numpy(zero_copy_only=False)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by every caller (pipeline.recent)
    return array
