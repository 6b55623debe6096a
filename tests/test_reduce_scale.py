"""reduce past reduce.fit_sample: UMAP fitted on a seeded sample, the other texts placed among it."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import ConfigError, PipelineConfig, ReduceParams
from pipeline.context import detached
from pipeline.stages import reduce as reduce_mod
from pipeline.stages.reduce import exact_knn, fit_rows, reduce
from pipeline.types import Embeddings


def blobs(n_per: int = 100, centers: int = 3, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centers, dim)) * 3
    points = np.concatenate([c + rng.standard_normal((n_per, dim)) * 0.3 for c in middle])
    return points.astype(np.float32), np.repeat(np.arange(centers), n_per)


@pytest.fixture(scope="module")
def sampled():
    points, truth = blobs()
    ctx = detached("reduce")
    projection = reduce(Embeddings(points, "test"), ReduceParams(fit_sample=100), ctx)
    return points, truth, projection, ctx


def test_every_text_gets_coordinates_and_lands_with_its_own_blob(sampled):
    points, truth, projection, _ = sampled
    assert projection.coords.shape == (300, 5) and projection.layout.shape == (300, 2)
    assert np.isfinite(projection.coords).all() and np.isfinite(projection.layout).all()
    fitted = fit_rows(300, ReduceParams(fit_sample=100))
    placed = np.setdiff1d(np.arange(300), fitted)
    for xy in (projection.coords, projection.layout):
        # the nearest fitted point of each placed point, in the reduced space, is from its blob
        gaps = np.linalg.norm(xy[placed][:, None] - xy[fitted][None], axis=2)
        agree = truth[fitted][gaps.argmin(axis=1)] == truth[placed]
        assert agree.mean() >= 0.98
        # and each blob's placed points sit nearer its own centre than any other blob's
        centres = np.stack([xy[fitted][truth[fitted] == b].mean(axis=0) for b in range(3)])
        nearest = np.linalg.norm(xy[placed][:, None] - centres[None], axis=2).argmin(axis=1)
        assert (nearest == truth[placed]).mean() >= 0.98


def test_the_user_sees_that_umap_was_fitted_on_a_sample(sampled):
    *_, projection, ctx = sampled
    assert projection.fitted_on == 100
    assert any("fitted on a random sample of 100 of the 300" in w for w in ctx.warnings)
    assert any("reduce.fit_sample=0" in w for w in ctx.warnings)


def test_the_sample_and_the_result_follow_the_seed(sampled):
    points, _, projection, _ = sampled
    again = reduce(Embeddings(points, "test"), ReduceParams(fit_sample=100))
    np.testing.assert_array_equal(again.coords, projection.coords)
    np.testing.assert_array_equal(again.layout, projection.layout)
    one, other = (fit_rows(300, ReduceParams(fit_sample=100, seed=s)) for s in (1, 2))
    assert len(one) == 100 and len(np.unique(one)) == 100 and not np.array_equal(one, other)


def test_fit_sample_zero_or_a_small_corpus_fits_on_every_point():
    points, _ = blobs(n_per=40)
    assert fit_rows(120, ReduceParams(fit_sample=0)) is None
    assert fit_rows(120, ReduceParams(fit_sample=120)) is None
    ctx = detached("reduce")
    full = reduce(Embeddings(points, "test"), ReduceParams(fit_sample=0, n_components=2), ctx)
    default = reduce(Embeddings(points, "test"), ReduceParams(n_components=2))
    assert full.fitted_on == 0 and not ctx.warnings
    np.testing.assert_array_equal(full.coords, default.coords)


def test_config_checks_fit_sample():
    assert ReduceParams().fit_sample == 50_000
    config = PipelineConfig().with_overrides(["reduce.fit_sample=2000"])
    assert config.reduce.fit_sample == 2000
    assert PipelineConfig().with_overrides(["reduce.fit_sample=0"]).reduce.fit_sample == 0
    for bad in (-1, 50):
        with pytest.raises(ConfigError, match="reduce.fit_sample"):
            ReduceParams(fit_sample=bad)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_fast_top_k_finds_the_same_neighbours_as_a_full_sort(monkeypatch, metric):
    points, _ = blobs(n_per=60, dim=6, seed=3)
    expected = exact_knn(points, 7, metric)
    monkeypatch.setattr(reduce_mod, "TOP_K_PROBE", 8)  # take the floor-and-filter path
    indices, distances = exact_knn(points, 7, metric, block=50)
    assert (indices[:, 0] == np.arange(len(points))).all()
    np.testing.assert_allclose(distances, expected[1], atol=1e-5)
    assert (indices == expected[0]).mean() > 0.99  # only exact ties may swap
