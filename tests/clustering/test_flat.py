"""``flat`` gives what hdbscan's own condensing and selection give, on trees with ties and
duplicate points (infinite lambdas), for every selection the cluster stage and the sweep use."""

import hdbscan
import numpy as np
import pytest
from hdbscan._hdbscan_tree import compute_stability, condense_tree, get_clusters

from pipeline.clustering import flat


def _trees():
    rng = np.random.default_rng(7)
    for trial in range(24):
        n = int(rng.integers(3, 300))
        points = rng.normal(size=(n, 2)) + rng.integers(0, 4, size=(n, 1)) * 3
        if trial % 3 == 0:
            points[: n // 3] = points[0]  # duplicates: distance 0, lambda inf
        if trial % 4 == 0:
            points = np.round(points, 1)  # ties
        model = hdbscan.HDBSCAN(min_cluster_size=2, min_samples=int(rng.integers(1, min(8, n))))
        yield model.fit(points).single_linkage_tree_.to_numpy()


TREES = list(_trees())


@pytest.mark.parametrize("min_cluster_size", [2, 5, 20, 500])
def test_the_condensed_tree_and_its_stabilities_are_hdbscans(min_cluster_size):
    for tree in TREES:
        theirs = condense_tree(tree, min_cluster_size)
        ours = flat.condense(tree, min_cluster_size)
        assert np.array_equal(ours.parent, theirs["parent"])
        assert np.array_equal(ours.child, theirs["child"])
        assert np.array_equal(ours.lambdas, theirs["lambda_val"])
        assert np.array_equal(ours.sizes, theirs["child_size"])
        stability = compute_stability(theirs)
        expected = np.array([stability[key] for key in sorted(stability)])
        assert np.allclose(ours.stability[: len(expected)], expected, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("method", ["eom", "leaf"])
@pytest.mark.parametrize("epsilon", [0.0, 0.3, 1.5])
def test_labels_and_probabilities_are_hdbscans(method, epsilon):
    compared = 0
    for tree in TREES:
        for min_cluster_size in (2, 4, 15):
            theirs = condense_tree(tree, min_cluster_size)
            labels, probabilities, _ = get_clusters(
                theirs, compute_stability(theirs), method, False, False, epsilon, 0, float("inf")
            )
            ours = flat.condense(tree, min_cluster_size)
            selected = flat.select(ours, method, epsilon)
            mine = flat.labels(ours, selected)
            assert np.array_equal(mine, labels)
            assert np.array_equal(flat.probabilities(ours, selected, mine), probabilities)
            compared += int(labels.max() >= 0)
    assert compared >= 20  # most trees have clusters: the comparison is not all noise


def test_an_unknown_selection_method_is_refused():
    with pytest.raises(ValueError, match="'eom' or 'leaf'"):
        flat.select(flat.condense(TREES[1], 2), "nearest")
