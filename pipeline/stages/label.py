"""label: c-TF-IDF keywords per cluster, a short readable label, representative texts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..config import LabelParams
from ..context import StageContext, detached
from ..types import NOISE_LABEL, Clustering, Corpus, Embeddings, Labels

VERSION = 1
MAX_FEATURES = 50_000


def _vectorize(texts: list[str], params: LabelParams, n_texts: int):
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(
        ngram_range=(1, params.max_ngram),
        stop_words="english" if params.stop_words == "english" else None,
        min_df=2 if n_texts >= 2_000 else 1,
        max_features=MAX_FEATURES,
        lowercase=True,
        token_pattern=r"(?u)\b(?=\w*[^\W\d_])\w\w+\b",  # 2+ characters, at least one letter
    )
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # nothing but stop words, digits or symbols
        return None, np.array([], dtype=object)
    return matrix, vectorizer.get_feature_names_out()


def ctfidf(counts: sp.spmatrix) -> np.ndarray:
    """Class-based TF-IDF (one row per cluster): tf within the cluster x log(1 + avg / df)."""
    counts = sp.csr_matrix(counts, dtype=np.float64)
    totals = np.asarray(counts.sum(axis=1)).ravel()
    tf = sp.diags(1.0 / np.maximum(totals, 1)) @ counts
    term_freq = np.asarray(counts.sum(axis=0)).ravel()
    avg = totals.mean() if len(totals) else 0.0
    idf = np.log1p(avg / np.maximum(term_freq, 1))
    return (tf @ sp.diags(idf)).toarray()


def _pick_keywords(terms: np.ndarray, scores: np.ndarray, n: int) -> list[str]:
    """Best terms first; a word already inside a chosen phrase (or vice versa) is skipped."""
    chosen: list[str] = []
    for index in np.argsort(-scores, kind="stable"):
        if scores[index] <= 0 or len(chosen) >= n:
            break
        term = str(terms[index])
        words = set(term.split())
        if any(words <= set(c.split()) or set(c.split()) <= words for c in chosen):
            # keep the phrase over its parts: replace a single word with a phrase containing it
            if len(words) > 1:
                chosen = [c for c in chosen if not set(c.split()) <= words]
                chosen.append(term)
            continue
        chosen.append(term)
    return chosen[:n]


def _short(text: str, limit: int = 60) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def make_label(keywords: list[str], words: int, fallback: str) -> str:
    if not keywords:
        return _short(fallback, 40) or "(no words)"
    return ", ".join(keywords[:words])


def unique_labels(labels: dict[int, str], keywords: dict[int, list[str]], words: int) -> dict[int, str]:
    """No two clusters share a label: extend with the next keyword, then number."""
    out: dict[int, str] = {}
    seen: set[str] = set()
    for cid in sorted(labels):
        label = labels[cid]
        extra = words
        while label.casefold() in seen and extra < len(keywords.get(cid, [])):
            extra += 1
            label = ", ".join(keywords[cid][:extra])
        number = 2
        base = label
        while label.casefold() in seen:
            label = f"{base} ({number})"
            number += 1
        seen.add(label.casefold())
        out[cid] = label
    return out


def representatives(vectors: np.ndarray, members: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` members closest (cosine) to the members' mean direction."""
    centroid = vectors[members].mean(axis=0)
    norm = np.linalg.norm(centroid)
    if norm == 0 or len(members) <= n:
        return members[:n]
    similarity = vectors[members] @ (centroid / norm)
    return members[np.argsort(-similarity, kind="stable")[:n]]


def label(
    corpus: Corpus,
    embeddings: Embeddings,
    clustering: Clustering,
    params: LabelParams,
    ctx: StageContext | None = None,
) -> Labels:
    """Summarise each cluster: keywords, a short unique label, representative texts."""
    ctx = ctx or detached("label")
    ids = sorted(set(clustering.labels.tolist()))
    texts = [str(t) for t in corpus.texts]
    ctx.progress(0.1, f"counting words in {len(texts):,} distinct texts")
    matrix, terms = _vectorize(texts, params, len(texts))
    row_of = {cid: i for i, cid in enumerate(ids)}
    membership = sp.csr_matrix(
        (
            corpus.counts.astype(np.float64),  # duplicates count with their multiplicity
            ([row_of[int(c)] for c in clustering.labels], np.arange(len(texts))),
        ),
        shape=(len(ids), len(texts)),
    )
    scores = ctfidf(membership @ matrix) if matrix is not None else None
    ctx.progress(0.6, f"choosing keywords and examples for {len(ids)} groups")
    total_rows = int(corpus.counts.sum())
    rows, raw_labels, keywords_of = [], {}, {}
    for cid in ids:
        members = np.flatnonzero(clustering.labels == cid)
        size = int(corpus.counts[members].sum())
        reps = representatives(embeddings.vectors, members, max(params.n_representatives, 1))
        keywords = _pick_keywords(terms, scores[row_of[cid]], params.n_keywords) if scores is not None else []
        keywords_of[cid] = keywords
        raw_labels[cid] = make_label(keywords, params.label_words, texts[reps[0]])
        rows.append(
            {
                "id": cid,
                "size": size,
                "share": size / total_rows,
                "keywords": keywords,
                "representatives": [texts[i] for i in reps[: params.n_representatives]],
            }
        )
    named = unique_labels(
        {c: text for c, text in raw_labels.items() if c != -1}, keywords_of, params.label_words
    )
    named[-1] = NOISE_LABEL
    frame = pd.DataFrame(rows, columns=["id", "size", "share", "keywords", "representatives"])
    frame.insert(1, "label", [named[c] for c in frame["id"]])
    # clusters first by id (0 = largest), unclustered last
    frame = frame.sort_values("id", key=lambda s: s.where(s >= 0, np.iinfo(np.int64).max))
    return Labels(clusters=frame.reset_index(drop=True))
