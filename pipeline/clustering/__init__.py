"""Clustering algorithms behind one protocol, their registry, and the maths they share.

The cluster stage (``pipeline/stages/cluster.py``) only knows ``Clusterer`` (``base.py``): a
declaration (name, the app's label, what it supports: ``needs_k``, ``about_k``, ``sweep``,
``noise``, the ``cluster.*`` settings it reads) whose ``setup`` returns a ``Fitter``: ``fit``
(points with weights -> labels, membership strengths, what it chose), ``recluster`` (the stability
readout's re-clustering of a subsample) and ``warnings``. Each algorithm is a module here that
ends with its declaration, ``CLUSTERER = Clusterer(...)``; ``CLUSTERERS`` below lists them.
``cluster.algorithm``'s validation, the stage and the app's method choice and controls all read
``CLUSTERERS``, so a new algorithm is its module plus its line there (docs/architecture.md, "Add
a clustering algorithm").

* ``hdbscan``: HDBSCAN with the automatic level, "about K" and a cached tree (the default).
* ``kmeans``: k-means with the number of clusters the user sets.
* ``agglomerative``: Ward with the number of clusters the user sets, on at most 5,000 points.

Shared by them, each its own module: ``assign`` (neighbour votes: outliers, pieces, points outside
a fit sample), ``ward`` (Ward merges of groups in the merge space), ``readouts`` (count, noise,
largest share, separation, stability); and on top, ``tree`` (the cluster tree) and ``sweep``
(suggest HDBSCAN settings). Nothing here imports a stage.
"""

from __future__ import annotations

from ..errors import ConfigError
from . import agglomerative, hdbscan, kmeans
from .base import Clusterer, Fit, Fitter, Points

CLUSTERERS: dict[str, Clusterer] = {
    clusterer.name: clusterer for clusterer in (hdbscan.CLUSTERER, kmeans.CLUSTERER, agglomerative.CLUSTERER)
}


def clusterer(name: str) -> Clusterer:
    """The declaration of ``cluster.algorithm = name``."""
    try:
        return CLUSTERERS[name]
    except KeyError:  # ClusterParams checks the name first; kept for callers that do not
        raise ConfigError(
            f"cluster.algorithm = {name!r} is not allowed; expected {allowed()}",
            hint=f"set cluster.algorithm to one of {', '.join(CLUSTERERS)}",
        ) from None


def allowed() -> str:
    """The algorithm names as a config message lists them."""
    return " or ".join(map(repr, CLUSTERERS))


__all__ = ["CLUSTERERS", "Clusterer", "Fit", "Fitter", "Points", "allowed", "clusterer"]
