"""Cluster quality without ground truth: readouts per run, a settings sweep, and the cluster tree.

* ``readouts``: cluster count, noise share, separation (silhouette on the reduced coordinates,
  on a sample) and stability (agreement of the clustering with itself when a share of the
  texts is left out). The cluster stage stores them on ``Clustering.readouts``.
* ``suggest_settings``: sweeps HDBSCAN's ``min_cluster_size`` and ``min_samples`` on a cached
  projection (one neighbour tree per ``min_samples``, every ``min_cluster_size`` applied to it)
  and recommends a point.
* ``cluster_tree``: Ward agglomeration of the clusters' centroids (reduced coordinates plus
  embeddings), as nodes a Plotly icicle, sunburst or dendrogram can draw, with ``cut(n)`` for a
  coarser level.

``ward_merges`` is the agglomeration both the tree and the cluster stage's "about K" control use.
Nothing here imports a stage at module level: the cluster stage imports this module.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SEPARATION_SAMPLE = 5_000  # clustered points the silhouette is computed on, at most
STABILITY_RUNS = 2  # re-clusterings of random subsamples
STABILITY_FRACTION = 0.8  # share of the distinct texts each subsample keeps
SUGGEST_SAMPLE = 50_000  # texts "suggest settings" sweeps on, at most (sizes scaled to the sample)
STABILITY_SAMPLE = 15_000  # ... but at most this many: re-clustering 80% of a million is minutes
MIN_STABILITY_POINTS = 20  # below this, stability is not measured


# --- Ward agglomeration of groups of points ------------------------------------------------------


def merge_space(coords: np.ndarray, vectors: np.ndarray | None = None) -> np.ndarray:
    """The space clusters are merged in: the reduced coordinates beside the embeddings, each block
    scaled to the same total variance, so neither the map's shape nor the meaning dominates.

    UMAP keeps local neighbourhoods but can tear a broad topic apart; the embeddings keep the
    global similarity. Measured on the benchmark sets, the pair beats either one alone."""
    blocks = [np.asarray(coords, dtype=np.float64)]
    if vectors is not None and vectors.shape[0] == coords.shape[0] and vectors is not coords:
        blocks.append(np.asarray(vectors, dtype=np.float64))
    scaled = []
    for block in blocks:
        spread = np.sqrt(((block - block.mean(axis=0)) ** 2).sum(axis=1).mean())
        scaled.append(block / spread if spread > 0 else block)
    return np.hstack(scaled)


def merge_space_means(
    coords: np.ndarray,
    vectors: np.ndarray | None,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    chunk: int = 65_536,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group ids, group weights, weighted group means in ``merge_space``) for the groups of
    ``labels`` (-1 left out): the same means as of ``merge_space``'s rows, computed ``chunk``
    rows at a time, so 1M x 384 embeddings never become a 3 GB float64 copy (the scaling is
    linear: a group's mean of scaled rows is its scaled mean)."""
    ids, position, sizes, weights = _groups(labels, weights)
    n = len(position)
    blocks = [coords]
    if vectors is not None and vectors.shape[0] == coords.shape[0] and vectors is not coords:
        blocks.append(vectors)
    means = []
    for block in blocks:
        rows = [slice(start, min(start + chunk, n)) for start in range(0, n, chunk)]
        total = sum(np.asarray(block[r], dtype=np.float64).sum(axis=0) for r in rows)
        centre = total / max(n, 1)
        squares = sum(((np.asarray(block[r], dtype=np.float64) - centre) ** 2).sum() for r in rows)
        spread = np.sqrt(squares / max(n, 1))
        group_mean = _group_means(block, position, sizes, weights, chunk)
        means.append(group_mean / spread if spread > 0 else group_mean)
    return ids, sizes, np.hstack(means) if means else np.zeros((len(ids), 0))


