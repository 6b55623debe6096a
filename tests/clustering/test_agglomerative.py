"""Agglomerative clustering (Ward): the number asked for, scikit-learn's result below its cap, a
seeded sample above it (memory stays bounded), and the app and the pipeline offering it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from pipeline import ClusterParams, ConfigError, StageError
from pipeline.clustering import CLUSTERERS, agglomerative
from pipeline.context import StageContext
from pipeline.stages.cluster import cluster
from tests.clustering.synthetic import nested_blobs, projection_of
from tests.conftest import config_for, run_collect


def agglomerative_of(points, k, ctx=None, **values):
    params = ClusterParams(algorithm="agglomerative", n_clusters=k, **values)
    return cluster(projection_of(points), params, ctx, vectors=points)


@pytest.mark.parametrize(("k", "truth"), [(3, "family"), (9, "blob")])
def test_agglomerative_gives_the_number_asked_for(k, truth):
    points, family, blob = nested_blobs()
    result = agglomerative_of(points, k)
    assert result.n_clusters == k and result.algorithm == "agglomerative"
    assert (result.labels >= 0).all() and (result.probabilities == 1).all()
    assert adjusted_rand_score({"family": family, "blob": blob}[truth], result.labels) == pytest.approx(1.0)
    assert result.resolved == {"n_clusters": k, "n_texts": len(points)}
    assert result.readouts["stability"] > 0.95 and result.readouts["separation"] > 0.5


def test_below_its_cap_it_is_scikit_learns_ward():
    points = np.random.default_rng(1).standard_normal((300, 5)).astype(np.float32)
    result = agglomerative_of(points, 7)
    reference = AgglomerativeClustering(n_clusters=7, linkage="ward").fit_predict(points.astype(np.float64))
    assert adjusted_rand_score(reference, result.labels) == 1.0


def test_past_its_cap_ward_runs_on_a_seeded_sample_and_the_rest_join_the_nearest_centre(monkeypatch):
    points, _, blob = nested_blobs(per=120)  # 1,080 points
    monkeypatch.setattr(agglomerative, "WARD_SAMPLE", 200)
    fitted: list[int] = []
    real = AgglomerativeClustering.fit_predict

    def counting(model, x, *args, **kwargs):
        fitted.append(len(x))
        return real(model, x, *args, **kwargs)

    monkeypatch.setattr(AgglomerativeClustering, "fit_predict", counting)
    messages: list[str] = []
    ctx = StageContext(stage="cluster", emit=lambda e: messages.append(e.message))
    result = agglomerative_of(points, 9, ctx)
    assert fitted and max(fitted) == 200  # the run and every stability re-clustering
    assert result.resolved["ward_sample"] == 200 and (result.labels >= 0).all()
    assert adjusted_rand_score(blob, result.labels) == pytest.approx(1.0)
    assert any("Ward on a seeded sample of 200" in m for m in messages)
    again = agglomerative_of(points, 9)
    np.testing.assert_array_equal(again.labels, result.labels)  # the sample is seeded


def test_nearest_centre_keeps_the_samples_labels_and_places_the_rest():
    sample = np.array([[0.0, 0.0], [0.2, 0.0], [10.0, 0.0], [10.4, 0.0]])
    coords = np.concatenate([sample, [[1.0, 1.0], [8.0, -1.0]]])
    labels = agglomerative.nearest_centre(sample, np.array([4, 4, 7, 7]), coords, np.arange(4))
    np.testing.assert_array_equal(labels, [4, 4, 7, 7, 4, 7])


def test_agglomerative_needs_a_number_of_clusters_it_can_make():
    with pytest.raises(ConfigError, match=">= 1 when cluster.algorithm = 'agglomerative'"):
        ClusterParams(algorithm="agglomerative")
    points, _, _ = nested_blobs(per=2)
    with pytest.raises(StageError) as info:
        agglomerative_of(points, 50)
    assert "set cluster.n_clusters to at most 18" in info.value.user_message()
    assert "(or 0" not in info.value.user_message()  # it cannot decide the number itself
    with pytest.raises(StageError, match="at most 5,000 clusters"):
        agglomerative.setup(ClusterParams(algorithm="agglomerative", n_clusters=5001), None, 10**6)


def test_agglomerative_through_the_pipeline(topic_table, cache_dir, fake_embedder):
    config = config_for(**{"cluster.algorithm": "agglomerative", "cluster.n_clusters": 4})
    result, _ = run_collect(topic_table, config, cache_dir, fake_embedder)
    assert result.n_clusters == 4 and result.clustering.algorithm == "agglomerative"
    manifest = result.manifest()
    assert manifest["resolved"]["n_clusters"] == 4 and manifest["quality"]["clusters"] == 4
    assert CLUSTERERS["agglomerative"].needs_k and not CLUSTERERS["agglomerative"].noise


def test_the_app_offers_it_with_its_number_and_without_hdbscans_controls(app):
    from tests.test_app import assert_healthy, metrics, run_clustering, topic_csv, upload

    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    method = at.radio(key="set:cluster.algorithm")
    assert list(method.options) == [c.label for c in CLUSTERERS.values()]
    assert "set:cluster.min_cluster_size" in [s.key for s in at.select_slider]
    app.calls.clear()
    method.set_value("agglomerative").run()
    at.slider(key="set:cluster.n_clusters").set_value(4).run()
    assert_healthy(at)
    assert app.calls == ["cluster", "label", "cluster", "label"]  # embeddings and reduction cached
    assert metrics(at)["Clusters"] == "4" and metrics(at)["Unclustered"] == "0%"
    shown = [s.key for s in [*at.slider, *at.select_slider, *at.number_input, *at.checkbox]]
    assert not {"set:cluster.min_cluster_size", "set:about_k", "set:cluster.assign_outliers"} & set(shown)
