"""What every clustering algorithm shares: the ``Clusterer`` declaration, the ``Fitter`` protocol its
``setup`` returns, and the ``Points`` and ``Fit`` they exchange with the cluster stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..config import ClusterParams
    from ..types import Projection

# (kind, key, compute) -> (value, was cached): ``StageContext.piece``, for expensive parts of a fit
PieceFn = Callable[[str, str, Callable[[], Any]], tuple[Any, bool]]


@dataclass(frozen=True)
class Points:
    """What one fit clusters: the reduced coordinates, each point's weight (rows per distinct
    text: ids are ordered and shares weighed by them) and, for algorithms that merge clusters in
    their space, each point's embedding."""

    coords: np.ndarray  # float64 (n, d)
    weights: np.ndarray  # (n,)
    vectors: np.ndarray | None = None  # (n, dim), may be memory-mapped

    def __len__(self) -> int:
        return len(self.coords)

    def take(self, rows: np.ndarray) -> Points:
        """The points at ``rows`` (a fit sample or a stability subsample)."""
        vectors = None if self.vectors is None else self.vectors[rows]
        return Points(self.coords[rows], self.weights[rows], vectors)


@dataclass(frozen=True)
class Fit:
    """One fit's result, before the stage numbers the clusters by size."""

    labels: np.ndarray  # int per point; -1 = unclustered
    probabilities: np.ndarray  # float32 membership strength 0..1 (all 1 for algorithms without one)
    info: dict[str, Any] = field(default_factory=dict)  # what the fit chose, for the manifest


class Fitter(Protocol):
    """An algorithm with its settings resolved for one run of the stage (``Clusterer.setup``)."""

    resolved: dict[str, Any]  # the settings as used (automatic values filled in), for the manifest

    def describe(self, n: int) -> str:
        """The progress line before ``n`` points are fitted."""
        ...

    def fit(self, points: Points) -> Fit:
        """Cluster ``points``: the stage's points, or the seeded sample of them that
        ``cluster.fit_sample`` asks for (fewer points than ``setup`` was told)."""
        ...

    def recluster(self, points: Points, full: Fit) -> np.ndarray:
        """Labels for a subsample of the stage's points, for the stability readout; ``full`` is
        the run's own fit (a choice it made, such as HDBSCAN's level, can be kept)."""
        ...

    def warnings(self, fit: Fit) -> list[str]:
        """What the user should know about this fit (``fit.labels`` numbered by size)."""
        ...


# (params, projection, number of points, the stage's piece cache or None) -> a Fitter; raises
# StageError for settings these points cannot satisfy
SetupFn = Callable[["ClusterParams", "Projection", int, "PieceFn | None"], Fitter]


@dataclass(frozen=True)
class Clusterer:
    """A clustering algorithm: declared once in its module (``CLUSTERER = Clusterer(...)``) and
    listed in ``pipeline.clustering.CLUSTERERS``; the cluster stage, ``cluster.algorithm``'s
    validation and the app's method choice and controls read the declaration."""

    name: str  # the value of cluster.algorithm
    title: str  # its name in messages ("k-means")
    label: str  # what the app's method choice calls it
    setup: SetupFn
    # the cluster.* settings it reads besides algorithm and seed: the app shows their controls, and
    # "fit_sample" makes the stage fit a seeded sample past that many points and place the rest
    settings: tuple[str, ...]
    needs_k: bool = False  # cluster.n_clusters is required: that many clusters
    about_k: bool = False  # cluster.n_clusters is optional: about that many (0 = it decides)
    sweep: bool = False  # "Suggest clustering settings" (clustering.sweep) tunes its settings
    noise: bool = False  # may leave texts unclustered (-1): cluster.assign_outliers applies
    # what to try when one cluster holds more than readouts.LARGEST_SHARE of the texts (the stage
    # then warns); None: no warning (the readout still shows it)
    advice: str | None = None
    # bump when its results change: it is part of the cluster stage's VERSION, so cached
    # clusterings are recomputed (joblib does not see code edits)
    version: int = 0


@dataclass(frozen=True)
class FixedK:
    """What the algorithms told a number of clusters share (``Fitter`` minus ``describe``/``fit``):
    ``cluster.n_clusters`` as their resolved setting, a re-cluster that fits again, no warnings."""

    k: int
    seed: int

    @property
    def resolved(self) -> dict[str, Any]:
        return {"n_clusters": self.k}

    def recluster(self, points: Points, full: Fit) -> np.ndarray:
        return self.fit(points).labels  # type: ignore[attr-defined]

    def warnings(self, fit: Fit) -> list[str]:
        return []
