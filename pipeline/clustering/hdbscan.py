"""HDBSCAN (noise is -1 and stays visible), with its settings chosen from the data when left at
0 / -1 (``resolve``), its expensive tree cached (``HdbscanTree``), the automatic level
(``auto_level``) and "about K" clusters (``about_k``).

With the automatic ``cluster.epsilon`` (-1) the number of clusters is chosen without any absolute
distance (``auto_level``): HDBSCAN without epsilon finds fine pieces, the pieces are joined by
Ward's criterion, and the level kept is the one whose clusters are best separated (silhouette),
with no cluster over ``LARGEST_SHARE`` of the texts when another level allows it. A fixed
distance suits only some densities: the 0.4 used before returned one cluster holding 92% of a
corpus of overlapping topics. With ``cluster.epsilon >= 0`` HDBSCAN selects its clusters itself,
as HDBSCAN does. With ``n_clusters = K`` it returns about K clusters while keeping HDBSCAN's
shapes (``about_k``). Past ``cluster.fit_sample`` texts the stage fits a seeded sample (sizes
scaled to it, ``HdbscanFitter``) and places the rest by their nearest sampled neighbours.
"""

from __future__ import annotations

import dataclasses
import hashlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import StageError
from . import assign, flat, readouts, ward
from .base import Clusterer, Fit, PieceFn, Points
from .readouts import LARGEST_SHARE

if TYPE_CHECKING:
    from ..config import ClusterParams
    from ..types import Projection

# in the cached tree's key: bump when the tree itself changes. 8 = the cluster stage's VERSION when
# the tree moved here, so trees cached before stay valid
TREE_VERSION = 8
LEAF_SIZE = 100  # HDBSCAN's k-d tree leaves: 100 instead of 40 makes a 100k-point fit a quarter faster
UMAP_EPSILON = 0.4  # the former automatic cluster_selection_epsilon; see auto_level
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


def auto_min_samples_for(min_cluster_size: int, n: int) -> int:
    """The automatic min_samples of a run: that of the automatic size for ``n`` texts, or of
    ``min_cluster_size`` when it is smaller. Above the automatic size min_samples stays put, so
    moving the size slider up re-selects clusters from the same cached tree (a 10,000-text step:
    0.5-0.75 s of tree building gone from every other step), and every size is clustered as
    ``sweep.suggest_settings`` measured it (one min_samples for the whole sweep)."""
    return auto_min_samples(min(min_cluster_size, auto_min_cluster_size(n)))


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
    ms = min(params.min_samples or auto_min_samples_for(mcs, n), max(n - 1, 1))
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
       vote for; a point further from every piece than ``assign.ASSIGN_REACH`` x the usual gap
       between neighbours stays noise (``assign.join_pieces``).
    2. The pieces are joined by Ward's criterion in the merge space (``ward``: reduced coordinates
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
    full, share, noise = assign.join_pieces(coords, pieces, seed=seed)
    merges = ward.ward_merges_in_space(coords, vectors, full, weights)
    if k:
        levels = [min(k, n_pieces)]
    else:
        top = max(2, int(n_pieces * MAX_LEVEL_SHARE), min(ceiling, n_pieces)) if n_pieces > 3 else n_pieces
        grid = {int(round(x)) for x in np.geomspace(2, max(top, 2), LEVELS)} | {top}
        levels = sorted(level for level in grid if 1 <= level <= n_pieces) or [n_pieces]
    rng = np.random.default_rng(seed)
    kept = np.flatnonzero(~noise)  # outliers would make every cluster they join look wide
    sample = np.sort(rng.choice(kept, min(len(kept), LEVEL_SAMPLE), replace=False))
    silhouette = (
        readouts.LevelSilhouettes(coords[sample], full[sample], merges.ids) if len(levels) > 1 else None
    )
    # every point is in a piece: a level's cluster weights are sums of its pieces' weights, so only
    # the level kept relabels the points
    total = max(float(merges.sizes.sum()), 1e-12)
    scored = []
    for level in levels:
        group_of_piece = ward.merge_to(merges.ids, merges, level)
        _, group = np.unique(group_of_piece, return_inverse=True)
        largest = float(np.bincount(group, weights=merges.sizes).max() / total)
        sil = silhouette(group_of_piece) if silhouette is not None else None
        scored.append((level, sil, largest))
    fitting = [s for s in scored if s[2] <= LARGEST_SHARE] or scored
    level, sil, largest = max(fitting, key=lambda s: (-np.inf if s[1] is None else s[1], -s[0]))
    labels = np.where(noise, -1, ward.merge_to(full, merges, level))
    strength = np.where(noise, 0.0, share).astype(np.float32)
    return labels, strength, Level(n_pieces, level, sil, largest, len(levels))


