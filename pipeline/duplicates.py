"""Near-duplicates: groups of distinct texts whose embeddings are almost the same (cosine at
least a threshold), and the weights that count each group once in the clustering.

Exact duplicates are already one distinct text (the preprocess stage collapses them, and
``Corpus.counts`` says how many rows carry each), so a group here holds two or more *different*
texts: "Card declined!" beside "card declined", a template with another name in it. Groups are
the connected components of the pairs at or above the threshold, so a chain (a ~ b, b ~ c) is one
group even when a and c are further apart.

The pairs are found exactly up to ``EXACT_MAX`` texts (blocked matrix products, each block of
rows against itself and the rows after it), past that by random-hyperplane hashing: ``tables_for``
tables of ``BITS`` planes (drawn from one pool of ``POOL``), each candidate pair that shares a
bucket checked exactly. So a reported pair is always at or above the threshold; a pair at the
threshold is missed by independent tables with a probability of at most ``MISS`` (the tables share
the pool's planes, so a little more; closer pairs far less), and a group is usually still found
whole through its other pairs. A bucket of more than ``ALL_PAIRS`` texts (a template repeated with
small changes) links its texts to leaders rather than checking every pair.

Measured on this 2-core machine (shared, so +-30%), 100,000 x 384 vectors (94,676 MiniLM int8
vectors of the benchmark texts plus 5,324 perturbed copies), threshold 0.95: every pair compared
(blocked products) 50-83 s; pynndescent's 10-neighbour graph alone 75 s; the hashing 6-7 s
(0.9: 15-19 s), finding 99.94% of the 41,246 texts the exact search groups (0.9: 99.96%), adjusted
Rand index 0.9994 against it. The exact search at 20,000 texts: 3 s. The hashing at 200,000: 11 s.

``group_weights`` gives the weights that count each group once, as exact duplicates are: the
group is one point (its representative) weighted by all its rows. ``Groups.owner`` says which
point stands for each text.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .cache import Cache, array_digest, array_texts_digest, chain_key
from .config import MIN_NEAR_DUPLICATES
from .errors import InputError
from .types import Corpus, Embeddings

VERSION = 1  # bump when the groups found change: part of the cached groups' key

THRESHOLD = 0.95  # the default; 0.9 groups more loosely (and takes twice as long past EXACT_MAX)
MIN_THRESHOLD = MIN_NEAR_DUPLICATES  # 0.8: below it the "groups" are topics, not near-duplicates
EXACT_MAX = 20_000  # up to this many texts every pair is compared (3 s at 20,000 here)
MAX_TEXTS = 200_000  # measured up to here (11 s); past it the hashing's candidate pairs grow fast
BLOCK = 2048  # rows per block of the exact search and of the hashing
BITS = 24  # hyperplanes per hash table
POOL = 1024  # hyperplanes the tables draw theirs from (one product of the vectors with all of them)
ALL_PAIRS = 64  # a bucket of more texts than this is checked against leaders, not pair by pair
CHECKED = 65_536  # candidate pairs checked at a time (bigger blocks are slower: 9 s instead of 2.3 s)
MISS = 0.01  # the most a pair at the threshold is missed by independent tables
SEED = 0

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Groups:
    """Near-duplicate groups of distinct texts, numbered by rows (0 = most rows).

    ``group[i]``: the group of distinct text ``i``, -1 when it is in none; per group: its
    ``representative`` (the text with most rows, ties: the first), ``texts`` (distinct texts) and
    ``rows``. ``method``: "exact" or "hashing" (see the module's docstring)."""

    group: np.ndarray
    representative: np.ndarray
    texts: np.ndarray
    rows: np.ndarray
    threshold: float
    method: str

    @property
    def n_groups(self) -> int:
        return len(self.representative)

    def members(self, group: int) -> np.ndarray:
        """The distinct texts of ``group``, in text order."""
        return np.flatnonzero(self.group == group)

    def owner(self) -> np.ndarray:
        """Per distinct text, the text that stands for it when each group counts once: its
        group's representative, else itself."""
        out = np.arange(len(self.group), dtype=np.int64)
        grouped = self.group >= 0
        out[grouped] = self.representative[self.group[grouped]]
        return out

    def table(self, texts: np.ndarray, shown: int = 3, limit: int | None = None) -> pd.DataFrame:
        """One row per group for the app, most rows first: group, representative text, distinct
        texts, rows, and up to ``shown`` of its other texts (in text order); the first ``limit``
        groups (None: all)."""
        grouped = np.flatnonzero(self.group >= 0)
        by_group = grouped[np.argsort(self.group[grouped], kind="stable")]  # text order within a group
        bounds = np.searchsorted(self.group[by_group], np.arange(self.n_groups + 1))
        rows = []
        for g in range(self.n_groups if limit is None else min(limit, self.n_groups)):
            rep = int(self.representative[g])
            others = [str(texts[i]) for i in by_group[bounds[g] : bounds[g + 1]] if i != rep][:shown]
            rows.append(
                {
                    "group": g,
                    "representative": str(texts[rep]),
                    "texts": int(self.texts[g]),
                    "rows": int(self.rows[g]),
                    "examples": " | ".join(others),
                }
            )
        return pd.DataFrame(rows, columns=["group", "representative", "texts", "rows", "examples"])


def near_duplicate_groups(
    vectors: np.ndarray,
    counts: np.ndarray,
    threshold: float = THRESHOLD,
    max_texts: int = MAX_TEXTS,
    *,
    exact_max: int = EXACT_MAX,
    seed: int = SEED,
    progress: Progress | None = None,
) -> Groups:
    """Groups of distinct texts whose L2-normalised ``vectors`` have a cosine of at least
    ``threshold`` (connected components; see the module's docstring). ``counts``: rows per
    distinct text (``Corpus.counts``). Up to ``exact_max`` texts the search is exact."""
    n = len(vectors)
    if not MIN_THRESHOLD <= threshold <= 1.0:
        raise InputError(
            f"a near-duplicate threshold of {threshold} is outside {MIN_THRESHOLD}..1",
            hint=f"use a cosine between {MIN_THRESHOLD} (loose) and 1 (identical vectors); {THRESHOLD} is usual",
            stage="duplicates",
        )
    if n > max_texts:
        raise InputError(
            f"near-duplicates are searched among at most {max_texts:,} distinct texts; these data have {n:,}",
            hint="search a filtered part of the data",
            stage="duplicates",
        )
    if len(counts) != n:
        raise InputError(f"{len(counts)} row counts for {n} vectors", stage="duplicates")
    report = progress or (lambda fraction, message: None)
    method = "exact" if n <= exact_max else "hashing"
    if method == "exact":
        left, right = _pairs_exact(vectors, threshold, report)
    else:
        left, right = _pairs_hashed(vectors, threshold, seed, report)
    return _components(n, left, right, np.asarray(counts, dtype=np.int64), threshold, method)


def group_weights(groups: Groups, counts: np.ndarray) -> np.ndarray:
    """Weights per distinct text that count each group once, as an exact duplicate counts: its
    representative carries all the group's rows, its other texts 0; a text in no group keeps
    its rows. The weights add up to the rows, so shares and sizes stay in rows. A clustering
    that honours them fits only the texts with a weight (``weights > 0``) and gives every other
    text its representative's cluster (``Groups.owner``)."""
    counts = np.asarray(counts, dtype=np.int64)
    weights = np.where(groups.group >= 0, 0, counts)
    weights[groups.representative] = groups.rows
    return weights


def groups_key(corpus: Corpus, embeddings: Embeddings, threshold: float) -> str:
    """The cache key of a corpus's groups: its texts and rows per text, the model, the threshold
    (the texts are hashed, not the 100,000 x 384 vectors)."""
    counts = array_digest(corpus.counts, np.int64)
    return chain_key(
        "near_duplicates",
        VERSION,
        embeddings.model,
        float(threshold),
        array_texts_digest(corpus.texts),
        counts,
    )


def cached_groups(
    corpus: Corpus,
    embeddings: Embeddings,
    threshold: float = THRESHOLD,
    cache: str | Path | Cache | None = None,
    progress: Progress | None = None,
) -> tuple[Groups, bool]:
    """(the near-duplicate groups of a run's distinct texts, whether they came from ``cache``): a
    piece of the run's cache (a folder or ``Cache``; None: computed), so a page and the cluster
    stage find them once per corpus, model and threshold."""
    store = cache if isinstance(cache, Cache) else Cache(cache)
    return store.get_or_compute(
        "near_duplicates",
        groups_key(corpus, embeddings, threshold),
        lambda: near_duplicate_groups(embeddings.vectors, corpus.counts, threshold, progress=progress),
    )


# --- finding the pairs -----------------------------------------------------------------------------


def _pairs_exact(vectors: np.ndarray, threshold: float, report: Progress) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i < j) with a cosine of at least ``threshold``: each block of rows against
    itself and the rows after it, ``BLOCK`` x ``BLOCK`` products at a time (16 MB)."""
    n = len(vectors)
    left, right = [], []
    for start in range(0, n, BLOCK):
        block = np.asarray(vectors[start : start + BLOCK], dtype=np.float32)
        for other in range(start, n, BLOCK):
            rows, cols = np.nonzero(
                block @ np.asarray(vectors[other : other + BLOCK], dtype=np.float32).T >= threshold
            )
            keep = cols + other > rows + start  # each pair once, never a text with itself
            left.append(rows[keep] + start)
            right.append(cols[keep] + other)
        report(min(1.0, (start + BLOCK) / n), f"comparing {n:,} texts with each other")
    return _joined(left), _joined(right)


def tables_for(threshold: float, bits: int | None = None, miss: float = MISS) -> int:
    """Hash tables of ``bits`` hyperplanes (default ``BITS``) that miss a pair at ``threshold``
    with a probability of at most ``miss``: a random hyperplane separates two vectors at angle a
    with probability a / pi, so they share a table's bucket with probability (1 - a / pi) ** bits."""
    same = (1.0 - math.acos(min(threshold, 1.0)) / math.pi) ** (bits or BITS)
    return max(1, math.ceil(math.log(miss) / math.log1p(-same))) if same < 1.0 else 1


