"""HDBSCAN through the cluster stage: the automatic level (never one blob), "about K", the cached
tree, and the automatic sizes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline import ClusterParams, StageError
from pipeline.cache import Cache
from pipeline.clustering import hdbscan as hd
from pipeline.clustering import readouts
from pipeline.context import StageContext, detached
from pipeline.stages.cluster import cluster
from tests.clustering.synthetic import clumpy_topics, hdbscan, nested_blobs, projection_of
from tests.conftest import config_for, run_collect

# --- never one blob -----------------------------------------------------------------------------


def test_topics_closer_than_a_fixed_distance_are_not_one_blob():
    points, group = clumpy_topics()
    projection = projection_of(points, "umap")
    fixed = cluster(projection, ClusterParams(epsilon=0.4), vectors=points)  # the former default
    assert fixed.readouts["largest_share"] > 0.8  # the blob, reproduced
    result = cluster(projection, ClusterParams(), vectors=points)
    k = 8
    assert result.readouts["largest_share"] <= 0.4
    assert k / 2 <= result.n_clusters <= 3 * k
    assert result.readouts["noise_share"] <= 0.15
    assert adjusted_rand_score(group, result.labels) > 0.8
    assert result.resolved["selection"] == "auto_level" and result.resolved["pieces"] >= result.n_clusters


def test_subsamples_of_a_large_set_keep_the_automatic_level(monkeypatch):
    """Stability subsamples (and cluster.fit_sample's sample) of a large set scale the sizes; they
    must still cluster the way the full run does, or stability reads as near 0."""
    points, _ = clumpy_topics()
    monkeypatch.setattr(readouts, "STABILITY_SAMPLE", 400)  # as past 18,750 texts: scaled sizes
    result = cluster(projection_of(points, "umap"), ClusterParams(), vectors=points)
    assert "400-text subsamples" in result.readouts["stability_measure"]
    assert result.readouts["stability"] > 0.7


def test_the_automatic_level_uses_no_absolute_distance():
    points = np.zeros((20, 5), dtype=np.float32)
    for method in ("pca", "none", "umap"):  # the pieces are HDBSCAN's finest selection
        assert hd.auto_epsilon(projection_of(points, method)) == 0.0
    with pytest.raises(Exception, match="cluster.epsilon"):
        ClusterParams(epsilon=-0.5)


# --- the "about K" control ----------------------------------------------------------------------


@pytest.mark.parametrize(("k", "truth"), [(3, "family"), (9, "blob")])
def test_about_k_joins_or_splits_hdbscan_clusters_to_the_number_asked(k, truth):
    points, family, blob = nested_blobs()
    result = hdbscan(points, n_clusters=k)
    assert result.n_clusters == k and result.algorithm == "hdbscan"
    expected = {"family": family, "blob": blob}[truth]
    assert adjusted_rand_score(expected, result.labels) == pytest.approx(1.0)
    assert result.resolved["n_clusters"] == k and result.resolved["pieces"] >= k


def test_about_k_keeps_noise_visible_and_hdbscan_alone_finds_its_own_number():
    points, family, _ = nested_blobs()
    far = np.array([[500.0] * 5, [-500.0] * 5], dtype=np.float32)
    points = np.concatenate([points, far])
    alone = hdbscan(points)
    about = hdbscan(points, n_clusters=3)
    assert alone.n_clusters == 9  # the blobs are each clearly separated
    assert about.n_clusters == 3
    assert (about.raw_labels[-2:] == -1).all() and (about.labels[-2:] == -1).all()
    assigned = hdbscan(points, n_clusters=3, assign_outliers=True)
    assert (assigned.raw_labels[-2:] == -1).all()
    assert (assigned.labels[-2:] == -1).all()  # far from every cluster: never pushed into one


def test_about_k_says_when_hdbscan_cannot_find_that_many():
    points, _, _ = nested_blobs(per=12)
    warnings: list[str] = []
    ctx = detached("cluster")
    ctx.warn = warnings.append  # type: ignore[method-assign]
    result = cluster(projection_of(points), ClusterParams(min_cluster_size=5, n_clusters=60), ctx)
    assert result.n_clusters < 60
    assert warnings and "asked for about 60 clusters" in warnings[-1]


def test_about_k_beyond_the_number_of_texts_is_an_error_with_a_fix():
    points, _, _ = nested_blobs(per=3)
    with pytest.raises(StageError) as info:
        hdbscan(points, min_cluster_size=2, n_clusters=100)
    assert "set cluster.n_clusters to at most 27 (or 0 to let HDBSCAN decide)" in info.value.user_message()


def test_about_k_through_the_pipeline(topic_table, cache_dir, fake_embedder):
    result, _ = run_collect(topic_table, config_for(**{"cluster.n_clusters": 2}), cache_dir, fake_embedder)
    assert result.n_clusters == 2
    assert result.manifest()["resolved"]["n_clusters"] == 2


# --- the cached tree ----------------------------------------------------------------------------


def test_a_new_min_cluster_size_reselects_from_the_cached_tree(monkeypatch, tmp_path):
    points, _, blob = nested_blobs()
    built: list[int] = []
    real = hd.HdbscanTree._build

    def counting(tree):
        built.append(len(tree.coords))
        return real(tree)

    monkeypatch.setattr(hd.HdbscanTree, "_build", counting)
    cache = Cache(tmp_path)
    params = ClusterParams(min_cluster_size=10, min_samples=5, epsilon=0.0)
    first = cluster(projection_of(points), params, StageContext("cluster", cache=cache))
    trees = len(built)  # the full run's tree and one per stability subsample
    again = cluster(
        projection_of(points),
        ClusterParams(min_cluster_size=60, min_samples=5, epsilon=0.0),
        StageContext("cluster", cache=cache),
    )
    assert len(built) == trees  # every tree came from the cache: only the selection ran
    assert first.n_clusters == 9 and again.n_clusters == 3
    assert adjusted_rand_score(blob, first.labels) == pytest.approx(1.0)


def test_the_tree_selects_what_hdbscan_itself_selects():
    points, _, _ = nested_blobs()
    tree = hd.HdbscanTree(points, 5)
    # the same size again, at other epsilons and methods, selects from the tree it condensed last
    settings = [(10, "eom", 0.0), (60, "eom", 0.0), (10, "leaf", 0.0), (10, "eom", 30.0), (10, "eom", 0.0)]
    for size, method, epsilon in settings + [(10, "leaf", 30.0), (60, "eom", 30.0), (60, "eom", 0.0)]:
        own, strength = hd._fit(tree.coords, size, 5, method, epsilon)
        labels, probabilities = tree.fit(size, method, epsilon)
        np.testing.assert_array_equal(labels, own)
        np.testing.assert_allclose(probabilities, strength, atol=1e-6)


# --- the automatic sizes ------------------------------------------------------------------------


def test_automatic_min_samples_is_half_the_size_and_capped():
    assert hd.auto_min_samples(5) == 2 and hd.auto_min_samples(17) == 8
    assert hd.auto_min_samples(167) == hd.MAX_AUTO_MIN_SAMPLES == 15
    assert hd.auto_min_samples(1) == 1


def test_a_larger_min_cluster_size_keeps_the_automatic_min_samples_and_so_the_tree():
    """Moving the size slider up from the automatic size must not change min_samples: the tree
    (keyed by min_samples) is then reused instead of rebuilt on every other step."""
    n = 10_000
    auto = hd.auto_min_cluster_size(n)
    projection = SimpleNamespace(method="umap")
    resolved = [hd.resolve(ClusterParams(min_cluster_size=m), projection, n) for m in (0, auto + 1, 4 * auto)]
    assert {s.min_samples for s in resolved} == {hd.auto_min_samples(auto)}
    smaller = hd.resolve(ClusterParams(min_cluster_size=6), projection, n)
    assert smaller.min_samples == 3  # below the automatic size: half of it, as before
    given = hd.resolve(ClusterParams(min_cluster_size=4 * auto, min_samples=30), projection, n)
    assert given.min_samples == 30
