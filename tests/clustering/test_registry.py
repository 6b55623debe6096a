"""The registry of clustering algorithms: every declaration is consistent, and a new algorithm is
its module plus its entry: the config accepts it, the stage runs it, the app offers it."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

import numpy as np
import pytest

from pipeline import ClusterParams, ConfigError
from pipeline.clustering import CLUSTERERS, Clusterer, Fit, Points
from pipeline.context import detached
from pipeline.stages import cluster as cluster_stage
from tests.clustering.synthetic import nested_blobs, projection_of


def test_every_declaration_says_what_it_supports_consistently():
    settings = {f.name for f in dataclasses.fields(ClusterParams)} - {"algorithm", "seed"}
    for name, clusterer in CLUSTERERS.items():
        assert clusterer.name == name and clusterer.label.startswith(clusterer.title)
        assert set(clusterer.settings) <= settings, name
        assert not (clusterer.needs_k and clusterer.about_k), name
        assert ("n_clusters" in clusterer.settings) == (clusterer.needs_k or clusterer.about_k), name
        assert ("assign_outliers" in clusterer.settings) == clusterer.noise, name
    assert [c.name for c in CLUSTERERS.values() if c.sweep] == ["hdbscan"]  # the sweep tunes its sizes
    assert list(CLUSTERERS)[0] == ClusterParams().algorithm  # the default comes first in the app


def test_an_unknown_algorithm_is_refused_with_every_name():
    with pytest.raises(ConfigError) as info:
        ClusterParams(algorithm="dbscan")
    assert "expected 'hdbscan' or 'kmeans' or 'agglomerative'" in info.value.user_message()


def test_the_stage_never_branches_on_an_algorithm_name():
    source = inspect.getsource(cluster_stage)
    assert not [name for name in CLUSTERERS if f'"{name}"' in source or f"'{name}'" in source]


@dataclass(frozen=True)
class HalvesFitter:
    """A toy algorithm: two clusters, split at the median of the first coordinate."""

    resolved = {"split": "median"}

    def describe(self, n: int) -> str:
        return f"halves of {n} points"

    def fit(self, points: Points) -> Fit:
        labels = (points.coords[:, 0] > np.median(points.coords[:, 0])).astype(np.int64)
        return Fit(labels, np.ones(len(points), np.float32), {"halves": 2})

    def recluster(self, points: Points, full: Fit) -> np.ndarray:
        return self.fit(points).labels

    def warnings(self, fit: Fit) -> list[str]:
        return ["halves are a toy"]


def test_a_new_algorithm_is_its_declaration_and_its_entry(monkeypatch):
    halves = Clusterer(
        name="halves", title="Halves", label="Halves: a toy", setup=lambda *_: HalvesFitter(), settings=()
    )
    monkeypatch.setitem(CLUSTERERS, "halves", halves)
    params = ClusterParams(algorithm="halves")  # the config reads the registry
    points, family, _ = nested_blobs()
    ctx = detached("cluster")
    result = cluster_stage.cluster(projection_of(points), params, ctx)
    assert result.algorithm == "halves" and result.n_clusters == 2
    assert result.resolved == {"split": "median", "n_texts": len(points), "halves": 2}
    assert result.readouts["stability"] > 0.9 and ctx.warnings == ["cluster: halves are a toy"]
