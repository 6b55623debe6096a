"""cluster: HDBSCAN (noise is -1 and stays visible) or k-means, on the reduced coordinates.

HDBSCAN runs with settings chosen from the data when left at 0 / -1 (see ``resolve``). With
``n_clusters = K`` it returns about K clusters while keeping HDBSCAN's shapes: it finds finer
HDBSCAN clusters (at least K), then joins the closest ones by Ward's criterion until K remain
(``quality.ward_merges``); its noise stays noise. Every result carries readouts
(``Clustering.readouts``: count, noise share, separation, stability).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import quality
from ..cache import chain_key
from ..config import ClusterParams
from ..context import StageContext, detached
from ..errors import StageError
from ..types import Clustering, Projection

VERSION = 4  # 3: confident outlier assignment; stability sampled for large inputs; 4: fit_sample, leaf size
LEAF_SIZE = 100  # HDBSCAN's k-d tree leaves: 100 instead of 40 makes a 100k-point fit a quarter faster
UMAP_EPSILON = 0.4  # automatic cluster_selection_epsilon on UMAP coordinates (see auto_epsilon)


def auto_min_cluster_size(n: int) -> int:
    """About sqrt(n)/6, at least 5 (and at most a quarter of the texts, at least 2):
    40 texts -> 5, 400 -> 5, 10,000 -> 17, 1M -> 167.

    Small on purpose: sets with many small topics (tweets, bank intents) need it, and the
    selection epsilon (``auto_epsilon``) joins the pieces of broad topics again."""
    return max(2, min(max(5, int(round(np.sqrt(n) / 6))), n // 4))


MAX_AUTO_MIN_SAMPLES = 15  # reached from about 32,000 distinct texts; HDBSCAN's cost grows with it


def auto_min_samples(min_cluster_size: int) -> int:
    """Half of min_cluster_size (fewer points are declared noise in sparse regions), at most 15:
    on banking77 repeated to 100,000 texts, 26 and 15 gave the same AMI (0.726 / 0.727) and 15
    fits faster; no benchmark set below 32,000 texts reaches the cap."""
    return max(1, min(min_cluster_size // 2, MAX_AUTO_MIN_SAMPLES))


def auto_epsilon(projection: Projection) -> float:
    """HDBSCAN's cluster_selection_epsilon when left automatic: 0.4 on UMAP coordinates, 0 on
    PCA or raw embeddings (whose distances have another scale).

    Clusters closer than this in the UMAP space are not split further. UMAP spreads well-separated
    groups (bank intents, tweet topics) far apart and keeps the sub-topics of a broad theme (news
    sections) close, so one value serves both; measured on the benchmark sets in
    ``pipeline.bench_quality``. UMAP lays out neighbours at about the same distances whatever the
    number of dimensions: with 10 instead of 5, 0.4 gave the same clusters (0.57 merged too much)."""
    return UMAP_EPSILON if projection.method == "umap" else 0.0


@dataclass(frozen=True)
class Settings:
    """HDBSCAN settings as resolved for one corpus."""

    min_cluster_size: int
    min_samples: int
    method: str
    epsilon: float


def resolve(params: ClusterParams, projection: Projection, n: int) -> Settings:
    """Fill in the automatic (0 / -1) settings for ``n`` distinct texts."""
    mcs = params.min_cluster_size or auto_min_cluster_size(n)
    ms = min(params.min_samples or auto_min_samples(mcs), max(n - 1, 1))
    eps = auto_epsilon(projection) if params.epsilon < 0 else float(params.epsilon)
    return Settings(mcs, ms, params.method, eps)


class HdbscanTree:
    """HDBSCAN's expensive part (the single-linkage tree for one ``min_samples``), built once;
    ``labels`` applies min_cluster_size, selection method and epsilon to it cheaply.

    With ``piece`` (a ``StageContext.piece``) the tree is cached by the points and min_samples,
    so a new min_cluster_size, selection method or epsilon (the usual slider moves) in a later
    run only re-selects clusters from it (0.2 s instead of 3 s for 100k points)."""

    def __init__(self, coords: np.ndarray, min_samples: int, piece: Callable | None = None):
        self.coords = np.ascontiguousarray(coords, dtype=np.float64)
        self.min_samples = max(1, min(min_samples, len(coords) - 1))
        if piece is None:
            self.tree = self._build()
        else:
            self.tree, _ = piece("hdbscan_tree", self._key(), self._build)

    def _build(self) -> np.ndarray:
        import hdbscan

        model = hdbscan.HDBSCAN(
            min_cluster_size=2, min_samples=self.min_samples, core_dist_n_jobs=1, leaf_size=LEAF_SIZE
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(self.coords).single_linkage_tree_.to_numpy()

    def _key(self) -> str:
        import hdbscan

        return chain_key(
            "hdbscan_tree",
            VERSION,
            getattr(hdbscan, "__version__", ""),
            LEAF_SIZE,
            self.min_samples,
            self.coords.shape,
            hashlib.sha256(self.coords.tobytes()).hexdigest(),
        )

    def labels(self, min_cluster_size: int, method: str = "eom", epsilon: float = 0.0) -> np.ndarray:
        return self.fit(min_cluster_size, method, epsilon)[0]

    def fit(self, min_cluster_size: int, method: str, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
        """(labels, membership probabilities) for these settings."""
        try:
            from hdbscan.hdbscan_ import _tree_to_labels
        except ImportError:  # a future hdbscan without it: fit again (slower, same result)
            return _fit(self.coords, min_cluster_size, self.min_samples, method, epsilon)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels, probabilities, *_ = _tree_to_labels(
                self.coords, self.tree, min_cluster_size, method, cluster_selection_epsilon=epsilon
            )
        return labels.astype(np.int64), np.nan_to_num(probabilities.astype(np.float32))


def _fit_from_tree(
    points: np.ndarray, settings: Settings, ctx: StageContext
) -> tuple[np.ndarray, np.ndarray]:
    """``_fit`` through an ``HdbscanTree`` cached as a piece of the stage."""
    tree = HdbscanTree(points, settings.min_samples, ctx.piece)
    return tree.fit(settings.min_cluster_size, settings.method, settings.epsilon)


def _fit(coords, min_cluster_size, min_samples, method, epsilon) -> tuple[np.ndarray, np.ndarray]:
    import hdbscan

    model = hdbscan.HDBSCAN(
        min_cluster_size=min_cluster_size,
        min_samples=min_samples,
        cluster_selection_method=method,
        cluster_selection_epsilon=epsilon,
        core_dist_n_jobs=1,
        leaf_size=LEAF_SIZE,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = model.fit_predict(coords).astype(np.int64)
    return labels, np.nan_to_num(model.probabilities_.astype(np.float32))


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


def assign_to_nearest(coords: np.ndarray, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Give a -1 point the cluster of its nearest clustered neighbours (a distance-weighted vote
    of 15, which follows HDBSCAN's shapes where the nearest centroid would not), when the vote is
    clear and the point is near that cluster (``quality.assign_confident``); others stay -1."""
    return quality.assign_confident(coords, labels, seed=seed)