def _groups(
    labels: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(group ids, each row's group position or -1, group weights, row weights) of ``labels``."""
    labels = np.asarray(labels, dtype=np.int64)
    weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    ids = np.unique(labels[labels >= 0])
    position = np.where(labels >= 0, np.searchsorted(ids, labels), -1)
    sizes = np.bincount(position[labels >= 0], weights=weights[labels >= 0], minlength=len(ids))
    return ids, position, sizes, weights


def _group_means(
    block: np.ndarray, position: np.ndarray, sizes: np.ndarray, weights: np.ndarray, chunk: int = 65_536
) -> np.ndarray:
    """Weighted mean row of each group (``position`` from ``_groups``), ``chunk`` rows at a time."""
    sums = np.zeros((len(sizes), block.shape[1]))
    for start in range(0, len(position), chunk):
        r = slice(start, start + chunk)
        keep = position[r] >= 0
        part = np.asarray(block[r], dtype=np.float64)[keep] * weights[r][keep, None]
        np.add.at(sums, position[r][keep], part)
    return sums / np.maximum(sizes, 1e-12)[:, None]


def ward_merges_in_space(
    coords: np.ndarray, vectors: np.ndarray | None, labels: np.ndarray, weights: np.ndarray | None = None
) -> Merges:
    """``ward_merges`` of the groups of ``labels`` in ``merge_space(coords, vectors)``, from the
    groups' means (``merge_space_means``): the same merges, in bounded memory."""
    return _ward(*merge_space_means(coords, vectors, labels, weights))


@dataclass(frozen=True)
class Merges:
    """The history of a Ward agglomeration of groups ``ids`` (scipy's linkage convention: the
    i-th merge creates node ``len(ids) + i``)."""

    ids: np.ndarray  # the starting groups (e.g. cluster ids), position = leaf node number
    sizes: np.ndarray  # weight of each starting group
    steps: np.ndarray  # (len(ids) - 1, 4): node a, node b, Ward cost, weight of the new node

    def groups(self, n_groups: int) -> dict[int, int]:
        """Starting group id -> the root (node number) of its group once ``n_groups`` remain."""
        n = len(self.ids)
        parent = np.arange(2 * n - 1)
        for i, (a, b, _, _) in enumerate(self.steps[: max(n - max(n_groups, 1), 0)]):
            parent[int(a)] = parent[int(b)] = n + i

        def root(node: int) -> int:
            while parent[node] != node:
                node = int(parent[node])
            return node

        return {int(cid): root(i) for i, cid in enumerate(self.ids)}


def ward_merges(features: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> Merges:
    """Agglomerate the groups of ``labels`` (-1 ignored) by Ward's criterion on ``features``:
    each step joins the two groups whose union adds least to the weighted within-group sum of
    squares, i.e. what k-means minimises, starting from the groups instead of single points.

    Lance-Williams updates on a matrix of group pairs with a per-row minimum: fast enough for a
    few thousand groups."""
    ids, position, sizes, weights = _groups(labels, weights)
    return _ward(ids, sizes, _group_means(np.asarray(features), position, sizes, weights))


def _ward(ids: np.ndarray, sizes: np.ndarray, centroids: np.ndarray) -> Merges:
    """Ward agglomeration of groups given their weights and means (see ``ward_merges``)."""
    m = len(ids)
    if m == 0:
        return Merges(ids, np.zeros(0), np.zeros((0, 4)))
    squares = (centroids**2).sum(axis=1)
    dist = np.maximum(squares[:, None] + squares[None, :] - 2 * centroids @ centroids.T, 0)
    cost = dist * (sizes[:, None] * sizes[None, :]) / (sizes[:, None] + sizes[None, :])
    np.fill_diagonal(cost, np.inf)
    size = sizes.copy()
    node = np.arange(m)  # node number held by each row
    alive = np.ones(m, dtype=bool)
    best = cost.argmin(axis=1)
    steps = np.zeros((max(m - 1, 0), 4))
    for step in range(m - 1):
        row_min = np.where(alive, cost[np.arange(m), best], np.inf)
        a = int(row_min.argmin())
        b = int(best[a])
        height = cost[a, b]
        total = size[a] + size[b]
        steps[step] = (min(node[a], node[b]), max(node[a], node[b]), height, total)
        # Lance-Williams for Ward: the joined group's cost to every other group k
        updated = ((size[a] + size) * cost[a] + (size[b] + size) * cost[b] - size * height) / (total + size)
        alive[b] = False
        cost[b, :] = np.inf
        cost[:, b] = np.inf
        updated[~alive] = np.inf
        updated[a] = np.inf
        cost[a, :] = updated
        cost[:, a] = updated
        size[a] = total
        node[a] = m + step
        best[a] = int(cost[a].argmin())
        stale = alive & ((best == a) | (best == b))
        for row in np.flatnonzero(stale):
            best[row] = int(cost[row].argmin())
        closer = alive & (updated < cost[np.arange(m), best])
        best[closer] = a
    return Merges(ids, sizes, steps)


def merge_to(labels: np.ndarray, merges: Merges, n_groups: int) -> np.ndarray:
    """``labels`` with the groups of ``merges`` joined until ``n_groups`` remain (-1 kept).
    The new ids are the smallest starting id of each group (renumber afterwards)."""
    root_of = merges.groups(n_groups)
    first: dict[int, int] = {}
    for cid, root in sorted(root_of.items()):
        first.setdefault(root, cid)
    return relabel(labels, {cid: first[root] for cid, root in root_of.items()})


def relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """``labels`` with every id in ``mapping`` replaced (vectorised: a million labels in
    milliseconds); ids not in ``mapping``, -1 included, become -1."""
    labels = np.asarray(labels, dtype=np.int64)
    if not mapping:
        return np.full(len(labels), -1, dtype=np.int64)
    old = np.array(sorted(mapping), dtype=np.int64)
    new = np.array([mapping[int(i)] for i in old], dtype=np.int64)
    position = np.clip(np.searchsorted(old, labels), 0, len(old) - 1)
    return np.where(old[position] == labels, new[position], -1)


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


def far_from(coords: np.ndarray, labels: np.ndarray, reach: float | None = None, seed: int = 0) -> np.ndarray:
    """Which -1 points lie further from every clustered point than ``reach`` x the 99th
    percentile of the gaps between clustered neighbours (``ASSIGN_REACH`` by default): outliers,
    not texts between clusters."""
    reach = ASSIGN_REACH if reach is None else reach
    labels = np.asarray(labels)
    clustered = labels >= 0
    far = np.zeros(len(labels), dtype=bool)
    if clustered.all() or not clustered.any():
        return far if clustered.any() else ~far
    from sklearn.neighbors import KDTree

    members = np.asarray(coords, dtype=np.float64)[clustered]
    tree = KDTree(members)
    dist, _ = tree.query(np.asarray(coords, dtype=np.float64)[~clustered], k=1)
    far[np.flatnonzero(~clustered)] = dist[:, 0] > reach * _member_gap(tree, members, seed)
    return far


def pairwise(points: np.ndarray) -> np.ndarray:
    """Euclidean distances between all rows (float32; for a sample of a few thousand points)."""
    points = np.asarray(points, dtype=np.float64)
    points = (points - points.mean(axis=0)).astype(np.float32)
    squares = (points**2).sum(axis=1)
    dist = squares[:, None] + squares[None, :] - 2 * (points @ points.T)
    return np.sqrt(np.maximum(dist, 0))


def silhouette_of(distances: np.ndarray, labels: np.ndarray) -> float | None:
    """Mean silhouette of all points from precomputed ``distances`` (noise, -1, counts as a group;
    a point alone in its group scores 0); None with fewer than two groups."""
    ids, position = np.unique(labels, return_inverse=True)
    if len(ids) < 2:
        return None
    onehot = np.zeros((len(labels), len(ids)), dtype=np.float32)
    onehot[np.arange(len(labels)), position] = 1.0
    counts = onehot.sum(axis=0).astype(np.float64)
    return float(_silhouettes((distances @ onehot).astype(np.float64), position, counts).mean())


def _silhouettes(sums: np.ndarray, own: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Each row's silhouette from its distance sums to every group (``sums``), its group ``own``
    and the group sizes; a point alone in its group scores 0."""
    index = np.arange(len(own))
    a = sums[index, own] / np.maximum(counts[own] - 1, 1)
    others = sums / counts[None, :]
    others[index, own] = np.inf
    b = others.min(axis=1)
    scores = (b - a) / np.maximum(np.maximum(a, b), 1e-300)
    return np.where(counts[own] > 1, scores, 0.0)


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


ASSIGN_NEIGHBOURS = 15  # clustered neighbours that vote on an outlier's cluster
ASSIGN_MIN_SHARE = 0.8  # share of the (closeness-weighted) vote the winning cluster needs
ASSIGN_REACH = 3.0  # x the 99th percentile of the gaps between clustered neighbours
REACH_SAMPLE = 20_000  # clustered points the gap percentile is measured on, at most


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


# --- readouts -----------------------------------------------------------------------------------


def separation(coords: np.ndarray, labels: np.ndarray, seed: int = 0) -> float | None:
    """Mean silhouette of clustered points on the reduced coordinates, on a seeded sample of at
    most ``SEPARATION_SAMPLE`` points; -1..1, higher = clusters further apart than they are wide.
    None with fewer than two clusters."""
    clustered = np.flatnonzero(labels >= 0)
    if len(set(labels[clustered].tolist())) < 2 or len(clustered) < 3:
        return None
    if len(clustered) > SEPARATION_SAMPLE:
        clustered = np.sort(np.random.default_rng(seed).choice(clustered, SEPARATION_SAMPLE, replace=False))
    sample = labels[clustered]
    if len(set(sample.tolist())) < 2 or len(set(sample.tolist())) >= len(sample):
        return None
    return silhouette(np.asarray(coords, dtype=np.float64)[clustered], sample)


def silhouette(points: np.ndarray, labels: np.ndarray, block: int = 1024) -> float:
    """Mean silhouette (Euclidean), as scikit-learn's ``silhouette_score`` computes it (a point
    alone in its cluster scores 0), with the per-cluster distance sums done as one matrix product
    per block of rows, in float32: several times faster, same value to about 1e-6."""
    ids, position = np.unique(labels, return_inverse=True)
    points = np.asarray(points, dtype=np.float64)
    points = (points - points.mean(axis=0)).astype(np.float32)
    onehot = np.zeros((len(labels), len(ids)), dtype=np.float32)
    onehot[np.arange(len(labels)), position] = 1.0
    counts = onehot.sum(axis=0).astype(np.float64)
    squares = (points**2).sum(axis=1)
    scores = np.empty(len(labels))
    for start in range(0, len(labels), block):
        rows = slice(start, min(start + block, len(labels)))
        dist = points[rows] @ points.T
        dist *= -2
        dist += squares[rows, None]
        dist += squares[None, :]
        np.maximum(dist, 0, out=dist)
        np.sqrt(dist, out=dist)
        scores[rows] = _silhouettes((dist @ onehot).astype(np.float64), position[rows], counts)
    return float(scores.mean())


def stability(
    labels: np.ndarray,
    recluster: Callable[[np.ndarray], np.ndarray],
    seed: int = 0,
    runs: int = STABILITY_RUNS,
    fraction: float = STABILITY_FRACTION,
    sample: int | None = None,
) -> float | None:
    """Mean adjusted Rand index between ``labels`` and ``recluster(subset)`` on that subset, over
    ``runs`` random subsets holding ``fraction`` of the points, at most ``sample`` of them (noise
    counts as one group). ``recluster`` sees how many rows it gets: the cluster stage scales its
    sizes to a bounded subsample (see ``stability_size``).

    1.0 = leaving out a fifth of the texts changes no cluster; near 0 = the grouping is not
    reproducible. It measures sensitivity to the sample with the same reduction; it does not
    re-run UMAP with another seed (that would cost the reduce stage again)."""
    n = len(labels)
    if n < MIN_STABILITY_POINTS:
        return None
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(runs):
        subset = np.sort(rng.choice(n, stability_size(n, fraction, sample), replace=False))
        try:
            again = recluster(subset)
        except Exception as exc:  # a subsample the algorithm cannot handle: no readout, no failure
            log.info("stability re-clustering failed: %s", exc)
            return None
        scores.append(adjusted_rand_score(labels[subset], again))
    return float(np.mean(scores))


def stability_size(n: int, fraction: float = STABILITY_FRACTION, sample: int | None = None) -> int:
    """Points in each stability subsample for ``n`` points (``sample`` None: ``STABILITY_SAMPLE``)."""
    return min(int(round(n * fraction)), STABILITY_SAMPLE if sample is None else sample)


def readouts(
    coords: np.ndarray,
    raw_labels: np.ndarray,
    weights: np.ndarray,
    recluster: Callable[[np.ndarray], np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The per-run quality readouts (plain values, for the manifest)."""
    weights = np.asarray(weights, dtype=np.float64)
    total = max(weights.sum(), 1)
    noise = float(weights[raw_labels == -1].sum() / total)
    clustered = raw_labels >= 0
    largest = (
        float(np.bincount(raw_labels[clustered], weights=weights[clustered]).max() / total)
        if clustered.any()
        else 0.0
    )
    sep = separation(coords, raw_labels, seed)
    stab = stability(raw_labels, recluster, seed) if recluster is not None else None
    return {
        "clusters": int(len(set(raw_labels.tolist()) - {-1})),
        "noise_share": round(noise, 4),
        "largest_share": round(largest, 4),
        "separation": None if sep is None else round(sep, 4),
        "stability": None if stab is None else round(stab, 4),
        "separation_measure": f"silhouette on the reduced coordinates, <= {SEPARATION_SAMPLE:,} clustered texts",
        "stability_measure": _stability_measure(len(raw_labels)),
    }


def _stability_measure(n: int) -> str:
    size = stability_size(n)
    if size < int(round(n * STABILITY_FRACTION)):
        of = f"{size:,}-text subsamples (sizes scaled to the subsample)"
    else:
        of = f"{STABILITY_FRACTION:.0%} subsamples"
    return f"mean ARI with {STABILITY_RUNS} re-clusterings of {of} (same reduction; noise counts as a group)"


# --- the cluster tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterTree:
    """The hierarchy above the clusters: leaves are cluster ids, internal nodes are numbered from
    ``n_clusters`` on (``n_clusters + i`` made by the i-th merge), the last one is the root.

    ``nodes`` has one row per node: id, parent_id (-1 for the root), size (rows), height (Ward
    cost of the merge that made it; 0 for leaves), is_cluster, and the cluster ids it covers."""

    nodes: pd.DataFrame
    merges: Merges = field(repr=False)

    @property
    def n_clusters(self) -> int:
        return len(self.merges.ids)

    def parent_of(self) -> dict[int, int]:
        """Cluster id -> the node that joins it with its closest relatives (-1: no parent)."""
        leaves = self.nodes.loc[self.nodes["is_cluster"].astype(bool)]
        return dict(zip(leaves["id"].tolist(), leaves["parent_id"].tolist(), strict=True))

    def cut(self, n_groups: int) -> dict[int, int]:
        """Cluster id -> group number (0 = the group with most rows) with the tree cut where
        ``n_groups`` groups remain: a coarser level of the same clustering."""
        root_of = self.merges.groups(n_groups)
        size_of = dict(zip(self.merges.ids.tolist(), self.merges.sizes.tolist(), strict=True))
        totals: dict[int, float] = {}
        for cid, root in root_of.items():
            totals[root] = totals.get(root, 0.0) + size_of[cid]
        order = sorted(totals, key=lambda r: (-totals[r], min(c for c, x in root_of.items() if x == r)))
        number = {root: i for i, root in enumerate(order)}
        return {cid: number[root] for cid, root in root_of.items()}

    def to_records(self) -> list[dict[str, Any]]:
        """Nodes as plain dicts (for the manifest)."""
        return [
            {
                "id": int(r.id),
                "parent_id": int(r.parent_id),
                "size": int(r.size),
                "height": round(float(r.height), 6),
            }
            for r in self.nodes.itertuples()
        ]


def cluster_tree(
    labels: np.ndarray,
    weights: np.ndarray,
    coords: np.ndarray,
    vectors: np.ndarray | None = None,
) -> ClusterTree:
    """Ward agglomeration of the clusters of ``labels`` (noise left out) in ``merge_space``."""
    merges = ward_merges_in_space(coords, vectors, labels, weights)
    n = len(merges.ids)
    ids = merges.ids.tolist() + list(range(n, 2 * n - 1)) if n else []
    parent = {node: -1 for node in range(max(2 * n - 1, 0))}
    size = {i: float(s) for i, s in enumerate(merges.sizes)}
    height = dict.fromkeys(range(n), 0.0)
    covers: dict[int, list[int]] = {i: [int(c)] for i, c in enumerate(merges.ids)}
    for i, (a, b, cost, total) in enumerate(merges.steps):
        new = n + i
        parent[int(a)] = parent[int(b)] = new
        size[new], height[new] = float(total), float(cost)
        covers[new] = sorted(covers[int(a)] + covers[int(b)])
    # leaves are named by cluster id; internal nodes keep their number (>= n, above every id)
    name = {i: int(c) for i, c in enumerate(merges.ids)} | {node: node for node in range(n, 2 * n - 1)}
    if n and int(merges.ids.max()) >= n:  # ids that are not 0..n-1 would collide with node numbers
        offset = int(merges.ids.max()) + 1
        name |= {node: offset + node - n for node in range(n, 2 * n - 1)}
    nodes = pd.DataFrame(
        {
            "id": [name[i] for i in range(len(ids))],
            "parent_id": [name[parent[i]] if parent[i] >= 0 else -1 for i in range(len(ids))],
            "size": [int(round(size[i])) for i in range(len(ids))],
            "height": [height[i] for i in range(len(ids))],
            "is_cluster": [i < n for i in range(len(ids))],
            "clusters": [covers[i] for i in range(len(ids))],
        },
        columns=["id", "parent_id", "size", "height", "is_cluster", "clusters"],
    )
    return ClusterTree(nodes=nodes, merges=merges)


# --- suggest settings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    """A sweep over HDBSCAN settings: one row per setting and the recommended one.

    ``table`` columns: min_cluster_size, min_samples, clusters, noise_share, separation,
    stability, score, recommended. ``settings`` is the recommended point as
    ``{"cluster.min_cluster_size": ..., "cluster.min_samples": ...}`` for ``with_values``."""

    table: pd.DataFrame
    settings: dict[str, int]
    reason: str


def suggest_settings(
    projection: Any,
    weights: np.ndarray | None = None,
    min_cluster_sizes: list[int] | None = None,
    min_samples: list[int] | None = None,
    method: str = "eom",
    epsilon: float = -1.0,
    seed: int = 0,
    vectors: np.ndarray | None = None,
) -> Suggestion:
    """Sweep ``min_cluster_size`` (and ``min_samples``) on a cached ``Projection`` and recommend
    the setting with the best ``score`` = stability x (1 - noise share) x max(separation, 0),
    among settings with at least two clusters and, when any has one, none holding more than
    ``LARGEST_SHARE`` of the texts (ties: the automatic size, then larger sizes). Each setting is
    clustered as the cluster stage would (``cluster.select``, with ``vectors`` the embeddings).

    By default: seven sizes from half to four times the automatic one, with the automatic
    ``min_samples`` of the automatic size; give ``min_samples`` (0 = half of each size) to sweep
    it too. The expensive part of HDBSCAN (the neighbour tree) is built once per ``min_samples``
    and per stability subsample; every ``min_cluster_size`` is then applied to it, so a sweep of a
    20,000-text projection takes a few seconds. Past ``SUGGEST_SAMPLE`` texts the sweep runs on
    a seeded sample of that many, with the sizes scaled to it; the table still gives the sizes
    for the whole set. Separation favours fewer, rounder clusters: the
    recommendation is a starting point, not ground truth."""
    from .stages import cluster as cluster_mod

    coords = np.asarray(projection.coords, dtype=np.float64)
    n = len(coords)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    auto = cluster_mod.auto_min_cluster_size(n)
    if min_cluster_sizes is None:
        grid = {max(2, int(round(auto * f))) for f in (0.5, 0.75, 1, 1.5, 2, 3, 4)}
        min_cluster_sizes = sorted(s for s in grid if s <= max(2, n // 2))
    if min_samples is None:
        # one value shared by every size: one neighbour tree serves the whole sweep
        min_samples = [cluster_mod.auto_min_samples(auto)]
    automatic_level = epsilon < 0
    eps = cluster_mod.auto_epsilon(projection) if automatic_level else float(epsilon)
    umap = getattr(projection, "method", "") == "umap"
    rng = np.random.default_rng(seed)
    share = 1.0
    if vectors is not None and len(vectors) != n:
        vectors = None
    if n > SUGGEST_SAMPLE:  # a seeded sample, sizes scaled to it (as cluster.fit_sample does)
        sample = np.sort(rng.choice(n, SUGGEST_SAMPLE, replace=False))
        coords, weights, share = coords[sample], weights[sample], SUGGEST_SAMPLE / n
        vectors = None if vectors is None else np.asarray(vectors[sample])
    points = len(coords)

    def sized(value: int, least: int) -> int:
        return max(least, int(round(value * share)))

    subsets = [
        np.sort(rng.choice(points, int(round(points * STABILITY_FRACTION)), replace=False))
        for _ in range(STABILITY_RUNS if points >= MIN_STABILITY_POINTS else 0)
    ]
    rows = []
    from sklearn.metrics import adjusted_rand_score

    for given_ms in min_samples:
        by_ms: dict[int, list[int]] = {}
        for mcs in min_cluster_sizes:
            ms = min(given_ms or cluster_mod.auto_min_samples(mcs), n - 1)
            by_ms.setdefault(ms, []).append(mcs)
        for ms, sizes in by_ms.items():
            full = cluster_mod.HdbscanTree(coords, sized(ms, 1))
            subs = [cluster_mod.HdbscanTree(coords[s], sized(ms, 1)) for s in subsets]
            for mcs in sizes:
                settings = cluster_mod.Settings(sized(mcs, 2), sized(ms, 1), method, eps, automatic_level)
                labels, _, info = cluster_mod.select(full, vectors, weights, settings, umap, seed)
                aris = [
                    adjusted_rand_score(
                        labels[s],
                        cluster_mod.select(
                            t,
                            None if vectors is None else vectors[s],
                            weights[s],
                            settings,
                            umap,
                            seed,
                            info.get("level", 0),
                        )[0],
                    )
                    for s, t in zip(subsets, subs, strict=True)
                ]
                total = max(weights.sum(), 1)
                noise = float(weights[labels == -1].sum() / total)
                clustered = labels >= 0
                largest = (
                    np.bincount(labels[clustered], weights=weights[clustered]).max() if clustered.any() else 0
                )
                sep = separation(coords, labels, seed)
                rows.append(
                    {
                        "min_cluster_size": mcs,
                        "min_samples": ms,
                        "clusters": int(len(set(labels.tolist()) - {-1})),
                        "noise_share": round(noise, 4),
                        "largest_share": round(float(largest / total), 4),
                        "separation": np.nan if sep is None else round(sep, 4),
                        "stability": round(float(np.mean(aris)), 4) if aris else np.nan,
                    }
                )
    table = pd.DataFrame(rows).drop_duplicates(["min_cluster_size", "min_samples"])
    stab = table["stability"].fillna(1.0)
    table["score"] = (stab * (1 - table["noise_share"]) * table["separation"].fillna(0).clip(lower=0)).round(
        4
    )
    table.loc[table["clusters"] < 2, "score"] = 0.0
    # a setting whose largest cluster holds most of the texts is never recommended over one without
    blob = table["largest_share"] > cluster_mod.LARGEST_SHARE
    order = table.assign(
        is_auto=table["min_cluster_size"] == auto,
        fits=~blob if (~blob & (table["clusters"] >= 2)).any() else True,
    ).sort_values(["fits", "score", "is_auto", "min_cluster_size"], ascending=[False, False, False, False])
    best = order.index[0]
    table["recommended"] = table.index == best
    pick = table.loc[best]
    reason = (
        f"min_cluster_size={int(pick.min_cluster_size)}, min_samples={int(pick.min_samples)}: "
        f"{int(pick.clusters)} clusters, the largest {pick.largest_share:.0%}, {pick.noise_share:.0%} unclustered, "
        f"stability {pick.stability:.2f}, separation {pick.separation:.2f} (best score of {len(table)} settings)"
    )
    return Suggestion(
        table=table.sort_values(["min_samples", "min_cluster_size"]).reset_index(drop=True),
        settings={
            "cluster.min_cluster_size": int(pick.min_cluster_size),
            "cluster.min_samples": int(pick.min_samples),
        },
        reason=reason,
    )
