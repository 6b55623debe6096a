"""cluster: HDBSCAN (noise is -1 and stays visible) or k-means, on the reduced coordinates."""

from __future__ import annotations

import numpy as np

from ..config import ClusterParams
from ..context import StageContext, detached
from ..errors import StageError
from ..types import Clustering, Projection

VERSION = 1


def auto_min_cluster_size(n: int) -> int:
    """About sqrt(n)/2, at least 2: 40 texts -> 3, 400 -> 10, 10,000 -> 50, 1M -> 500."""
    return max(2, int(round(np.sqrt(n) / 2)))


def auto_min_samples(min_cluster_size: int) -> int:
    # Smaller than min_cluster_size: fewer points are declared noise in sparse regions.
    return max(1, min_cluster_size // 4)


def _renumber(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Ids by size, largest first (ties by first appearance); -1 stays -1."""
    ids = [int(i) for i in np.unique(labels) if i >= 0]
    size = {i: int(weights[labels == i].sum()) for i in ids}
    first = {i: int(np.argmax(labels == i)) for i in ids}
    order = sorted(ids, key=lambda i: (-size[i], first[i]))
    mapping = {old: new for new, old in enumerate(order)}
    return np.array([mapping.get(int(x), -1) for x in labels], dtype=np.int64)


def assign_to_nearest(coords: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Give every -1 point the id of the nearest cluster centroid."""
    ids = np.array(sorted(set(labels.tolist()) - {-1}), dtype=np.int64)
    out = labels.copy()
    noise = labels == -1
    if len(ids) == 0 or not noise.any():
        return out
    centroids = np.stack([coords[labels == i].mean(axis=0) for i in ids])
    distances = ((coords[noise, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    out[noise] = ids[np.argmin(distances, axis=1)]
    return out


def cluster(
    projection: Projection,
    params: ClusterParams,
    ctx: StageContext | None = None,
    weights: np.ndarray | None = None,
) -> Clustering:
    """Cluster the points; ids are numbered by size (0 = largest), -1 is noise."""
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
    mcs = params.min_cluster_size or auto_min_cluster_size(n)
    if mcs > n:
        raise StageError(
            "cluster",
            f"HDBSCAN cannot find clusters in {n:,} distinct texts with min_cluster_size={mcs}",
            hint=f"lower cluster.min_cluster_size below {max(2, n // 2)} (or set it to 0 for automatic)",
        )
    min_samples = params.min_samples or auto_min_samples(mcs)
    min_samples = min(min_samples, n - 1)
    ctx.progress(0.1, f"HDBSCAN on {n:,} points, min_cluster_size={mcs}, min_samples={min_samples}")
    import hdbscan

    model = hdbscan.HDBSCAN(
        min_cluster_size=mcs,
        min_samples=min_samples,
        cluster_selection_method=params.method,
        core_dist_n_jobs=1,
    )
    raw = model.fit_predict(coords).astype(np.int64)
    probabilities = np.nan_to_num(model.probabilities_.astype(np.float32))
    raw = _renumber(raw, weights)
    resolved = {"min_cluster_size": mcs, "min_samples": min_samples, "n_texts": n}
    if (raw == -1).all():
        ctx.warn(
            f"HDBSCAN found no clusters in {n:,} distinct texts with min_cluster_size={mcs}; "
            f"all are shown as unclustered. Lower cluster.min_cluster_size (e.g. {max(2, mcs // 2)})"
        )
    labels = assign_to_nearest(coords, raw) if params.assign_outliers else raw.copy()
    noise_share = float(weights[raw == -1].sum() / weights.sum())
    ctx.progress(1.0, f"{len(set(raw.tolist()) - {-1})} clusters, {noise_share:.0%} unclustered")
    return Clustering(labels, raw, probabilities, "hdbscan", resolved)


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

    raw = KMeans(n_clusters=k, random_state=params.seed, n_init=3).fit_predict(coords, sample_weight=weights)
    raw = _renumber(raw.astype(np.int64), weights)
    return Clustering(raw, raw.copy(), np.ones(n, np.float32), "kmeans", {"n_clusters": k, "n_texts": n})
