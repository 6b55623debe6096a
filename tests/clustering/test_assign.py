"""Giving points a cluster from their neighbours: outliers, HDBSCAN's noise, points outside a sample."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_mutual_info_score

from pipeline.clustering import assign
from tests.clustering.synthetic import hdbscan, nested_blobs


def test_outliers_join_the_cluster_whose_members_are_nearest_not_the_nearest_centre():
    rng = np.random.default_rng(4)
    long = np.column_stack([np.linspace(0, 30, 120), rng.normal(0, 0.2, 120)])  # a long thin cluster
    compact = rng.normal(0, 0.2, (60, 2)) + [37.0, 4.0]
    tip = np.array([[31.5, 0.0]])  # past the long cluster's end: its centre (15, 0) is further away
    points = np.concatenate([long, compact, tip]).astype(np.float32)
    raw = np.array([0] * 120 + [1] * 60 + [-1])
    assert np.linalg.norm(tip - compact.mean(0)) < np.linalg.norm(tip - long.mean(0))
    assert assign.assign_by_neighbours(points, raw)[-1] == 0


def test_assigning_outliers_does_not_lower_agreement_with_the_truth():
    points, family, blob = nested_blobs()
    rng = np.random.default_rng(0)
    # strays well outside a blob: HDBSCAN leaves them out; the truth is their nearest blob
    picks = rng.choice(len(points), 12, replace=False)
    centres = np.stack([points[blob == b].mean(0) for b in blob[picks]])
    away = rng.standard_normal((12, 5))
    strays = centres + 8.0 * away / np.linalg.norm(away, axis=1, keepdims=True)
    nearest = np.argmin(((strays[:, None] - points[None]) ** 2).sum(2), axis=1)
    points = np.concatenate([points, strays.astype(np.float32)])
    truth = np.concatenate([blob, blob[nearest]])
    raw = hdbscan(points, epsilon=0.0)  # HDBSCAN's own selection: the strays are its noise
    assigned = hdbscan(points, epsilon=0.0, assign_outliers=True)
    assert (raw.labels == -1).any()
    np.testing.assert_array_equal(assigned.raw_labels, raw.raw_labels)
    kept = raw.labels >= 0
    np.testing.assert_array_equal(assigned.labels[kept], raw.labels[kept])
    assert adjusted_mutual_info_score(truth, assigned.labels) >= adjusted_mutual_info_score(truth, raw.labels)


def test_outliers_near_a_cluster_join_it_far_or_undecided_ones_stay_unclustered():
    rng = np.random.default_rng(8)
    left = rng.normal(0, 0.3, (200, 2))
    right = rng.normal(0, 0.3, (200, 2)) + [10.0, 0.0]
    near = np.array([[1.2, 0.0], [8.8, 0.0]])  # just outside each blob
    far = np.array([[5.0, 40.0]])  # far from both
    between = np.array([[5.0, 0.0]])  # halfway: the vote is split
    points = np.concatenate([left, right, near, far, between])
    raw = np.array([0] * 200 + [1] * 200 + [-1] * 4)
    out = assign.assign_confident(points, raw)
    assert out[400] == 0 and out[401] == 1
    assert out[402] == -1 and out[403] == -1
    np.testing.assert_array_equal(out[:400], raw[:400])
    assert (assign.assign_by_neighbours(points, raw) >= 0).all()  # the unconditional vote (about K)


def test_points_outside_a_sample_take_their_neighbours_cluster_and_far_ones_stay_noise():
    rng = np.random.default_rng(5)
    sample = np.concatenate([rng.normal(0, 0.3, (100, 2)), rng.normal(0, 0.3, (100, 2)) + [10.0, 0.0]])
    labels = np.repeat([0, 1], 100)
    others = np.array([[0.2, 0.1], [9.8, -0.1], [5.0, 60.0]])
    placed, strength = assign.extend_labels(sample, labels, np.ones(200), others, block=2)
    np.testing.assert_array_equal(placed, [0, 1, -1])
    assert strength[0] > 0.9 and strength[2] == 0.0
    assert (
        assign.far_from(np.concatenate([sample, others]), np.concatenate([labels, [-1] * 3]))
        == np.array([False] * 202 + [True])
    ).all()


def test_joining_pieces_in_one_query_gives_what_the_vote_and_the_reach_give_apart():
    rng = np.random.default_rng(11)
    points = np.concatenate(
        [rng.normal(0, 0.4, (300, 3)), rng.normal(0, 0.4, (300, 3)) + 6, rng.uniform(-20, 26, (40, 3))]
    )
    pieces = np.concatenate([np.repeat([0, 1], 300), np.full(40, -1)])
    pieces[rng.choice(600, 60, replace=False)] = -1  # noise inside the blobs too
    cases = [pieces, np.zeros(640, dtype=int), np.full(640, -1), np.where(np.arange(640) < 5, 0, -1)]
    for labels in cases:  # everything a piece, nothing a piece, fewer members than neighbours asked
        full, share, far = assign.join_pieces(points, labels, seed=3)
        apart, apart_share = assign.assign_by_neighbours(points, labels, with_share=True)
        np.testing.assert_array_equal(full, apart)
        np.testing.assert_allclose(share, apart_share)
        np.testing.assert_array_equal(far, assign.far_from(points, labels, seed=3))
    assert assign.join_pieces(points, pieces)[2][-40:].sum() > 0  # strays far from both blobs
