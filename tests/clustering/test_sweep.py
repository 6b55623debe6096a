"""Suggest clustering settings: the sweep, its recommendation, and its sample on large sets."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import ClusterParams, plots
from pipeline.clustering import hdbscan as hd
from pipeline.clustering import sweep
from pipeline.context import detached
from pipeline.stages.cluster import cluster
from tests.clustering.synthetic import clumpy_topics, nested_blobs, projection_of
from tests.conftest import config_for


def test_a_blob_is_reported_and_never_recommended_when_a_setting_avoids_it():
    points, _ = clumpy_topics()
    warnings: list[str] = []
    ctx = detached("cluster")
    ctx.warn = warnings.append  # type: ignore[method-assign]
    cluster(projection_of(points, "umap"), ClusterParams(epsilon=0.4), ctx, vectors=points)
    assert any("one cluster holds 88% of the texts" in w for w in warnings), warnings
    # one family of six close clumps holds 60% of the texts, two small ones lie far away: a large
    # min_cluster_size keeps the family whole, and that blob is the best separated setting
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal(5) + rng.standard_normal((50, 5)) * 0.1 for _ in range(6)]
    parts += [np.full(5, side * 30.0) + rng.standard_normal((100, 5)) * 0.1 for side in (1, -1)]
    points = np.concatenate(parts).astype(np.float32)
    suggestion = sweep.suggest_settings(
        projection_of(points), epsilon=0.0, min_cluster_sizes=[10, 60], vectors=points
    )
    table = suggestion.table.set_index("min_cluster_size")
    assert table.loc[60, "largest_share"] == pytest.approx(0.6) and table.loc[10, "largest_share"] <= 0.4
    assert table.loc[60, "score"] > table.loc[10, "score"]
    assert table["recommended"].idxmax() == 10 and suggestion.settings["cluster.min_cluster_size"] == 10


def test_suggest_settings_sweeps_and_recommends_a_point_that_can_be_applied():
    points, _, blob = nested_blobs()
    suggestion = sweep.suggest_settings(projection_of(points))
    table = suggestion.table
    assert list(table.columns) == [
        "min_cluster_size",
        "min_samples",
        "clusters",
        "noise_share",
        "largest_share",
        "separation",
        "stability",
        "score",
        "recommended",
    ]
    assert len(table) >= 4 and table["recommended"].sum() == 1
    best = table[table["recommended"]].iloc[0]
    assert best["clusters"] == 9
    config = config_for().with_values(suggestion.settings)
    assert config.cluster.min_cluster_size == best["min_cluster_size"]
    assert "9 clusters" in suggestion.reason
    assert suggestion.algorithm == "hdbscan"  # the settings are HDBSCAN's
    figure = plots.sweep_figure(table)
    assert [t.name for t in figure.data] == ["clusters", "noise share", "stability", "separation"]


def test_suggest_settings_on_a_large_set_sweeps_a_sample_but_speaks_in_full_sizes(monkeypatch):
    points, _, _ = nested_blobs(per=120)  # 1,080 points; the sweep sees 360 of them
    monkeypatch.setattr(sweep, "SUGGEST_SAMPLE", 360)
    built, real = [], hd.HdbscanTree

    def recording(coords, min_samples):
        built.append((len(coords), min_samples))
        return real(coords, min_samples)

    monkeypatch.setattr(hd, "HdbscanTree", recording)
    suggestion = sweep.suggest_settings(projection_of(points), min_cluster_sizes=[30, 60], min_samples=[15])
    assert built[0] == (360, 5)  # the sample, with min_samples scaled to it
    table = suggestion.table
    assert table["min_cluster_size"].tolist() == [30, 60]  # the sizes the user would set
    assert (table["clusters"] == 9).all()  # 30 and 60 of 1,080 = 10 and 20 of the 360 sampled
    assert suggestion.settings["cluster.min_samples"] == 15


def test_suggest_settings_sweeps_min_samples_when_asked_and_matches_the_stage():
    points, _, _ = nested_blobs()
    suggestion = sweep.suggest_settings(projection_of(points), min_cluster_sizes=[5, 20], min_samples=[2, 8])
    table = suggestion.table
    assert sorted(zip(table["min_cluster_size"], table["min_samples"], strict=True)) == [
        (5, 2),
        (5, 8),
        (20, 2),
        (20, 8),
    ]
    row = suggestion.table.iloc[0]
    stage = cluster(
        projection_of(points),
        ClusterParams(min_cluster_size=int(row.min_cluster_size), min_samples=int(row.min_samples)),
    )
    assert stage.n_clusters == row.clusters
