"""The cluster tree: families join first, a cut gives a coarser level, the result exports it."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from pipeline import plots
from pipeline.clustering.tree import cluster_tree
from tests.clustering.synthetic import hdbscan, nested_blobs
from tests.conftest import config_for, run_collect


def test_the_tree_joins_blobs_of_a_family_first_and_cuts_to_a_coarser_level():
    points, family, blob = nested_blobs()
    clustering = hdbscan(points)
    tree = cluster_tree(clustering.labels, np.ones(len(points)), points)
    nodes = tree.nodes
    assert len(nodes) == 2 * 9 - 1 and (nodes["parent_id"] == -1).sum() == 1
    root = nodes[nodes["parent_id"] == -1].iloc[0]
    assert root["size"] == len(points) and sorted(root["clusters"]) == list(range(9))
    groups = tree.cut(3)
    coarse = np.array([groups[c] for c in clustering.labels])
    assert adjusted_rand_score(family, coarse) == pytest.approx(1.0)
    assert set(tree.cut(1).values()) == {0} and len(set(tree.cut(9).values())) == 9
    # siblings share a parent: two blobs of one family, never blobs of two families
    parents = tree.parent_of()
    family_of = {c: family[clustering.labels == c][0] for c in range(9)}
    for a in range(9):
        for b in range(a + 1, 9):
            if parents[a] == parents[b]:
                assert family_of[a] == family_of[b]


def test_a_tree_of_no_cluster_or_one_cluster_is_empty_or_a_single_root():
    empty = cluster_tree(np.full(5, -1), np.ones(5), np.zeros((5, 2)))
    assert empty.nodes.empty and empty.parent_of() == {} and empty.to_records() == [] and empty.cut(2) == {}
    one = cluster_tree(np.array([0, 0, 0, -1]), np.ones(4), np.arange(8.0).reshape(4, 2))
    assert one.parent_of() == {0: -1} and one.cut(3) == {0: 0} and one.to_records()[0]["size"] == 3


def test_result_exports_parent_ids_and_draws_the_tree(topic_table, cache_dir, fake_embedder):
    result, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    clusters = result.clusters()
    assert "parent_id" in clusters.columns
    clustered = clusters[clusters["id"] >= 0]
    if len(clustered) > 1:
        assert clustered["parent_id"].notna().all() and (clustered["parent_id"] >= result.n_clusters).all()
    assert clusters.loc[clusters["id"] == -1, "parent_id"].isna().all()
    manifest = result.manifest()
    assert len(manifest["tree"]) == max(2 * result.n_clusters - 1, 0)
    figure = plots.tree_figure(result)
    trace = figure.data[0]
    assert len(trace.ids) == len(manifest["tree"]) and list(trace.parents).count("") == 1
    frame = plots.tree_frame(result)
    assert frame.loc[frame["parent"] == "", "rows"].iloc[0] == int(
        result.corpus.counts[result.clustering.labels >= 0].sum()
    )
