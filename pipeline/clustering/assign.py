"""Giving points a cluster from their neighbours: outliers near a cluster (``assign_confident``),
HDBSCAN's noise before its pieces are joined (``assign_by_neighbours``), far outliers
(``far_from``), and the points outside a fit sample (``extend_labels``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

ASSIGN_NEIGHBOURS = 15  # clustered neighbours that vote on an outlier's cluster
ASSIGN_MIN_SHARE = 0.8  # share of the (closeness-weighted) vote the winning cluster needs
ASSIGN_REACH = 3.0  # x the 99th percentile of the gaps between clustered neighbours
REACH_SAMPLE = 20_000  # clustered points the gap percentile is measured on, at most


def assign_by_neighbours(
    coords: np.ndarray, labels: np.ndarray, k: int = 15, with_share: bool = False
) -> Any:
    """Every -1 point gets the cluster most of its ``k`` nearest clustered points belong to
    (weighted by closeness), so a point at the tip of a long cluster joins that cluster, not a
    compact one whose centre happens to be nearer. ``with_share``: also each point's share of
    the vote (1 for points that were clustered already)."""
    out = np.asarray(labels, dtype=np.int64).copy()
    clustered = out >= 0
    share = np.ones(len(out), dtype=np.float64)
    if clustered.all() or not clustered.any():
        return (out, share) if with_share else out
    from sklearn.neighbors import KDTree

    members = np.asarray(coords, dtype=np.float64)[clustered]
    dist, index = KDTree(members).query(
        np.asarray(coords, dtype=np.float64)[~clustered], k=int(min(k, len(members)))
    )
    winner, votes = _vote(out[clustered][index], dist)
    out[~clustered] = winner
    share[~clustered] = votes
    return (out, share) if with_share else out


def join_pieces(
    coords: np.ndarray, pieces: np.ndarray, k: int = 15, seed: int = 0, reach: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``assign_by_neighbours(coords, pieces, k, with_share=True)`` and ``far_from(coords,
    pieces, seed=seed)`` at once: (labels, share of the vote, far), the same values from one
    neighbour tree and one query (the nearest of the ``k`` neighbours is the one ``far_from``
    measures). ``hdbscan.auto_level`` needs both on every run; apart, they built the tree twice
    (1.3 s of a 100,000-text slider step)."""
    out = np.asarray(pieces, dtype=np.int64).copy()
    clustered = out >= 0
    share = np.ones(len(out), dtype=np.float64)
    far = np.zeros(len(out), dtype=bool)
    if clustered.all() or not clustered.any():
        return out, share, far if clustered.any() else ~far
    from scipy.spatial import cKDTree  # built and queried in half the time of sklearn's KDTree here

    members = np.asarray(coords, dtype=np.float64)[clustered]
    # split at the sliding midpoint, nodes not shrunk to their points: built as fast and queried in
    # half the time on UMAP's coordinates (14,600 queries, 15 neighbours, among 85,000 points:
    # 0.14 -> 0.07 s); the same distances, ties between equally near points may come out apart
    tree = cKDTree(members, balanced_tree=False, compact_nodes=False)
    loose = np.asarray(coords, dtype=np.float64)[~clustered]
    dist, index = tree.query(loose, k=int(min(k, len(members))), workers=-1)
    dist, index = dist.reshape(len(loose), -1), index.reshape(len(loose), -1)  # k=1 gives 1-D
    out[~clustered], share[~clustered] = _vote(out[clustered][index], dist)
    reach = ASSIGN_REACH if reach is None else reach
    far[np.flatnonzero(~clustered)] = dist[:, 0] > reach * _member_gap(tree, members, seed)
    return out, share, far


def far_from(coords: np.ndarray, labels: np.ndarray, reach: float | None = None, seed: int = 0) -> np.ndarray:
    """Which -1 points lie further from every clustered point than ``reach`` x the 99th
    percentile of the gaps between clustered neighbours (``ASSIGN_REACH`` by default): outliers,
    not texts between clusters."""
    return join_pieces(coords, labels, k=1, seed=seed, reach=reach)[2]