def _pairs_hashed(
    vectors: np.ndarray, threshold: float, seed: int, report: Progress
) -> tuple[np.ndarray, np.ndarray]:
    """The pairs with a cosine of at least ``threshold`` among those that share a bucket in one
    of the hash tables, each checked exactly. A bucket of more than ``ALL_PAIRS`` texts (many
    near-duplicates of one text, such as a template) is checked against leaders instead of pair
    by pair: its first text (seeded, per table) takes every text of the bucket near it, the next
    text left takes those near it, and so on; each text is linked to its leader."""
    n = len(vectors)
    tables = tables_for(threshold)
    rng = np.random.default_rng(seed)
    planes = rng.standard_normal((vectors.shape[1], POOL)).astype(np.float32)
    # table t's code: the sides of its BITS planes (drawn from the pool) as one number
    weights = np.zeros((POOL, tables))
    for t in range(tables):
        weights[rng.choice(POOL, BITS, replace=False), t] = 2.0 ** np.arange(BITS)
    codes = np.empty((n, tables), dtype=np.int64)
    step = BLOCK * 4
    for start in range(0, n, step):
        sides = np.asarray(vectors[start : start + step], dtype=np.float32) @ planes > 0
        codes[start : start + len(sides)] = sides.astype(np.float64) @ weights  # exact: sums of powers of 2
        report(0.4 * min(1.0, (start + step) / n), f"hashing {n:,} texts")
    left, right = [], []
    for t in range(tables):
        small, big = _buckets(codes[:, t], rng)
        left.append(small[0])
        right.append(small[1])
        for bucket in big:
            i, j = _leaders(vectors, bucket, threshold)
            left.append(i)
            right.append(j)
        report(0.4 + 0.3 * (t + 1) / tables, f"collecting candidate pairs ({t + 1} of {tables} tables)")
    i, j = _joined(left), _joined(right)
    pair = np.sort(np.minimum(i, j) * n + np.maximum(i, j))
    pair = pair[np.r_[True, pair[1:] != pair[:-1]]] if len(pair) else pair
    i, j = pair // n, pair % n
    keep = np.zeros(len(pair), dtype=bool)
    for start in range(0, len(pair), CHECKED):
        a = np.asarray(vectors[i[start : start + CHECKED]], dtype=np.float32)
        b = np.asarray(vectors[j[start : start + CHECKED]], dtype=np.float32)
        keep[start : start + len(a)] = np.einsum("ij,ij->i", a, b) >= threshold
        report(0.7 + 0.3 * min(1.0, (start + CHECKED) / max(len(pair), 1)), "checking candidate pairs")
    return i[keep], j[keep]


