"""The hierarchy above the clusters: Ward agglomeration of the clusters' means in the merge space
(reduced coordinates beside the embeddings, see ``ward``), as nodes a Plotly icicle, sunburst or
dendrogram can draw, with ``cut(n)`` for a coarser level."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .ward import Merges, ward_merges_in_space


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
    """Ward agglomeration of the clusters of ``labels`` (noise left out) in the merge space (``ward``)."""
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
