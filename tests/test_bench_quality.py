"""The benchmark's goal checks: what counts as meeting each of the issue's goals."""

from __future__ import annotations

from pipeline import bench_quality


def _row(**changes) -> dict:
    row = {"set": "s", "groups": 10, "clusters": 12, "noise": 0.05, "ami": 0.6, "kmeans_ami": 0.6}
    row |= {"largest": 0.2, "largest_group": 0.1}
    return row | changes


def test_a_set_within_every_goal_meets_them_all():
    assert bench_quality.goals(_row()) == dict.fromkeys(
        ["goal_ami", "goal_largest", "goal_clusters", "goal_noise"], True
    )


def test_each_goal_fails_on_its_own():
    assert not bench_quality.goals(_row(ami=0.5))["goal_ami"]  # 0.5 < 0.9 x 0.6
    assert not bench_quality.goals(_row(largest=0.45))["goal_largest"]
    assert not bench_quality.goals(_row(clusters=4))["goal_clusters"]  # below k/2
    assert not bench_quality.goals(_row(clusters=31))["goal_clusters"]  # above 3k
    assert not bench_quality.goals(_row(noise=0.2))["goal_noise"]


def test_a_large_cluster_is_fine_when_the_labels_have_one():
    assert bench_quality.goals(_row(largest=0.55, largest_group=0.52))["goal_largest"]
    assert not bench_quality.goals(_row(largest=0.65, largest_group=0.52))["goal_largest"]


def test_without_kmeans_the_ami_goal_is_not_counted():
    rows = [{**_row(set="a"), **bench_quality.goals(_row())}]
    rows.append({**_row(set="b", noise=0.3), **bench_quality.goals(_row(noise=0.3, kmeans_ami=None))})
    line = bench_quality.summary(rows)
    assert "k-means(true k): 1/1" in line
    assert "noise <= 15%: 1/2 (not b)" in line


def test_agglomerative_is_reported_beside_kmeans_when_asked():
    row = {**_row(), "rows": 100, "noise": 0.0, "ari": 0.5, "nmi": 0.5, "label_coverage": None}
    row |= {"separation": None, "stability": None, "seconds": 1.0, "generated": False, "ami_ratio": 1.0}
    assert "agglomerative" not in bench_quality._line(row) + bench_quality._markdown([row])
    row["agglomerative_ami"] = 0.55
    assert "agglomerative(true k) AMI 0.550  k-means(true k) AMI 0.600" in bench_quality._line(row)
    table = bench_quality._markdown([row]).splitlines()
    heads = [h.strip() for h in table[0].split("|")]
    cells = [c.strip() for c in table[2].split("|")]
    assert cells[heads.index("agglomerative, true k: AMI")] == "0.550"