def extend_labels(
    sample_coords: np.ndarray,
    sample_labels: np.ndarray,
    sample_probabilities: np.ndarray,
    coords: np.ndarray,
    k: int = 15,
    block: int = 50_000,
    progress: Callable[[float], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels for ``coords`` from a clustering of a sample of the same space, like HDBSCAN's own
    prediction: the closeness-weighted vote of the ``k`` nearest sample points, noise (-1) voting
    like a cluster, so a point in a sparse region stays unclustered; and a point further from the
    sample than ``ASSIGN_REACH`` x its gaps (see ``assign_confident``) is noise too. The probability
    is the winning share of the vote times the voters' mean membership probability. In blocks of
    ``block`` points (``progress(fraction)`` after each)."""
    from sklearn.neighbors import KDTree

    sample_coords = np.asarray(sample_coords, dtype=np.float64)
    sample_labels = np.asarray(sample_labels, dtype=np.int64)
    probabilities = np.asarray(sample_probabilities, dtype=np.float64)
    clustered = sample_labels >= 0
    if not clustered.any():  # nothing to join: all noise, as in the sample
        return np.full(len(coords), -1, dtype=np.int64), np.zeros(len(coords), dtype=np.float32)
    tree = KDTree(sample_coords)
    limit = ASSIGN_REACH * _member_gap(KDTree(sample_coords[clustered]), sample_coords[clustered], 0)
    k = int(min(k, len(sample_coords)))
    labels = np.empty(len(coords), dtype=np.int64)
    strength = np.empty(len(coords), dtype=np.float32)
    for start in range(0, len(coords), block):
        stop = min(start + block, len(coords))
        distance, neighbour = tree.query(np.asarray(coords[start:stop], dtype=np.float64), k=k)
        voters = sample_labels[neighbour]
        winner, share = _vote(voters, distance)
        winner = np.where(distance[:, 0] <= limit, winner, -1)
        agree = voters == winner[:, None]
        mean_probability = (probabilities[neighbour] * agree).sum(axis=1) / np.maximum(agree.sum(axis=1), 1)
        labels[start:stop] = winner
        strength[start:stop] = np.where(winner >= 0, share * mean_probability, 0.0)
        if progress is not None:
            progress(stop / len(coords))
    return labels, strength


def assign_confident(
    coords: np.ndarray,
    labels: np.ndarray,
    k: int = ASSIGN_NEIGHBOURS,
    min_share: float = ASSIGN_MIN_SHARE,
    reach: float = ASSIGN_REACH,
    seed: int = 0,
) -> np.ndarray:
    """-1 points that clearly belong to a cluster get it; the others stay -1.

    A point joins the cluster that wins the closeness-weighted vote of its ``k`` nearest
    clustered points when (1) that cluster holds at least ``min_share`` of the vote and (2) its
    nearest clustered point is no further than ``reach`` x the 99th percentile of the distance
    from a clustered point to its nearest clustered neighbour (measured on at most
    ``REACH_SAMPLE`` of them). A point far from every cluster, or between two, stays
    unclustered: assigning those lowered agreement with the true groups on the benchmark sets
    (``pipeline.bench_quality --assign-outliers``), keeping them never did."""
    out = np.asarray(labels, dtype=np.int64).copy()
    clustered = out >= 0
    if clustered.all() or not clustered.any():
        return out
    from sklearn.neighbors import KDTree

    members = np.asarray(coords, dtype=np.float64)[clustered]
    tree = KDTree(members)
    k = int(min(k, len(members)))
    dist, index = tree.query(np.asarray(coords, dtype=np.float64)[~clustered], k=k)
    winner, share = _vote(out[clustered][index], dist)
    limit = reach * _member_gap(tree, members, seed)
    ok = (share >= min_share) & (dist[:, 0] <= limit)
    outliers = np.flatnonzero(~clustered)
    out[outliers[ok]] = winner[ok]
    return out


def _vote(
    neighbour_labels: np.ndarray, dist: np.ndarray, block: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the label with the largest sum of 1/distance among the neighbours (ties: the
    smaller label) and its share of the total."""
    weights = 1.0 / np.maximum(dist, 1e-12)
    winners = np.empty(len(weights), dtype=np.int64)
    shares = np.empty(len(weights))
    for start in range(0, len(weights), block):
        lab, w = neighbour_labels[start : start + block], weights[start : start + block]
        # score of each neighbour's label = the weight of all neighbours with that label
        score = ((lab[:, :, None] == lab[:, None, :]) * w[:, None, :]).sum(axis=2)
        best = score.max(axis=1)
        winners[start : start + block] = np.where(score >= best[:, None], lab, np.iinfo(np.int64).max).min(
            axis=1
        )
        shares[start : start + block] = best / w.sum(axis=1)
    return winners, shares


def _member_gap(tree, members: np.ndarray, seed: int) -> float:
    """99th percentile of the distance from a clustered point to its nearest clustered neighbour."""
    if len(members) < 2:
        return np.inf
    rows = np.arange(len(members))
    if len(rows) > REACH_SAMPLE:
        rows = np.sort(np.random.default_rng(seed).choice(rows, REACH_SAMPLE, replace=False))
    dist, _ = tree.query(members[rows], k=2)
    return float(np.percentile(dist[:, 1], 99))
