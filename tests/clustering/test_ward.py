"""Ward merges of groups in the merge space, checked against plain references: scipy on single
points, and the merge space built in full (what the chunked group means avoid)."""

from __future__ import annotations

import numpy as np

from pipeline.clustering import ward
from pipeline.stages.cluster import _renumber


def merge_space(coords: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Reference: the merge space in full, each block scaled to the same total variance."""
    blocks = [np.asarray(b, dtype=np.float64) for b in (coords, vectors)]
    return np.hstack([b / np.sqrt(((b - b.mean(axis=0)) ** 2).sum(axis=1).mean()) for b in blocks])


def ward_merges(features: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> ward.Merges:
    """Reference: Ward merges of the groups of ``labels`` from their weighted means of ``features``."""
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    ids = np.unique(labels[labels >= 0])
    sizes = np.array([weights[labels == i].sum() for i in ids])
    means = np.stack([np.average(features[labels == i], axis=0, weights=weights[labels == i]) for i in ids])
    return ward.agglomerate(ids, sizes, means)


def test_ward_merges_match_scipy_on_single_points():
    from scipy.cluster.hierarchy import linkage

    rng = np.random.default_rng(1)
    points = rng.standard_normal((25, 3))
    merges = ward_merges(points, np.arange(25))
    reference = linkage(points, method="ward")
    # scipy's Ward distance is sqrt(2 x the increase in the within-group sum of squares)
    np.testing.assert_allclose(np.sqrt(2 * merges.steps[:, 2]), reference[:, 2], rtol=1e-8)
    np.testing.assert_array_equal(merges.steps[:, 3], reference[:, 3])


def test_merge_space_gives_both_blocks_the_same_weight():
    rng = np.random.default_rng(2)
    coords, vectors = rng.standard_normal((50, 5)) * 100, rng.standard_normal((50, 40)) * 0.01
    labels = np.arange(50)  # every point its own group: the group means are the rows
    _, _, means = ward.merge_space_means(coords, vectors, labels)
    assert means.shape == (50, 45)
    np.testing.assert_allclose(means, merge_space(coords, vectors))
    spread = [((b - b.mean(0)) ** 2).sum(1).mean() for b in (means[:, :5], means[:, 5:])]
    np.testing.assert_allclose(spread, [1.0, 1.0])


def test_ward_merges_from_group_means_in_chunks_equal_those_on_the_merge_space():
    rng = np.random.default_rng(3)
    coords, vectors = rng.standard_normal((300, 5)) * 4, rng.standard_normal((300, 24))
    labels = rng.integers(-1, 12, 300)
    weights = rng.integers(1, 4, 300)
    whole = ward_merges(merge_space(coords, vectors), labels, weights)
    chunked = ward.ward_merges_in_space(coords, vectors, labels, weights)
    np.testing.assert_array_equal(chunked.ids, whole.ids)
    np.testing.assert_allclose(chunked.sizes, whole.sizes)
    np.testing.assert_allclose(chunked.steps, whole.steps, rtol=1e-9, atol=1e-12)
    ids, _, means = ward.merge_space_means(coords, vectors, labels, weights, chunk=7)
    assert means.shape == (12, 29) and ids.tolist() == list(range(12))


def test_merging_to_a_number_of_groups_joins_the_closest_first():
    points = np.array([[0.0], [0.1], [5.0], [5.2], [20.0]])
    labels = np.array([10, 11, 12, 13, -1])
    merges = ward.ward_merges_in_space(points, None, labels)
    np.testing.assert_array_equal(ward.merge_to(labels, merges, 2), [10, 10, 12, 12, -1])
    np.testing.assert_array_equal(ward.merge_to(labels, merges, 4), labels)


def test_renumbering_and_relabelling_are_vectorised_and_keep_their_order():
    labels = np.array([5, 5, -1, 2, 2, 2, 9, 9, 9, -1])
    np.testing.assert_array_equal(_renumber(labels, np.ones(10)), [2, 2, -1, 0, 0, 0, 1, 1, 1, -1])
    # above: 2 and 9 tie in size, 2 comes first; below: weights count
    weights = np.array([3, 3, 1, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(_renumber(labels, weights), [0, 0, -1, 1, 1, 1, 2, 2, 2, -1])
    assert (_renumber(np.full(4, -1), np.ones(4)) == -1).all()
    np.testing.assert_array_equal(ward.relabel(labels, {5: 0, 2: 0}), [0, 0, -1, 0, 0, 0, -1, -1, -1, -1])
    big = np.random.default_rng(9).integers(-1, 300, 1_000_000)
    assert (_renumber(big, np.ones(len(big))) >= 0).sum() == (big >= 0).sum()