class HdbscanTree:
    """HDBSCAN's expensive part (the single-linkage tree for one ``min_samples``), built once;
    ``labels`` applies min_cluster_size, selection method and epsilon to it cheaply.

    With ``piece`` (a ``StageContext.piece``) the tree is cached by the points and min_samples,
    so a new min_cluster_size, selection method or epsilon (the usual slider moves) in a later
    run only re-selects clusters from it. Condensing and selecting are ``flat``'s (hdbscan's
    results, compiled and in arrays): 0.6 s -> 0.02 s per selection at 100,000 points.

    hdbscan's public ``memory=`` would cache the same tree, but in a joblib folder of its own,
    outside the pipeline's cache pieces: it would write into a cache folder opened read-only
    (issue 7) and escape the workspace quota and ``clean-cache``. It is also slower: re-selecting
    with a new min_cluster_size at 20,000 5-D points took 174 ms (median of 5) through
    ``HDBSCAN(memory=...).fit``, against 154 ms for this tree loaded from its piece plus
    hdbscan's ``_tree_to_labels`` (135 ms with the tree in memory, as in a sweep), before ``flat``."""

    def __init__(self, coords: np.ndarray, min_samples: int, piece: PieceFn | None = None):
        self.coords = np.ascontiguousarray(coords, dtype=np.float64)
        self.min_samples = max(1, min(min_samples, len(coords) - 1))
        self._condensed: tuple[int, flat.Condensed] | None = None  # (min_cluster_size, its condensed tree)
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

        from ..cache import chain_key

        return chain_key(
            "hdbscan_tree",
            TREE_VERSION,
            getattr(hdbscan, "__version__", ""),
            LEAF_SIZE,
            self.min_samples,
            self.coords.shape,
            hashlib.sha256(self.coords.tobytes()).hexdigest(),
        )

    def labels(self, min_cluster_size: int, method: str = "eom", epsilon: float = 0.0) -> np.ndarray:
        """The points' labels for these settings (``fit`` without the probabilities)."""
        condensed = self._condense(min_cluster_size)
        return flat.labels(condensed, flat.select(condensed, method, epsilon))

    def fit(self, min_cluster_size: int, method: str, epsilon: float) -> tuple[np.ndarray, np.ndarray]:
        """(labels, membership probabilities) for these settings, as hdbscan's own selection gives
        them (``flat``). The condensed tree of the last ``min_cluster_size`` is kept: selecting
        again at another epsilon (``select`` does, for its ceiling) skips condensing it."""
        condensed = self._condense(min_cluster_size)
        selected = flat.select(condensed, method, epsilon)
        labels = flat.labels(condensed, selected)
        return labels, flat.probabilities(condensed, selected, labels).astype(np.float32)

    def _condense(self, min_cluster_size: int) -> flat.Condensed:
        if self._condensed is None or self._condensed[0] != min_cluster_size:
            self._condensed = (min_cluster_size, flat.condense(self.tree, min_cluster_size))
        return self._condensed[1]


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
    when given). The cluster stage and ``sweep.suggest_settings`` both select through here."""
    if not settings.auto:
        return *tree.fit(settings.min_cluster_size, settings.method, settings.epsilon), {}
    labels = tree.labels(settings.min_cluster_size, settings.method, settings.epsilon)
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
    given to its piece's neighbours, then Ward merges of the pieces in the merge space (``ward.ward_merges_in_space``)
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
    full = assign.assign_by_neighbours(coords, pieces)
    if found > k:
        merges = ward.ward_merges_in_space(coords, vectors, full, weights)
        full = ward.merge_to(full, merges, k)
    return np.where(noise, -1, full), info


# --- the algorithm as the cluster stage runs it --------------------------------------------------


@dataclass(frozen=True)
class HdbscanFitter:
    """HDBSCAN with its settings resolved for the stage's ``n`` points (``base.Fitter``)."""

    params: ClusterParams
    settings: Settings
    n: int
    umap: bool  # the points are UMAP coordinates (their distances have a known scale)
    piece: PieceFn | None = None

    @property
    def resolved(self) -> dict[str, Any]:
        s = self.settings
        return {"min_cluster_size": s.min_cluster_size, "min_samples": s.min_samples, "epsilon": s.epsilon}

    def describe(self, n: int) -> str:
        k = self.params.n_clusters
        return (
            f"HDBSCAN on {n:,} points, min_cluster_size={self.settings.min_cluster_size}, "
            f"min_samples={self.settings.min_samples}" + (f", about {k} clusters" if k else "")
        )

    def fit(self, points: Points) -> Fit:
        used = self.settings
        if len(points) < self.n:  # the fit sample: sizes scaled to it
            used = _scaled(self.settings, len(points) / self.n)
        return self._run(points, used, level=0)

    def recluster(self, points: Points, full: Fit) -> np.ndarray:
        used = self.settings
        if len(points) < int(round(self.n * readouts.STABILITY_FRACTION)):  # bounded, of a large set
            used = _scaled(self.settings, len(points) / self.n)
        # a subsample keeps the full run's level: it measures the clusters, not the choice
        return self._run(points, used, level=full.info.get("level", 0)).labels

    def _run(self, points: Points, used: Settings, level: int) -> Fit:
        tree = HdbscanTree(points.coords, used.min_samples, self.piece)
        k = self.params.n_clusters
        if k:
            labels, probabilities = tree.fit(used.min_cluster_size, used.method, used.epsilon)
            noise = labels == -1 if (labels >= 0).any() else np.zeros(len(points), dtype=bool)
            labels, info = about_k(points.coords, points.vectors, points.weights, noise, used, k)
            return Fit(labels, probabilities, {"n_clusters": k, **info})
        labels, probabilities, info = select(
            tree, points.vectors, points.weights, used, self.umap, self.params.seed, level
        )
        return Fit(labels, probabilities, {"selection": "auto_level", **info} if used.auto else {})

    def warnings(self, fit: Fit) -> list[str]:
        params, settings, n = self.params, self.settings, self.n
        out = []
        if params.min_samples > settings.min_samples:
            out.append(
                f"cluster.min_samples={params.min_samples} is more than {n:,} distinct texts allow; "
                f"used min_samples={settings.min_samples}. Lower cluster.min_samples (or set it to 0 for automatic)"
            )
        k, found = params.n_clusters, _count(fit.labels)
        if k and found < k:
            out.append(
                f"asked for about {k} clusters; HDBSCAN found only {found} groups even with "
                f"min_cluster_size={fit.info.get('pieces_min_cluster_size')}. Use cluster.algorithm=kmeans "
                "for exactly k, or ask for fewer"
            )
        if (fit.labels == -1).all():
            lower = f"cluster.min_cluster_size (e.g. {max(2, settings.min_cluster_size // 2)})"
            if params.min_samples:  # set by the user: it may be the one that declares everything noise
                lower += f" or cluster.min_samples (e.g. {max(1, settings.min_samples // 2)})"
            out.append(
                f"HDBSCAN found no clusters in {n:,} distinct texts with min_cluster_size={settings.min_cluster_size}, "
                f"min_samples={settings.min_samples}; all are shown as unclustered. Lower {lower}"
            )
        return out