def _buckets(
    code: np.ndarray, rng: np.random.Generator
) -> tuple[tuple[np.ndarray, np.ndarray], list[np.ndarray]]:
    """((every pair of the buckets of 2..ALL_PAIRS texts), [the bigger buckets' texts, shuffled])."""
    order = np.argsort(code, kind="stable")
    sorted_code = code[order]
    starts = np.flatnonzero(np.r_[True, sorted_code[1:] != sorted_code[:-1]])
    sizes = np.diff(np.r_[starts, len(code)])
    left, right = [], []
    for size in np.unique(sizes[(sizes > 1) & (sizes <= ALL_PAIRS)]):
        first = starts[sizes == size]  # every bucket of this size at once
        a, b = np.triu_indices(int(size), k=1)
        members = order[first[:, None] + np.arange(size)[None, :]]
        left.append(members[:, a].ravel())
        right.append(members[:, b].ravel())
    large = sizes > ALL_PAIRS
    big = [rng.permutation(order[s : s + m]) for s, m in zip(starts[large], sizes[large], strict=True)]
    return (_joined(left), _joined(right)), big


def _leaders(vectors: np.ndarray, bucket: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(leader, text) links of a big bucket (see ``_pairs_hashed``), each at the threshold or above."""
    left, right = [], []
    rest = bucket
    block = np.asarray(vectors[rest], dtype=np.float32)
    while len(rest) > 1:
        near = block @ block[0] >= threshold
        near[0] = False
        left.append(np.full(int(near.sum()), rest[0], dtype=np.int64))
        right.append(rest[near])
        near[0] = True
        rest, block = rest[~near], block[~near]
    return _joined(left), _joined(right)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _components(
    n: int, left: np.ndarray, right: np.ndarray, counts: np.ndarray, threshold: float, method: str
) -> Groups:
    """The connected components of two or more texts, numbered by rows (ties: first text)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component, minlength=n)
    grouped = sizes[component] > 1
    ids, first = np.unique(component[grouped], return_index=True)
    positions = np.flatnonzero(grouped)
    rows = np.bincount(component[grouped], weights=counts[grouped], minlength=n)[ids].astype(np.int64)
    order = np.lexsort((positions[first], -rows))  # most rows first, then first text
    number = np.full(n, -1, dtype=np.int64)
    number[ids[order]] = np.arange(len(ids))
    group = np.where(grouped, number[component], -1)
    # the representative: most rows, ties the first text (a stable sort keeps text order)
    members = np.flatnonzero(grouped)
    by = members[np.lexsort((members, -counts[members], group[members]))]
    representative = by[np.r_[True, group[by][1:] != group[by][:-1]]] if len(by) else by
    return Groups(
        group=group,
        representative=representative.astype(np.int64),
        texts=np.bincount(group[grouped], minlength=len(ids)).astype(np.int64),
        rows=rows[order],
        threshold=float(threshold),
        method=method,
    )
