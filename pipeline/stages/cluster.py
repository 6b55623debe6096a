"""cluster: group the reduced points with the algorithm ``cluster.algorithm`` names.

The algorithms live in ``pipeline.clustering``, one module each, declared in ``CLUSTERERS``; this
stage runs every one the same way: check the settings against the number of texts, fit (past
``cluster.fit_sample`` texts, for an algorithm that reads it, on a seeded sample, the other texts
placed by their nearest sampled neighbours), number the clusters by size (0 = largest, -1 =
unclustered, kept visible), give clear outliers their cluster on request, and measure the
readouts (``Clustering.readouts``: count, noise share, largest share, separation, stability, the
last through the algorithm's own re-clustering). HDBSCAN's automatic level, "about K" and cached
tree are explained in ``pipeline/clustering/hdbscan.py``.

With ``cluster.near_duplicates`` on, each group of near-duplicate texts (``pipeline/duplicates.py``;
the groups are a cached piece of their own) counts once, as an exact duplicate does: its
representative is clustered with the group's rows as its weight, and the group's other texts get
the representative's cluster. The readouts say how many groups and texts were folded.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import duplicates
from ..clustering import CLUSTERERS, clusterer, readouts
from ..clustering.assign import assign_confident, extend_labels
from ..clustering.base import Clusterer, Fit, Fitter, Points
from ..clustering.readouts import LARGEST_SHARE
from ..config import ClusterParams
from ..context import StageContext, detached
from ..errors import StageError
from ..types import Clustering, Corpus, Embeddings, Projection
from .base import Stage

# bump when the stage changes the output (3: confident outlier assignment; 4: fit_sample, leaf
# size; 5-8: auto_level); an algorithm's own changes bump its ``Clusterer.version``, added here
VERSION = 8 + sum(c.version for c in CLUSTERERS.values())


def cluster(
    projection: Projection,
    params: ClusterParams,
    ctx: StageContext | None = None,
    weights: np.ndarray | None = None,
    vectors: np.ndarray | None = None,
    groups: duplicates.Groups | None = None,
) -> Clustering:
    """Cluster the points; ids are numbered by size (0 = largest), -1 is noise.

    ``weights`` (rows per distinct text) order the ids and weigh noise share and merges;
    ``vectors`` (the embeddings) join the reduced coordinates when clusters are merged;
    ``groups`` (near-duplicates) are each clustered once, as their representative, whose
    cluster the group's other texts get (see ``fold``)."""
    ctx = ctx or detached("cluster")
    if groups is not None and groups.n_groups:
        return fold(projection, params, ctx, weights, vectors, groups)
    coords = np.asarray(projection.coords, dtype=np.float64)
    n = len(coords)
    weights = np.ones(n, dtype=np.int64) if weights is None else weights
    if n == 1:
        ctx.warn("only one distinct text: it forms a single cluster")
        one = np.zeros(1, dtype=np.int64)
        return Clustering(one, one.copy(), np.ones(1, np.float32), params.algorithm, {"n_texts": 1})
    algorithm = clusterer(params.algorithm)
    check_n_clusters(algorithm, params.n_clusters, n)
    fitter = algorithm.setup(params, projection, n, ctx.piece)
    points = Points(coords, weights, vectors)
    sampled = rows_to_fit(n, params) if "fit_sample" in algorithm.settings else None
    ctx.progress(0.1, fitter.describe(n) + _sample_note(sampled))
    fit = fit_points(fitter, points, sampled, ctx)
    raw = _renumber(fit.labels, weights)
    found = len(set(raw.tolist()) - {-1})
    resolved = {**fitter.resolved, "n_texts": n}
    if sampled is not None:
        resolved["fit_sample"] = len(sampled)
    resolved |= fit.info
    for message in fitter.warnings(Fit(raw, fit.probabilities, fit.info)):
        ctx.warn(message)
    labels = assign_confident(coords, raw, seed=params.seed) if params.assign_outliers else raw.copy()
    ctx.progress(0.6, f"{found} clusters; measuring separation and stability")
    measured = readouts.readouts(
        coords,
        raw,
        weights,
        recluster=lambda rows: fitter.recluster(points.take(rows), fit),
        seed=params.seed,
    )
    warn_if_one_cluster_dominates(algorithm, measured, found, ctx)
    ctx.progress(1.0, f"{found} clusters, {measured['noise_share']:.0%} unclustered")
    return Clustering(labels, raw, fit.probabilities, algorithm.name, resolved, measured)


