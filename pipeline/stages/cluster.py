"""cluster: group the reduced points with the algorithm ``cluster.algorithm`` names.

The algorithms live in ``pipeline.clustering``, one module each, declared in ``CLUSTERERS``; this
stage runs every one the same way: check the settings against the number of texts, fit (past
``cluster.fit_sample`` texts, for an algorithm that reads it, on a seeded sample, the other texts
placed by their nearest sampled neighbours), number the clusters by size (0 = largest, -1 =
unclustered, kept visible), give clear outliers their cluster on request, and measure the
readouts (``Clustering.readouts``: count, noise share, largest share, separation, stability, the
last through the algorithm's own re-clustering). HDBSCAN's automatic level, "about K" and cached
tree are explained in ``pipeline/clustering/hdbscan.py``.
"""

from __future__ import annotations

import numpy as np

from ..clustering import CLUSTERERS, clusterer, readouts
from ..clustering.assign import assign_confident, extend_labels
from ..clustering.base import Clusterer, Fit, Fitter, Points
from ..clustering.readouts import LARGEST_SHARE
from ..config import ClusterParams
from ..context import StageContext, detached
from ..errors import StageError
from ..types import Clustering, Projection
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
) -> Clustering:
    """Cluster the points; ids are numbered by size (0 = largest), -1 is noise.

    ``weights`` (rows per distinct text) order the ids and weigh noise share and merges;
    ``vectors`` (the embeddings) join the reduced coordinates when clusters are merged."""
    ctx = ctx or detached("cluster")
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
    return f"{clustering.n_clusters} clusters{fitted}"


STAGE = Stage(
    name="cluster",
    title="Finding clusters",
    version=VERSION,
    inputs=("projection", "corpus", "embeddings"),
    output="clustering",
    artifact=Clustering,
    params=lambda config, runtime: config.cluster,
    run=lambda a, config, ctx: cluster(
        a["projection"], config.cluster, ctx, weights=a["corpus"].counts, vectors=a["embeddings"].vectors
    ),
    summary=_summary,
)
