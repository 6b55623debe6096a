"""The per-run readouts: count, noise, largest share, separation, stability."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import silhouette_score

from pipeline import ClusterParams
from pipeline.clustering import readouts
from pipeline.stages.cluster import cluster
from tests.clustering.synthetic import hdbscan, nested_blobs, projection_of
from tests.conftest import config_for, run_collect


def test_readouts_report_count_noise_separation_and_stability():
    points, _, _ = nested_blobs()
    result = hdbscan(points)
    measured = result.readouts
    assert measured["clusters"] == 9 and measured["noise_share"] == 0.0
    assert measured["separation"] > 0.6  # tight blobs far apart
    assert measured["stability"] > 0.95  # leaving out a fifth changes nothing
    assert "silhouette" in measured["separation_measure"] and "ARI" in measured["stability_measure"]


def test_structureless_data_reads_as_less_stable_and_less_separated():
    rng = np.random.default_rng(6)
    points = rng.uniform(-1, 1, (300, 5)).astype(np.float32)
    result = cluster(projection_of(points), ClusterParams(min_cluster_size=10, min_samples=3))
    blobs = hdbscan(nested_blobs()[0])
    if result.readouts["separation"] is not None:
        assert result.readouts["separation"] < blobs.readouts["separation"]
    assert result.readouts["stability"] < blobs.readouts["stability"]


def test_large_inputs_get_stability_from_a_bounded_subsample(monkeypatch):
    points, _, _ = nested_blobs(per=60)
    monkeypatch.setattr(readouts, "STABILITY_SAMPLE", 200)  # 540 points: like a million against 50,000
    seen: list[int] = []
    real = readouts.stability

    def spy(labels, recluster, seed=0, **kw):
        def wrapped(rows):
            seen.append(len(rows))
            return recluster(rows)

        return real(labels, wrapped, seed, **kw)

    monkeypatch.setattr(readouts, "stability", spy)
    result = hdbscan(points, min_cluster_size=20)
    assert seen == [200, 200]
    assert result.readouts["stability"] > 0.9  # sizes scaled to the subsample: the same 9 blobs
    assert "200-text subsamples" in result.readouts["stability_measure"]


def test_a_recluster_that_fails_leaves_stability_out_not_the_run():
    labels = np.repeat([0, 1], 20)

    def broken(rows):
        raise ValueError("too few points")

    assert readouts.stability(labels, broken) is None
    assert readouts.readouts(np.zeros((40, 2)), labels, np.ones(40), recluster=broken)["stability"] is None


def test_separation_is_the_silhouette_and_is_sampled_for_large_inputs():
    points, _, blob = nested_blobs()
    assert readouts.separation(points, blob) == pytest.approx(silhouette_score(points, blob), abs=1e-5)
    rng = np.random.default_rng(7)
    many = rng.standard_normal((12_000, 2))
    labels = (many[:, 0] > 0).astype(int)
    assert readouts.separation(many, labels) == pytest.approx(readouts.separation(many, labels))  # seeded
    assert readouts.separation(many, np.zeros(12_000, int)) is None  # one cluster: nothing to separate


def test_the_manifest_and_result_carry_the_readouts(topic_table, cache_dir, fake_embedder):
    result, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    manifest = json.loads(json.dumps(result.manifest()))
    assert manifest["quality"]["clusters"] == result.n_clusters
    assert manifest["quality"]["noise_share"] == round(result.noise_share, 4)
    assert set(manifest["quality"]) >= {"separation", "stability"}
    assert result.readouts == result.clustering.readouts
    assert manifest["resolved"]["epsilon"] >= 0


def test_a_level_whose_cluster_the_sample_missed_still_gets_a_silhouette():
    """The automatic level scores each level on a sample of points; a cluster of the level with no
    point in the sample must be left out of "the nearest other cluster", not turn every score
    into NaN (a NaN level was never chosen: large corpora, with more pieces than the sample
    covers, lost their finer levels to it)."""
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = np.vstack([c + rng.normal(scale=0.5, size=(40, 2)) for c in centres])
    pieces = np.repeat([0, 1, 2], 40)
    piece_ids = np.array([0, 1, 2, 3])  # piece 3: in the tree, with no point in this sample
    scores = readouts.LevelSilhouettes(points, pieces, piece_ids)
    with np.errstate(all="raise"):  # no 0/0 anywhere
        alone = scores(np.array([0, 1, 2, 3]))  # piece 3 its own cluster at this level
    assert alone is not None and np.isfinite(alone)
    assert alone == pytest.approx(silhouette_score(points, pieces), abs=1e-5)
    assert scores(np.array([0, 1, 1, 3])) < alone  # joining two blobs still scores lower
