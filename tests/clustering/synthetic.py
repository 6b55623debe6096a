"""Small synthetic point sets with known groups, shared by the clustering tests."""

from __future__ import annotations

import numpy as np

from pipeline import ClusterParams
from pipeline.stages.cluster import cluster
from pipeline.types import Clustering, Projection


def nested_blobs(per: int = 40, seed: int = 0, dim: int = 5):
    """3 families far apart, each of 3 tight blobs near each other: (points, family, blob)."""
    rng = np.random.default_rng(seed)
    families = rng.standard_normal((3, dim)) * 40
    points, family, blob = [], [], []
    for f, centre in enumerate(families):
        for b in range(3):
            middle = centre + rng.standard_normal(dim) * 6
            points.append(middle + rng.standard_normal((per, dim)) * 0.3)
            family += [f] * per
            blob += [3 * f + b] * per
    return np.concatenate(points).astype(np.float32), np.array(family), np.array(blob)


def clumpy_topics(k: int = 8, clumps: int = 4, per: int = 30, seed: int = 0):
    """What UMAP makes of overlapping topics: ``k`` groups whose centres lie closer together
    than 0.4, each made of tight clumps: (points, group)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, 5)) * 0.25
    points, group = [], []
    for g, centre in enumerate(centres):
        for _ in range(clumps):
            middle = centre + rng.standard_normal(5) * 0.07
            points.append(middle + rng.standard_normal((per, 5)) * 0.015)
            group += [g] * per
    return np.concatenate(points).astype(np.float32), np.array(group)


def projection_of(points: np.ndarray, method: str = "test") -> Projection:
    return Projection(coords=points, layout=points[:, :2], method=method)


def hdbscan(points, **values) -> Clustering:
    """The cluster stage with HDBSCAN (min_cluster_size 10 unless given), the points as embeddings."""
    values.setdefault("min_cluster_size", 10)
    return cluster(projection_of(points), ClusterParams(**values), vectors=points)
