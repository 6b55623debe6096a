"""cluster: HDBSCAN (noise is -1 and stays visible) or k-means, on the reduced coordinates.

HDBSCAN runs with settings chosen from the data when left at 0 / -1 (see ``resolve``). With the
automatic ``cluster.epsilon`` (-1) the number of clusters is chosen without any absolute
distance (``auto_level``): HDBSCAN without epsilon finds fine pieces, the pieces are joined by
Ward's criterion, and the level kept is the one whose clusters are best separated (silhouette),
with no cluster over ``LARGEST_SHARE`` of the texts when another level allows it. A fixed
distance suits only some densities: the 0.4 used before returned one cluster holding 92% of a
corpus of overlapping topics. With ``cluster.epsilon >= 0`` HDBSCAN selects its clusters itself,
as HDBSCAN does. With ``n_clusters = K`` it returns about K clusters while keeping HDBSCAN's
shapes (``about_k``). Every result carries readouts (``Clustering.readouts``: count, noise
share, largest share, separation, stability).
"""

from __future__ import annotations

import dataclasses
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

VERSION = 8  # 3: confident outlier assignment; 4: fit_sample, leaf size; 5-8: auto_level
LEAF_SIZE = 100  # HDBSCAN's k-d tree leaves: 100 instead of 40 makes a 100k-point fit a quarter faster
UMAP_EPSILON = 0.4  # the former automatic cluster_selection_epsilon; see auto_level
LARGEST_SHARE = 0.4  # no automatic level leaves a cluster larger than this when another level can
MAX_LEVEL_SHARE = 0.5  # the automatic level keeps at most half the pieces (see auto_level)
LEVEL_SAMPLE = 2_000  # points each level's silhouette is measured on
LEVELS = 40  # candidate levels, spaced evenly on a log scale between 2 and the pieces


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
    """The selection epsilon of the pieces ``auto_level`` joins: 0 (HDBSCAN's finest
    selection), whatever the projection; the level of the clusters comes from the data instead."""
    return 0.0


@dataclass(frozen=True)
class Settings:
    """HDBSCAN settings as resolved for one corpus; ``auto``: the level is chosen by ``auto_level``."""

    min_cluster_size: int
    min_samples: int
    method: str
    epsilon: float
    auto: bool = False


def resolve(params: ClusterParams, projection: Projection, n: int) -> Settings:
    """Fill in the automatic (0 / -1) settings for ``n`` distinct texts."""
    mcs = params.min_cluster_size or auto_min_cluster_size(n)
    ms = min(params.min_samples or auto_min_samples(mcs), max(n - 1, 1))
    auto = params.epsilon < 0
    eps = auto_epsilon(projection) if auto else float(params.epsilon)
    return Settings(mcs, ms, params.method, eps, auto)


@dataclass(frozen=True)
class Level:
    """What ``auto_level`` chose: the pieces it joined and the number of clusters kept."""

    pieces: int
    clusters: int
    silhouette: float | None
    largest_share: float
    candidates: int

    def info(self) -> dict:
        return {
            "pieces": self.pieces,
            "level": self.clusters,
            "level_silhouette": None if self.silhouette is None else round(self.silhouette, 4),
            "level_largest_share": round(self.largest_share, 4),
            "levels_compared": self.candidates,
        }