def rows_to_fit(n: int, params: ClusterParams) -> np.ndarray | None:
    """The seeded sample HDBSCAN is fitted on when there are more than ``cluster.fit_sample``
    points (None: all of them). Past a few hundred thousand points HDBSCAN's neighbour
    search dominates (over 10 minutes for 1M points here); a sample of 200,000 finds the same
    clusters, and every other point takes the label of its nearest sampled neighbours."""
    if not params.fit_sample or n <= params.fit_sample:
        return None
    rng = np.random.default_rng(params.seed)
    return np.sort(rng.choice(n, params.fit_sample, replace=False))


def _scaled(settings: Settings, share: float) -> Settings:
    """Settings for a subsample holding ``share`` of the points: sizes scaled with it, so the
    density a cluster needs stays the same."""
    mcs = max(2, int(round(settings.min_cluster_size * share)))
    ms = max(1, int(round(settings.min_samples * share)))
    return Settings(mcs, ms, settings.method, settings.epsilon)


def about_k(
    coords: np.ndarray,
    vectors: np.ndarray | None,
    weights: np.ndarray,
    noise: np.ndarray,
    settings: Settings,
    k: int,
) -> tuple[np.ndarray, dict]:
    """About ``k`` clusters from HDBSCAN: pieces from HDBSCAN without the selection epsilon (made
    finer, with leaf selection and smaller sizes, until there are at least ``k``), every point
    given to its piece's neighbours, then Ward merges of the pieces in ``quality.merge_space`` (``ward_merges_in_space``)
    until ``k`` remain. Points in ``noise`` stay -1."""
    mcs, ms, method = settings.min_cluster_size, settings.min_samples, settings.method
    pieces, _ = _fit(coords, mcs, ms, method, 0.0)
    while len(set(pieces.tolist()) - {-1}) < k and mcs > 2:
        mcs = max(2, mcs // 2)
        ms = max(1, min(ms, mcs // 2))
        method = "leaf"
        pieces, _ = _fit(coords, mcs, ms, method, 0.0)
    found = len(set(pieces.tolist()) - {-1})
    info = {"pieces": found, "pieces_min_cluster_size": mcs, "pieces_selection": method}
    if found == 0:
        return np.full(len(coords), -1, dtype=np.int64), info
    full = quality.assign_by_neighbours(coords, pieces)
    if found > k:
        merges = quality.ward_merges_in_space(coords, vectors, full, weights)
        full = quality.merge_to(full, merges, k)
    return np.where(noise, -1, full), info


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
    if params.algorithm == "kmeans":
        return _kmeans(coords, params, ctx, weights)
    settings = resolve(params, projection, n)
    if settings.min_cluster_size > n:
        raise StageError(
            "cluster",
            f"HDBSCAN cannot find clusters in {n:,} distinct texts with min_cluster_size={settings.min_cluster_size}",
            hint=f"lower cluster.min_cluster_size below {max(2, n // 2)} (or set it to 0 for automatic)",
        )
    k = params.n_clusters
    if k > n:
        raise StageError(
            "cluster",
            f"cluster.n_clusters = {k} asks for more clusters than the {n:,} distinct texts",
            hint=f"set cluster.n_clusters to at most {n} (or 0 to let HDBSCAN decide)",
        )
    if params.min_samples > settings.min_samples:
        ctx.warn(
            f"cluster.min_samples={params.min_samples} is more than {n:,} distinct texts allow; "
            f"used min_samples={settings.min_samples}. Lower cluster.min_samples (or set it to 0 for automatic)"
        )
    sampled = rows_to_fit(n, params)
    ctx.progress(
        0.1,
        f"HDBSCAN on {n:,} points, min_cluster_size={settings.min_cluster_size}, "
        f"min_samples={settings.min_samples}"
        + (f", about {k} clusters" if k else "")
        + (
            ""
            if sampled is None
            else f"; fitted on a sample of {len(sampled):,} (cluster.fit_sample), the other points "
            "join their nearest sampled neighbours"
        ),
    )

    def run(rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
        if rows is None and sampled is not None:
            return run_sampled()
        points = coords if rows is None else coords[rows]
        vecs = vectors if vectors is None or rows is None else vectors[rows]
        w = weights if rows is None else weights[rows]
        used = settings
        if rows is not None and (rows is sampled or len(rows) < int(round(n * quality.STABILITY_FRACTION))):
            # the fit sample, or a bounded stability subsample of a large set
            used = _scaled(settings, len(rows) / n)
        labels, probabilities = _fit_from_tree(points, used, ctx)
        info: dict = {}
        if k:
            noise = labels == -1 if (labels >= 0).any() else np.zeros(len(points), dtype=bool)
            labels, info = about_k(points, vecs, w, noise, used, k)
        return labels, probabilities, info

    def run_sampled() -> tuple[np.ndarray, np.ndarray, dict]:
        labels, probabilities, info = run(sampled)
        ctx.progress(
            0.35, f"{len(set(labels.tolist()) - {-1})} clusters in the sample; placing the other points"
        )
        rest = np.ones(n, dtype=bool)
        rest[sampled] = False
        out = np.empty(n, dtype=np.int64)
        strength = np.empty(n, dtype=np.float32)
        out[sampled], strength[sampled] = labels, probabilities
        out[rest], strength[rest] = quality.extend_labels(
            coords[sampled],
            labels,
            probabilities,
            coords[rest],
            progress=lambda f: ctx.progress(0.35 + 0.2 * f, "placing the points outside the sample"),
        )
        return out, strength, info

    raw, probabilities, info = run()
    raw = _renumber(raw, weights)
    found = len(set(raw.tolist()) - {-1})
    resolved = {
        "min_cluster_size": settings.min_cluster_size,
        "min_samples": settings.min_samples,
        "epsilon": settings.epsilon,
        "n_texts": n,
    }
    if sampled is not None:
        resolved["fit_sample"] = len(sampled)
    if k:
        resolved |= {"n_clusters": k, **info}
        if found < k:
            ctx.warn(
                f"asked for about {k} clusters; HDBSCAN found only {found} groups even with "
                f"min_cluster_size={info.get('pieces_min_cluster_size')}. Use cluster.algorithm=kmeans "
                "for exactly k, or ask for fewer"
            )
    if (raw == -1).all():
        lower = f"cluster.min_cluster_size (e.g. {max(2, settings.min_cluster_size // 2)})"
        if params.min_samples:  # set by the user: it may be the one that declares everything noise
            lower += f" or cluster.min_samples (e.g. {max(1, settings.min_samples // 2)})"
        ctx.warn(
            f"HDBSCAN found no clusters in {n:,} distinct texts with min_cluster_size={settings.min_cluster_size}, "
            f"min_samples={settings.min_samples}; all are shown as unclustered. Lower {lower}"
        )
    labels = assign_to_nearest(coords, raw, params.seed) if params.assign_outliers else raw.copy()
    ctx.progress(0.6, f"{found} clusters; measuring separation and stability")
    readouts = quality.readouts(coords, raw, weights, recluster=lambda rows: run(rows)[0], seed=params.seed)
    ctx.progress(1.0, f"{found} clusters, {readouts['noise_share']:.0%} unclustered")
    return Clustering(labels, raw, probabilities, "hdbscan", resolved, readouts)


def _kmeans(coords: np.ndarray, params: ClusterParams, ctx: StageContext, weights: np.ndarray) -> Clustering:
    n = len(coords)
    k = params.n_clusters
    if k > n:
        raise StageError(
            "cluster",
            f"k-means was asked for {k} clusters but there are only {n:,} distinct texts",
            hint=f"set cluster.n_clusters to at most {n}",
        )
    ctx.progress(0.1, f"k-means with {k} clusters on {n:,} points")
    from sklearn.cluster import KMeans

    def run(rows: np.ndarray | None = None) -> np.ndarray:
        points = coords if rows is None else coords[rows]
        w = weights if rows is None else weights[rows]
        return KMeans(n_clusters=min(k, len(points)), random_state=params.seed, n_init=3).fit_predict(
            points, sample_weight=w
        )

    raw = _renumber(run().astype(np.int64), weights)
    readouts = quality.readouts(coords, raw, weights, recluster=run, seed=params.seed)
    return Clustering(
        raw, raw.copy(), np.ones(n, np.float32), "kmeans", {"n_clusters": k, "n_texts": n}, readouts
    )