def setup(
    params: ClusterParams, projection: Projection, n: int, piece: PieceFn | None = None
) -> HdbscanFitter:
    """HDBSCAN's settings resolved for ``n`` points; a min_cluster_size above ``n`` is an error."""
    settings = resolve(params, projection, n)
    if settings.min_cluster_size > n:
        raise StageError(
            "cluster",
            f"HDBSCAN cannot find clusters in {n:,} distinct texts with min_cluster_size={settings.min_cluster_size}",
            hint=f"lower cluster.min_cluster_size below {max(2, n // 2)} (or set it to 0 for automatic)",
        )
    return HdbscanFitter(params, settings, n, projection.method == "umap", piece)


CLUSTERER = Clusterer(
    name="hdbscan",
    title="HDBSCAN",
    label="HDBSCAN: finds the number of clusters",
    setup=setup,
    settings=(
        "min_cluster_size",
        "min_samples",
        "n_clusters",
        "epsilon",
        "method",
        "assign_outliers",
        "fit_sample",
    ),
    about_k=True,
    sweep=True,
    noise=True,
    advice="Try a smaller cluster.min_cluster_size, the automatic cluster.epsilon (-1), or about K "
    "clusters (cluster.n_clusters)",
    # 1: the automatic level's silhouettes leave out a level's clusters its sample missed (they
    # made the level's score NaN), and the automatic min_samples stops growing past the automatic size;
    # 2: the noise's neighbours come from another k-d tree (ties between equally near points)
    version=2,
)
