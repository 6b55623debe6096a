"""k-means through the cluster stage: the number asked for, weighted, with readouts."""

from __future__ import annotations

import numpy as np

from pipeline import ClusterParams
from pipeline.stages.cluster import cluster
from tests.clustering.synthetic import nested_blobs, projection_of


def test_kmeans_has_readouts_too():
    points, family, _ = nested_blobs()
    result = cluster(projection_of(points), ClusterParams(algorithm="kmeans", n_clusters=3))
    assert result.readouts["clusters"] == 3 and result.readouts["stability"] > 0.95
    assert result.resolved == {"n_clusters": 3, "n_texts": len(points)}


def test_kmeans_ids_follow_the_rows_each_text_stands_for():
    rng = np.random.default_rng(0)
    few = rng.normal(0, 0.1, (10, 5))  # 10 texts, each on 10 rows
    many = rng.normal(0, 0.1, (30, 5)) + 20  # 30 texts, one row each
    points = np.concatenate([few, many]).astype(np.float32)
    weights = np.array([10] * 10 + [1] * 30)
    result = cluster(projection_of(points), ClusterParams(algorithm="kmeans", n_clusters=2), weights=weights)
    assert (result.labels[:10] == 0).all() and (result.labels[10:] == 1).all()  # 100 rows against 30
    assert result.readouts["largest_share"] == round(100 / 130, 4)


def test_kmeans_fits_every_point_whatever_cluster_fit_sample_says():
    points, _, blob = nested_blobs(per=150)  # 1,350 points
    result = cluster(projection_of(points), ClusterParams(algorithm="kmeans", n_clusters=9, fit_sample=1000))
    assert "fit_sample" not in result.resolved and (result.labels >= 0).all()