def fold(
    projection: Projection,
    params: ClusterParams,
    ctx: StageContext,
    weights: np.ndarray | None,
    vectors: np.ndarray | None,
    groups: duplicates.Groups,
) -> Clustering:
    """Cluster one representative per near-duplicate group, weighted by the group's rows
    (``duplicates.group_weights``), and every text not in a group; each other member of a group
    gets its representative's cluster and membership strength."""
    n = len(projection.coords)
    counts = np.ones(n, dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    folded = duplicates.group_weights(groups, counts)
    kept = np.flatnonzero(folded > 0)  # representatives and texts in no group, in text order
    position = np.full(n, -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    owner = position[groups.owner()]
    points = dataclasses.replace(projection, coords=projection.coords[kept], layout=projection.layout[kept])
    plural = "s" if groups.n_groups != 1 else ""
    shown = f"{n - len(kept):,} near-duplicate texts folded into {groups.n_groups:,} group{plural}"
    ctx.progress(0.09, f"{shown}: clustering {len(kept):,} texts")
    if len(kept) == 1:
        ctx.warn(
            f"every text is a near-duplicate of one text (cluster.near_duplicates = {params.near_duplicates}): "
            "they form a single cluster; set cluster.near_duplicates to 0, or higher, to tell them apart"
        )
        one = Clustering(
            np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones(1, np.float32), params.algorithm
        )
    else:
        try:
            one = cluster(points, params, ctx, folded[kept], None if vectors is None else vectors[kept])
        except StageError as exc:  # e.g. more clusters asked for than texts are left
            raise StageError(
                "cluster",
                f"{exc.message} (after {shown}; cluster.near_duplicates = {params.near_duplicates})",
                hint=exc.hint,
            ) from exc
    found = {
        "near_duplicate_groups": groups.n_groups,
        "near_duplicate_texts_folded": int(n - len(kept)),
        "near_duplicate_search": groups.method,
    }
    return Clustering(
        one.labels[owner],
        one.raw_labels[owner],
        one.probabilities[owner],
        one.algorithm,
        {**one.resolved, "n_texts": n, "n_texts_clustered": len(kept)},
        {**one.readouts, **found},
    )


def near_duplicate_groups(
    corpus: Corpus, embeddings: Embeddings, params: ClusterParams, ctx: StageContext
) -> duplicates.Groups | None:
    """The groups ``cluster.near_duplicates`` asks to count once (a cached piece, shared with the
    app's near-duplicates panel), or None when it is off, or when there are too many texts to
    search (said as a warning: the clustering goes on without folding)."""
    threshold = params.near_duplicates
    if not threshold or corpus.n_texts < 2:
        return None
    if corpus.n_texts > duplicates.MAX_TEXTS:
        ctx.warn(
            f"near-duplicates were not folded: they are searched among at most {duplicates.MAX_TEXTS:,} "
            f"distinct texts and there are {corpus.n_texts:,} (cluster.near_duplicates = {threshold}); "
            "every text was clustered on its own"
        )
        return None
    ctx.progress(0.02, f"finding near-duplicates (cosine >= {threshold})")
    groups, _ = ctx.piece(
        "near_duplicates",
        duplicates.groups_key(corpus, embeddings, threshold),
        lambda: duplicates.near_duplicate_groups(
            embeddings.vectors,
            corpus.counts,
            threshold,
            progress=lambda fraction, message: ctx.progress(0.02 + 0.06 * fraction, message),
        ),
    )
    return groups


def check_n_clusters(algorithm: Clusterer, k: int, n: int) -> None:
    """More clusters than distinct texts is an error that says what to set."""
    if k > n:
        decide = "" if algorithm.needs_k else f" (or 0 to let {algorithm.title} decide)"
        raise StageError(
            "cluster",
            f"cluster.n_clusters = {k} asks for more clusters than the {n:,} distinct texts",
            hint=f"set cluster.n_clusters to at most {n}{decide}",
        )


def rows_to_fit(n: int, params: ClusterParams) -> np.ndarray | None:
    """The seeded sample an algorithm that reads ``cluster.fit_sample`` is fitted on when there
    are more points (None: all of them). Past a few hundred thousand points HDBSCAN's neighbour
    search dominates (over 10 minutes for 1M points here); a sample of 200,000 finds the same
    clusters, and every other point takes the label of its nearest sampled neighbours."""
    if not params.fit_sample or n <= params.fit_sample:
        return None
    rng = np.random.default_rng(params.seed)
    return np.sort(rng.choice(n, params.fit_sample, replace=False))


def _sample_note(sampled: np.ndarray | None) -> str:
    if sampled is None:
        return ""
    return (
        f"; fitted on a sample of {len(sampled):,} (cluster.fit_sample), the other points join "
        "their nearest sampled neighbours"
    )


def fit_points(fitter: Fitter, points: Points, sampled: np.ndarray | None, ctx: StageContext) -> Fit:
    """``fitter``'s fit of all ``points``, or of the ``sampled`` rows with every other point
    placed by the closeness-weighted vote of its nearest sampled neighbours (``extend_labels``)."""
    if sampled is None:
        return fitter.fit(points)
    fit = fitter.fit(points.take(sampled))
    ctx.progress(
        0.35, f"{len(set(fit.labels.tolist()) - {-1})} clusters in the sample; placing the other points"
    )
    rest = np.ones(len(points), dtype=bool)
    rest[sampled] = False
    labels = np.empty(len(points), dtype=np.int64)
    strength = np.empty(len(points), dtype=np.float32)
    labels[sampled], strength[sampled] = fit.labels, fit.probabilities
    labels[rest], strength[rest] = extend_labels(
        points.coords[sampled],
        fit.labels,
        fit.probabilities,
        points.coords[rest],
        progress=lambda f: ctx.progress(0.35 + 0.2 * f, "placing the points outside the sample"),
    )
    return Fit(labels, strength, fit.info)


def warn_if_one_cluster_dominates(
    algorithm: Clusterer, measured: dict, found: int, ctx: StageContext
) -> None:
    """A cluster holding more than ``LARGEST_SHARE`` of the texts is reported, with the
    algorithm's advice (none: the readout alone shows it)."""
    if algorithm.advice and found > 1 and measured["largest_share"] > LARGEST_SHARE:
        ctx.warn(
            f"one cluster holds {measured['largest_share']:.0%} of the texts: at these settings the "
            f"texts barely separate. {algorithm.advice}"
        )


def _renumber(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Ids by size, largest first (ties by first appearance); -1 stays -1."""
    labels = np.asarray(labels, dtype=np.int64)
    clustered = labels >= 0
    ids, first, position = np.unique(labels[clustered], return_index=True, return_inverse=True)
    if len(ids) == 0:
        return np.full(len(labels), -1, dtype=np.int64)
    size = np.bincount(position.ravel(), weights=np.asarray(weights, dtype=np.float64)[clustered])
    order = np.lexsort((first, -size))  # by size, then first appearance
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(len(ids))
    out = np.full(len(labels), -1, dtype=np.int64)
    out[clustered] = rank[position.ravel()]
    return out


# --- the stage's declaration (pipeline/stages/__init__.py lists it) ---------------------------


def _summary(clustering: Clustering) -> str:
    sample = clustering.resolved.get("fit_sample", 0)
    fitted = f" (HDBSCAN fitted on {sample:,} of {len(clustering.labels):,} texts)" if sample else ""
    folded = clustering.readouts.get("near_duplicate_texts_folded")
    if folded is not None:
        groups = clustering.readouts["near_duplicate_groups"]
        plural = "s" if groups != 1 else ""
        fitted += f"; {folded:,} near-duplicate texts counted once, in {groups:,} group{plural}"
    return f"{clustering.n_clusters} clusters{fitted}"


def key_params(params: ClusterParams) -> dict:
    """The cache key's params: with near-duplicates off, exactly the key from before the setting
    existed, so results cached then stay valid."""
    values = {"__type__": type(params).__name__, **dataclasses.asdict(params)}
    if not params.near_duplicates:
        del values["near_duplicates"]
    return values


def _run(a, config, ctx: StageContext) -> Clustering:
    corpus, embeddings = a["corpus"], a["embeddings"]
    groups = near_duplicate_groups(corpus, embeddings, config.cluster, ctx)
    return cluster(
        a["projection"], config.cluster, ctx, weights=corpus.counts, vectors=embeddings.vectors, groups=groups
    )


STAGE = Stage(
    name="cluster",
    title="Finding clusters",
    version=VERSION,
    inputs=("projection", "corpus", "embeddings"),
    output="clustering",
    artifact=Clustering,
    params=lambda config, runtime: key_params(config.cluster),
    run=_run,
    summary=_summary,
)
