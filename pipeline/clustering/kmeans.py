"""k-means with the number of clusters the user sets (``cluster.n_clusters``), weighted by rows per
distinct text; every text gets a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .base import Clusterer, Fit, FixedK, PieceFn, Points

if TYPE_CHECKING:
    from ..config import ClusterParams
    from ..types import Projection

N_INIT = 3  # seeded restarts; the best (lowest inertia) is kept


@dataclass(frozen=True)
class KMeansFitter(FixedK):
    """k-means with ``k`` clusters (``base.Fitter``)."""

    def describe(self, n: int) -> str:
        return f"k-means with {self.k} clusters on {n:,} points"

    def fit(self, points: Points) -> Fit:
        from sklearn.cluster import KMeans

        model = KMeans(n_clusters=min(self.k, len(points)), random_state=self.seed, n_init=N_INIT)
        labels = model.fit_predict(points.coords, sample_weight=points.weights).astype(np.int64)
        return Fit(labels, np.ones(len(points), np.float32))


def setup(
    params: ClusterParams, projection: Projection, n: int, piece: PieceFn | None = None
) -> KMeansFitter:
    return KMeansFitter(params.n_clusters, params.seed)


CLUSTERER = Clusterer(
    name="kmeans",
    title="k-means",
    label="k-means: you set the number",
    setup=setup,
    settings=("n_clusters",),
    needs_k=True,
)