def auto_level(
    coords: np.ndarray,
    vectors: np.ndarray | None,
    weights: np.ndarray,
    pieces: np.ndarray,
    seed: int = 0,
    k: int = 0,
    ceiling: int = 0,
) -> tuple[np.ndarray, np.ndarray, Level]:
    """Clusters from HDBSCAN's fine ``pieces`` without an absolute distance: returns (labels,
    each point's share of its neighbours' vote, the level chosen).

    1. Every point joins its piece, or (HDBSCAN's noise) the piece its nearest clustered points
       vote for; a point further from every piece than ``quality.ASSIGN_REACH`` x the usual gap
       between neighbours stays noise (``quality.far_from``).
    2. The pieces are joined by Ward's criterion in ``quality.merge_space`` (reduced coordinates
       beside the embeddings): the hierarchy k-means would agree with, built on HDBSCAN's shapes.
    3. The level kept (``k`` when given) is the one with the best silhouette on the reduced
       coordinates (``LEVEL_SAMPLE`` points) among ``LEVELS`` candidates from 2 clusters up to the
       larger of half the pieces and ``ceiling``, leaving out levels whose largest cluster holds
       more than ``LARGEST_SHARE`` of the texts while another level does not. Silhouette rises
       towards the pieces themselves on tight corpora (bank intents split into 3-4 pieces each),
       hence the cap; ``ceiling`` (on UMAP coordinates the clusters HDBSCAN's own selection keeps
       at the distance ``UMAP_EPSILON``, else all the pieces) lifts it where the pieces are real
       clusters (tweets: 85 pieces, 89 topics).

    Measured on every set of ``pipeline.bench_quality`` (README, "Cluster quality")."""
    weights = np.asarray(weights, dtype=np.float64)
    n_pieces = len(set(pieces.tolist()) - {-1})
    if n_pieces == 0:
        return pieces.copy(), np.zeros(len(pieces), np.float32), Level(0, 0, None, 0.0, 0)
    noise = quality.far_from(coords, pieces, seed=seed)
    full, share = quality.assign_by_neighbours(coords, pieces, with_share=True)
    merges = quality.ward_merges_in_space(coords, vectors, full, weights)
    if k:
        levels = [min(k, n_pieces)]
    else:
        top = max(2, int(n_pieces * MAX_LEVEL_SHARE), min(ceiling, n_pieces)) if n_pieces > 3 else n_pieces
        grid = {int(round(x)) for x in np.geomspace(2, max(top, 2), LEVELS)} | {top}
        levels = sorted(level for level in grid if 1 <= level <= n_pieces) or [n_pieces]
    rng = np.random.default_rng(seed)
    kept = np.flatnonzero(~noise)  # outliers would make every cluster they join look wide
    sample = np.sort(rng.choice(kept, min(len(kept), LEVEL_SAMPLE), replace=False))
    distances = quality.pairwise(coords[sample]) if len(levels) > 1 else None
    total = max(weights.sum(), 1e-12)
    scored = []
    for level in levels:
        labels = quality.merge_to(full, merges, level)
        largest = float(np.bincount(labels, weights=weights).max() / total)
        sil = quality.silhouette_of(distances, labels[sample]) if distances is not None else None
        scored.append((level, sil, largest, labels))
    fitting = [s for s in scored if s[2] <= LARGEST_SHARE] or scored
    level, sil, largest, labels = max(fitting, key=lambda s: (-np.inf if s[1] is None else s[1], -s[0]))
    labels = np.where(noise, -1, labels)
    strength = np.where(noise, 0.0, share).astype(np.float32)
    return labels, strength, Level(n_pieces, level, sil, largest, len(levels))


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


def select(
    tree: HdbscanTree,
    vectors: np.ndarray | None,
    weights: np.ndarray,
    settings: Settings,
    umap: bool,
    seed: int = 0,
    level: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(labels, membership strengths, what was chosen) from a built tree: HDBSCAN's own selection
    with ``settings.epsilon``, or with the automatic epsilon ``auto_level`` (at ``level`` clusters
    when given). The cluster stage and ``quality.suggest_settings`` both select through here."""
    labels, probabilities = tree.fit(settings.min_cluster_size, settings.method, settings.epsilon)
    if not settings.auto:
        return labels, probabilities, {}
    # UMAP's distances have a known scale: HDBSCAN's own selection at UMAP_EPSILON tells where
    # pieces are real clusters; on other coordinates nothing caps the level
    ceiling = _count(labels)
    if umap and not level:
        ceiling = _count(tree.labels(settings.min_cluster_size, settings.method, UMAP_EPSILON))
    labels, probabilities, chosen = auto_level(tree.coords, vectors, weights, labels, seed, level, ceiling)
    return labels, probabilities, chosen.info()


def _count(labels: np.ndarray) -> int:
    return len(set(labels.tolist()) - {-1})


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
    return dataclasses.replace(settings, min_cluster_size=mcs, min_samples=ms)


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

    chosen: dict[str, int] = {}  # the automatic level of the full run, kept for stability subsamples

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
        tree = HdbscanTree(points, used.min_samples, ctx.piece)
        if k:
            labels, probabilities = tree.fit(used.min_cluster_size, used.method, used.epsilon)
            noise = labels == -1 if (labels >= 0).any() else np.zeros(len(points), dtype=bool)
            labels, info = about_k(points, vecs, w, noise, used, k)
            return labels, probabilities, info
        # a stability subsample keeps the full run's level: it measures the clusters, not the choice
        again = chosen.get("level", 0) if rows is not None and rows is not sampled else 0
        labels, probabilities, info = select(
            tree, vecs, w, used, projection.method == "umap", params.seed, again
        )
        if rows is None or rows is sampled:
            chosen["level"] = info.get("level", 0)
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
    if settings.auto and not k:
        resolved |= {"selection": "auto_level", **info}
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
    if found > 1 and readouts["largest_share"] > LARGEST_SHARE:
        ctx.warn(
            f"one cluster holds {readouts['largest_share']:.0%} of the texts: at these settings the "
            "texts barely separate. Try a smaller cluster.min_cluster_size, the automatic "
            "cluster.epsilon (-1), or about K clusters (cluster.n_clusters)"
        )
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
