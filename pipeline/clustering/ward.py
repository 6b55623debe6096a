"""Ward agglomeration of groups of points (clusters, or HDBSCAN's pieces): the merges behind
HDBSCAN's automatic level and "about K", and the cluster tree.

The groups are merged in the *merge space*: the reduced coordinates beside the embeddings, each
block scaled to the same total variance, so neither the map's shape nor the meaning dominates.
UMAP keeps local neighbourhoods but can tear a broad topic apart; the embeddings keep the global
similarity. Measured on the benchmark sets, the pair beats either one alone. Only the groups'
means in that space are ever computed (``merge_space_means``), never the space itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# rows converted at a time: a 4,096 x 384 float64 chunk (12 MB) reuses the memory the last one
# freed, where a 65,536-row chunk (200 MB) was a fresh mapping each time, its pages zeroed on first
# touch: merge_space_means at 100,000 texts took 0.13 s, and 0.5-1.0 s in one call of three (a
# slider step's auto level); 4,096 rows: 0.10-0.11 s, every call (same sums to 1e-16)
CHUNK = 4_096


def merge_space_means(
    coords: np.ndarray,
    vectors: np.ndarray | None,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    chunk: int = CHUNK,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group ids, group weights, weighted group means in the merge space) for the groups of
    ``labels`` (-1 left out): each block's spread (root mean squared distance to its centre) is
    measured and its group means divided by it, ``chunk`` rows at a time, so 1M x 384 embeddings
    never become a 3 GB float64 copy (the scaling is linear: a group's mean of scaled rows is its
    scaled mean). See ``CHUNK`` for its size."""
    ids, position, sizes, weights = _groups(labels, weights)
    n = len(position)
    blocks = [coords]
    if vectors is not None and vectors.shape[0] == coords.shape[0] and vectors is not coords:
        blocks.append(vectors)
    means = []
    for block in blocks:
        # one pass: the sums, the sums of squares and the group sums of each chunk
        total, squares = np.zeros(block.shape[1]), 0.0
        sums = np.zeros((len(sizes), block.shape[1]))
        for start in range(0, n, chunk):
            rows = np.asarray(block[start : start + chunk], dtype=np.float64)
            total += rows.sum(axis=0)
            squares += float(np.einsum("ij,ij->", rows, rows))
            sums += _group_sums(
                rows, position[start : start + chunk], weights[start : start + chunk], len(sizes)
            )
        centre = total / max(n, 1)
        spread = np.sqrt(max(squares / max(n, 1) - float(centre @ centre), 0.0))
        group_mean = sums / np.maximum(sizes, 1e-12)[:, None]
        means.append(group_mean / spread if spread > 0 else group_mean)
    return ids, sizes, np.hstack(means) if means else np.zeros((len(ids), 0))


def _group_sums(rows: np.ndarray, position: np.ndarray, weights: np.ndarray, groups: int) -> np.ndarray:
    """Weighted sum of the rows of each group (``position`` -1: in none), as one sparse product."""
    import scipy.sparse as sp

    keep = np.flatnonzero(position >= 0)
    member = sp.csr_matrix(
        (weights[keep].astype(rows.dtype), (position[keep], keep)), shape=(groups, len(rows))
    )
    return np.asarray(member @ rows)


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


def group_means(
    block: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    chunk: int = CHUNK,
    dtype: type = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """(group ids, weighted mean row of each group) of ``labels`` (-1 left out), ``chunk`` rows
    of ``block`` at a time, each as one sparse product in ``dtype`` (``np.add.at`` over 100,000 x
    384 rows took 2-3 s). ``np.float32`` on float32 embeddings skips a float64 copy of every
    chunk (0.44 s of every edit at 100,000 texts for 'Nearest clusters'); the sums across chunks
    stay float64."""
    ids, position, sizes, weights = _groups(labels, weights)
    sums = np.zeros((len(sizes), block.shape[1]))
    for start in range(0, len(position), chunk):
        rows = np.asarray(block[start : start + chunk], dtype=dtype)
        sums += _group_sums(rows, position[start : start + chunk], weights[start : start + chunk], len(sizes))
    return ids, sums / np.maximum(sizes, 1e-12)[:, None]


def ward_merges_in_space(
    coords: np.ndarray, vectors: np.ndarray | None, labels: np.ndarray, weights: np.ndarray | None = None
) -> Merges:
    """Ward merges (``agglomerate``) of the groups of ``labels`` (-1 left out) in the merge space
    of ``coords`` and ``vectors``, from the groups' means: bounded memory at any size."""
    return agglomerate(*merge_space_means(coords, vectors, labels, weights))


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


def agglomerate(ids: np.ndarray, sizes: np.ndarray, centroids: np.ndarray) -> Merges:
    """Agglomerate groups ``ids`` of weights ``sizes`` and means ``centroids`` by Ward's criterion:
    each step joins the two groups whose union adds least to the weighted within-group sum of
    squares, i.e. what k-means minimises, starting from the groups instead of single points.

    Lance-Williams updates on a matrix of group pairs with a per-row minimum: fast enough for a
    few thousand groups."""
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
