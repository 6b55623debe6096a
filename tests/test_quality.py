"""Cluster quality on small synthetic data with known groups: the "about K" control, outlier
assignment, readouts, the settings sweep, the cluster tree, and keywords in several languages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from pipeline import ClusterParams, StageError, plots, quality, terms
from pipeline.context import detached
from pipeline.stages.cluster import auto_epsilon, cluster
from pipeline.types import Clustering, Projection
from tests.conftest import config_for, label_groups, run_collect


def nested_blobs(per: int = 40, seed: int = 0, dim: int = 5):
    """3 families far apart, each of 3 tight blobs near each other: (points, family, blob)."""
    rng = np.random.default_rng(seed)
    families = rng.standard_normal((3, dim)) * 40
    points, family, blob = [], [], []
    for f, centre in enumerate(families):
        for b in range(3):
            middle = centre + rng.standard_normal(dim) * 6
            points.append(middle + rng.standard_normal((per, dim)) * 0.3)
            family += [f] * per
            blob += [3 * f + b] * per
    return np.concatenate(points).astype(np.float32), np.array(family), np.array(blob)


def projection_of(points: np.ndarray, method: str = "test") -> Projection:
    return Projection(coords=points, layout=points[:, :2], method=method)


def hdbscan(points, **values) -> Clustering:
    values.setdefault("min_cluster_size", 10)
    return cluster(projection_of(points), ClusterParams(**values), vectors=points)


def clumpy_topics(k: int = 8, clumps: int = 4, per: int = 30, seed: int = 0):
    """What UMAP makes of overlapping topics: ``k`` groups whose centres lie closer together
    than 0.4, each made of tight clumps: (points, group)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, 5)) * 0.25
    points, group = [], []
    for g, centre in enumerate(centres):
        for _ in range(clumps):
            middle = centre + rng.standard_normal(5) * 0.07
            points.append(middle + rng.standard_normal((per, 5)) * 0.015)
            group += [g] * per
    return np.concatenate(points).astype(np.float32), np.array(group)


# --- never one blob -----------------------------------------------------------------------------


def test_topics_closer_than_a_fixed_distance_are_not_one_blob():
    points, group = clumpy_topics()
    projection = projection_of(points, "umap")
    fixed = cluster(projection, ClusterParams(epsilon=0.4), vectors=points)  # the former default
    assert fixed.readouts["largest_share"] > 0.8  # the blob, reproduced
    result = cluster(projection, ClusterParams(), vectors=points)
    k = 8
    assert result.readouts["largest_share"] <= 0.4
    assert k / 2 <= result.n_clusters <= 3 * k
    assert result.readouts["noise_share"] <= 0.15
    assert adjusted_rand_score(group, result.labels) > 0.8
    assert result.resolved["selection"] == "auto_level" and result.resolved["pieces"] >= result.n_clusters


def test_subsamples_of_a_large_set_keep_the_automatic_level(monkeypatch):
    """Stability subsamples (and cluster.fit_sample's sample) of a large set scale the sizes; they
    must still cluster the way the full run does, or stability reads as near 0."""
    points, _ = clumpy_topics()
    monkeypatch.setattr(quality, "STABILITY_SAMPLE", 400)  # as past 18,750 texts: scaled sizes
    result = cluster(projection_of(points, "umap"), ClusterParams(), vectors=points)
    assert "400-text subsamples" in result.readouts["stability_measure"]
    assert result.readouts["stability"] > 0.7


def test_a_blob_is_reported_and_never_recommended_when_a_setting_avoids_it():
    points, _ = clumpy_topics()
    warnings: list[str] = []
    ctx = detached("cluster")
    ctx.warn = warnings.append  # type: ignore[method-assign]
    cluster(projection_of(points, "umap"), ClusterParams(epsilon=0.4), ctx, vectors=points)
    assert any("one cluster holds 88% of the texts" in w for w in warnings), warnings
    # one family of six close clumps holds 60% of the texts, two small ones lie far away: a large
    # min_cluster_size keeps the family whole, and that blob is the best separated setting
    rng = np.random.default_rng(0)
    parts = [rng.standard_normal(5) + rng.standard_normal((50, 5)) * 0.1 for _ in range(6)]
    parts += [np.full(5, side * 30.0) + rng.standard_normal((100, 5)) * 0.1 for side in (1, -1)]
    points = np.concatenate(parts).astype(np.float32)
    suggestion = quality.suggest_settings(
        projection_of(points), epsilon=0.0, min_cluster_sizes=[10, 60], vectors=points
    )
    table = suggestion.table.set_index("min_cluster_size")
    assert table.loc[60, "largest_share"] == pytest.approx(0.6) and table.loc[10, "largest_share"] <= 0.4
    assert table.loc[60, "score"] > table.loc[10, "score"]
    assert table["recommended"].idxmax() == 10 and suggestion.settings["cluster.min_cluster_size"] == 10


# --- the "about K" control ----------------------------------------------------------------------


@pytest.mark.parametrize(("k", "truth"), [(3, "family"), (9, "blob")])
def test_about_k_joins_or_splits_hdbscan_clusters_to_the_number_asked(k, truth):
    points, family, blob = nested_blobs()
    result = hdbscan(points, n_clusters=k)
    assert result.n_clusters == k and result.algorithm == "hdbscan"
    expected = {"family": family, "blob": blob}[truth]
    assert adjusted_rand_score(expected, result.labels) == pytest.approx(1.0)
    assert result.resolved["n_clusters"] == k and result.resolved["pieces"] >= k


def test_about_k_keeps_noise_visible_and_hdbscan_alone_finds_its_own_number():
    points, family, _ = nested_blobs()
    far = np.array([[500.0] * 5, [-500.0] * 5], dtype=np.float32)
    points = np.concatenate([points, far])
    alone = hdbscan(points)
    about = hdbscan(points, n_clusters=3)
    assert alone.n_clusters == 9  # the blobs are each clearly separated
    assert about.n_clusters == 3
    assert (about.raw_labels[-2:] == -1).all() and (about.labels[-2:] == -1).all()
    assigned = hdbscan(points, n_clusters=3, assign_outliers=True)
    assert (assigned.raw_labels[-2:] == -1).all()
    assert (assigned.labels[-2:] == -1).all()  # far from every cluster: never pushed into one


def test_about_k_says_when_hdbscan_cannot_find_that_many():
    points, _, _ = nested_blobs(per=12)
    warnings: list[str] = []
    ctx = detached("cluster")
    ctx.warn = warnings.append  # type: ignore[method-assign]
    result = cluster(projection_of(points), ClusterParams(min_cluster_size=5, n_clusters=60), ctx)
    assert result.n_clusters < 60
    assert warnings and "asked for about 60 clusters" in warnings[-1]


def test_about_k_beyond_the_number_of_texts_is_an_error_with_a_fix():
    points, _, _ = nested_blobs(per=3)
    with pytest.raises(StageError) as info:
        hdbscan(points, min_cluster_size=2, n_clusters=100)
    assert "set cluster.n_clusters to at most 27" in info.value.user_message()


def test_ward_merges_match_scipy_on_single_points():
    from scipy.cluster.hierarchy import linkage

    rng = np.random.default_rng(1)
    points = rng.standard_normal((25, 3))
    merges = quality.ward_merges(points, np.arange(25))
    reference = linkage(points, method="ward")
    # scipy's Ward distance is sqrt(2 x the increase in the within-group sum of squares)
    np.testing.assert_allclose(np.sqrt(2 * merges.steps[:, 2]), reference[:, 2], rtol=1e-8)
    np.testing.assert_array_equal(merges.steps[:, 3], reference[:, 3])


def test_merge_space_gives_both_blocks_the_same_weight():
    rng = np.random.default_rng(2)
    coords, vectors = rng.standard_normal((50, 5)) * 100, rng.standard_normal((50, 40)) * 0.01
    space = quality.merge_space(coords, vectors)
    assert space.shape == (50, 45)
    spread = [((b - b.mean(0)) ** 2).sum(1).mean() for b in (space[:, :5], space[:, 5:])]
    np.testing.assert_allclose(spread, [1.0, 1.0])


def test_ward_merges_from_group_means_in_chunks_equal_those_on_the_merge_space():
    rng = np.random.default_rng(3)
    coords, vectors = rng.standard_normal((300, 5)) * 4, rng.standard_normal((300, 24))
    labels = rng.integers(-1, 12, 300)
    weights = rng.integers(1, 4, 300)
    whole = quality.ward_merges(quality.merge_space(coords, vectors), labels, weights)
    chunked = quality.ward_merges_in_space(coords, vectors, labels, weights)
    np.testing.assert_array_equal(chunked.ids, whole.ids)
    np.testing.assert_allclose(chunked.sizes, whole.sizes)
    np.testing.assert_allclose(chunked.steps, whole.steps, rtol=1e-9, atol=1e-12)
    ids, _, means = quality.merge_space_means(coords, vectors, labels, weights, chunk=7)
    assert means.shape == (12, 29) and ids.tolist() == list(range(12))


# --- outliers -----------------------------------------------------------------------------------


def test_outliers_join_the_cluster_whose_members_are_nearest_not_the_nearest_centre():
    rng = np.random.default_rng(4)
    long = np.column_stack([np.linspace(0, 30, 120), rng.normal(0, 0.2, 120)])  # a long thin cluster
    compact = rng.normal(0, 0.2, (60, 2)) + [37.0, 4.0]
    tip = np.array([[31.5, 0.0]])  # past the long cluster's end: its centre (15, 0) is further away
    points = np.concatenate([long, compact, tip]).astype(np.float32)
    raw = np.array([0] * 120 + [1] * 60 + [-1])
    assert np.linalg.norm(tip - compact.mean(0)) < np.linalg.norm(tip - long.mean(0))
    assert quality.assign_by_neighbours(points, raw)[-1] == 0


def test_assigning_outliers_does_not_lower_agreement_with_the_truth():
    from sklearn.metrics import adjusted_mutual_info_score

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
    out = quality.assign_confident(points, raw)
    assert out[400] == 0 and out[401] == 1
    assert out[402] == -1 and out[403] == -1
    np.testing.assert_array_equal(out[:400], raw[:400])
    assert (quality.assign_by_neighbours(points, raw) >= 0).all()  # the unconditional vote (about K)


def test_renumbering_and_relabelling_are_vectorised_and_keep_their_order():
    from pipeline.stages.cluster import _renumber

    labels = np.array([5, 5, -1, 2, 2, 2, 9, 9, 9, -1])
    np.testing.assert_array_equal(_renumber(labels, np.ones(10)), [2, 2, -1, 0, 0, 0, 1, 1, 1, -1])
    # above: 2 and 9 tie in size, 2 comes first; below: weights count
    weights = np.array([3, 3, 1, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(_renumber(labels, weights), [0, 0, -1, 1, 1, 1, 2, 2, 2, -1])
    assert (_renumber(np.full(4, -1), np.ones(4)) == -1).all()
    np.testing.assert_array_equal(quality.relabel(labels, {5: 0, 2: 0}), [0, 0, -1, 0, 0, 0, -1, -1, -1, -1])
    big = np.random.default_rng(9).integers(-1, 300, 1_000_000)
    assert (_renumber(big, np.ones(len(big))) >= 0).sum() == (big >= 0).sum()


# --- readouts -----------------------------------------------------------------------------------


def test_readouts_report_count_noise_separation_and_stability():
    points, _, _ = nested_blobs()
    result = hdbscan(points)
    readouts = result.readouts
    assert readouts["clusters"] == 9 and readouts["noise_share"] == 0.0
    assert readouts["separation"] > 0.6  # tight blobs far apart
    assert readouts["stability"] > 0.95  # leaving out a fifth changes nothing
    assert "silhouette" in readouts["separation_measure"] and "ARI" in readouts["stability_measure"]


def test_structureless_data_reads_as_less_stable_and_less_separated():
    rng = np.random.default_rng(6)
    points = rng.uniform(-1, 1, (300, 5)).astype(np.float32)
    result = cluster(projection_of(points), ClusterParams(min_cluster_size=10, min_samples=3))
    blobs = hdbscan(nested_blobs()[0])
    if result.readouts["separation"] is not None:
        assert result.readouts["separation"] < blobs.readouts["separation"]
    assert result.readouts["stability"] < blobs.readouts["stability"]


def test_large_inputs_get_stability_from_a_bounded_subsample(monkeypatch):
    points, _, _ = nested_blobs(per=60)
    monkeypatch.setattr(quality, "STABILITY_SAMPLE", 200)  # 540 points: like a million against 50,000
    seen: list[int] = []
    real = quality.stability

    def spy(labels, recluster, seed=0, **kw):
        def wrapped(rows):
            seen.append(len(rows))
            return recluster(rows)

        return real(labels, wrapped, seed, **kw)

    monkeypatch.setattr(quality, "stability", spy)
    result = hdbscan(points, min_cluster_size=20)
    assert seen == [200, 200]
    assert result.readouts["stability"] > 0.9  # sizes scaled to the subsample: the same 9 blobs
    assert "200-text subsamples" in result.readouts["stability_measure"]


def test_kmeans_has_readouts_too():
    points, family, _ = nested_blobs()
    result = cluster(projection_of(points), ClusterParams(algorithm="kmeans", n_clusters=3))
    assert result.readouts["clusters"] == 3 and result.readouts["stability"] > 0.95


def test_separation_is_the_silhouette_and_is_sampled_for_large_inputs():
    points, _, blob = nested_blobs()
    assert quality.separation(points, blob) == pytest.approx(silhouette_score(points, blob), abs=1e-5)
    rng = np.random.default_rng(7)
    many = rng.standard_normal((12_000, 2))
    labels = (many[:, 0] > 0).astype(int)
    assert quality.separation(many, labels) == pytest.approx(quality.separation(many, labels))  # seeded
    assert quality.separation(many, np.zeros(12_000, int)) is None  # one cluster: nothing to separate


def test_the_manifest_and_result_carry_the_readouts(topic_table, cache_dir, fake_embedder):
    result, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    manifest = json.loads(json.dumps(result.manifest()))
    assert manifest["quality"]["clusters"] == result.n_clusters
    assert manifest["quality"]["noise_share"] == round(result.noise_share, 4)
    assert set(manifest["quality"]) >= {"separation", "stability"}
    assert result.readouts == result.clustering.readouts
    assert manifest["resolved"]["epsilon"] >= 0


# --- suggest settings ---------------------------------------------------------------------------


def test_suggest_settings_sweeps_and_recommends_a_point_that_can_be_applied():
    points, _, blob = nested_blobs()
    suggestion = quality.suggest_settings(projection_of(points))
    table = suggestion.table
    assert list(table.columns) == [
        "min_cluster_size",
        "min_samples",
        "clusters",
        "noise_share",
        "largest_share",
        "separation",
        "stability",
        "score",
        "recommended",
    ]
    assert len(table) >= 4 and table["recommended"].sum() == 1
    best = table[table["recommended"]].iloc[0]
    assert best["clusters"] == 9
    config = config_for().with_values(suggestion.settings)
    assert config.cluster.min_cluster_size == best["min_cluster_size"]
    assert "9 clusters" in suggestion.reason
    figure = plots.sweep_figure(table)
    assert [t.name for t in figure.data] == ["clusters", "noise share", "stability", "separation"]


def test_suggest_settings_on_a_large_set_sweeps_a_sample_but_speaks_in_full_sizes(monkeypatch):
    points, _, _ = nested_blobs(per=120)  # 1,080 points; the sweep sees 360 of them
    from pipeline.stages import cluster as cluster_mod

    monkeypatch.setattr(quality, "SUGGEST_SAMPLE", 360)
    built, real = [], cluster_mod.HdbscanTree

    def recording(coords, min_samples):
        built.append((len(coords), min_samples))
        return real(coords, min_samples)

    monkeypatch.setattr(cluster_mod, "HdbscanTree", recording)
    suggestion = quality.suggest_settings(projection_of(points), min_cluster_sizes=[30, 60], min_samples=[15])
    assert built[0] == (360, 5)  # the sample, with min_samples scaled to it
    table = suggestion.table
    assert table["min_cluster_size"].tolist() == [30, 60]  # the sizes the user would set
    assert (table["clusters"] == 9).all()  # 30 and 60 of 1,080 = 10 and 20 of the 360 sampled
    assert suggestion.settings["cluster.min_samples"] == 15


def test_suggest_settings_sweeps_min_samples_when_asked_and_matches_the_stage():
    points, _, _ = nested_blobs()
    suggestion = quality.suggest_settings(
        projection_of(points), min_cluster_sizes=[5, 20], min_samples=[2, 8]
    )
    table = suggestion.table
    assert sorted(zip(table["min_cluster_size"], table["min_samples"], strict=True)) == [
        (5, 2),
        (5, 8),
        (20, 2),
        (20, 8),
    ]
    row = suggestion.table.iloc[0]
    stage = cluster(
        projection_of(points),
        ClusterParams(min_cluster_size=int(row.min_cluster_size), min_samples=int(row.min_samples)),
    )
    assert stage.n_clusters == row.clusters


# --- the cluster tree ---------------------------------------------------------------------------


def test_the_tree_joins_blobs_of_a_family_first_and_cuts_to_a_coarser_level():
    points, family, blob = nested_blobs()
    clustering = hdbscan(points)
    tree = quality.cluster_tree(clustering.labels, np.ones(len(points)), points)
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
    empty = quality.cluster_tree(np.full(5, -1), np.ones(5), np.zeros((5, 2)))
    assert empty.nodes.empty and empty.parent_of() == {} and empty.to_records() == [] and empty.cut(2) == {}
    one = quality.cluster_tree(np.array([0, 0, 0, -1]), np.ones(4), np.arange(8.0).reshape(4, 2))
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


def test_about_k_through_the_pipeline(topic_table, cache_dir, fake_embedder):
    result, _ = run_collect(topic_table, config_for(**{"cluster.n_clusters": 2}), cache_dir, fake_embedder)
    assert result.n_clusters == 2
    assert result.manifest()["resolved"]["n_clusters"] == 2


def test_the_automatic_level_uses_no_absolute_distance():
    points = np.zeros((20, 5), dtype=np.float32)
    for method in ("pca", "none", "umap"):  # the pieces are HDBSCAN's finest selection
        assert auto_epsilon(projection_of(points, method)) == 0.0
    with pytest.raises(Exception, match="cluster.epsilon"):
        ClusterParams(epsilon=-0.5)


# --- keywords -----------------------------------------------------------------------------------


def test_keywords_join_word_forms_and_drop_stop_words():
    texts = [
        "the app crashes when I open it",
        "apps crash all the time",
        "my app crashed again",
        "crashing app after the update",
        "refund my money please",
        "I want a refund for this",
        "refunds take too long",
        "still waiting for the refund money",
    ]
    frame = label_groups(texts, [0, 0, 0, 0, 1, 1, 1, 1])
    crash = frame.loc[0, "keywords"]
    assert crash[0] == "app crash"  # app/apps and crash/crashes/crashed/crashing counted as one
    stems = [terms.Stemmer(["en"])(w) for k in crash for w in k.split()]
    assert stems.count("crash") == 1 and stems.count("app") == 1  # no "apps" or "crashes" beside it
    everything = [w for kws in frame["keywords"] for k in kws for w in k.split()]
    assert not {"the", "my", "for", "this", "i", "it", "a"} & set(everything)
    assert frame.loc[1, "keywords"][0].startswith("refund")  # refund and refunds as one


@pytest.mark.parametrize(
    ("language", "texts", "stop"),
    [
        (
            "es",
            ["la aplicación se cierra cuando abro la cámara", "la cámara no funciona en la aplicación"],
            {"la", "se", "en", "no", "cuando"},
        ),
        (
            "de",
            ["die App stürzt ab wenn ich die Kamera öffne", "die Kamera ist nach dem Update kaputt"],
            {"die", "ich", "ist", "nach", "dem", "wenn"},
        ),
        (
            "fr",
            [
                "l'application plante quand j'ouvre la caméra",
                "la caméra ne marche pas avec cette application",
            ],
            {"la", "ne", "pas", "avec", "cette", "quand"},
        ),
        (
            "pt",
            ["o aplicativo fecha quando abro a câmera", "a câmera não funciona com o aplicativo"],
            {"não", "com", "quando"},
        ),
        (
            "it",
            ["l'app si blocca quando apro la fotocamera", "la fotocamera non funziona con questa app"],
            {"si", "la", "non", "con", "questa"},
        ),
    ],
)
def test_stop_words_of_other_languages_are_found_and_dropped(language, texts, stop):
    texts = texts + [f"{text} {n}" for text in texts for n in (2, 3)]  # six distinct texts
    assert terms.detect_languages(texts) == [language]
    frame = label_groups(texts + ["refund money please", "money back refund"], [0] * 6 + [1, 1])
    words = {w for k in frame.loc[0, "keywords"] for w in k.split()}
    assert words and not stop & words


def test_chinese_and_japanese_get_words_not_sentences():
    chinese = [
        "我无法登录我的账户",
        "登录失败，账户被锁定",
        "账户登录一直失败",
        "退款什么时候到账",
        "我要申请退款",
        "退款还没有到账",
    ]
    frame = label_groups(chinese, [0, 0, 0, 1, 1, 1])
    assert frame.loc[0, "keywords"][:2] == ["登录", "账户"]  # log in, account
    assert frame.loc[1, "keywords"][0] == "退款"  # refund
    assert frame.loc[0, "label"] == "登录, 账户, 失败"
    everything = [k for kws in frame["keywords"] for k in kws]
    assert all(2 <= len(k) <= 4 for k in everything)  # words, never a whole text, never a particle
    assert not {"我", "的", "了"} & set(everything)
    japanese = [
        "アプリがクラッシュしました",
        "起動するとアプリがクラッシュする",
        "ログインできません",
        "パスワードでログインできない",
    ]
    frame = label_groups(japanese, [0, 0, 1, 1])
    assert frame.loc[0, "keywords"][:2] == ["アプリ", "クラッシュ"]  # app, crash
    assert frame.loc[1, "keywords"][0] == "ログイン"  # log in
    assert not {"が", "を", "しました", "すると"} & {k for kws in frame["keywords"] for k in kws}


def test_scripts_without_spaces_and_without_a_tokenizer_get_letter_trigrams():
    thai = ["แอปค้างบ่อยมาก", "แอปค้างตลอดเวลา", "ขอเงินคืนด้วย", "ต้องการเงินคืน"]
    frame = label_groups(thai, [0, 0, 1, 1])
    freeze = frame.loc[0, "keywords"]
    assert {"ค้าง", "แอป"} <= set(freeze[:2])  # "freezes", "app": the trigrams both texts share
    assert any("งินคื" in k for k in frame.loc[1, "keywords"])  # from เงินคืน, "refund"
    marks = ("Mn", "Mc")
    assert all(terms.unicodedata.category(k[0]) not in marks for kws in frame["keywords"] for k in kws)
    assert not any(terms.overlaps(a, b) for a in freeze for b in freeze if a != b)  # no near-duplicates


def test_duplicates_count_with_their_multiplicity_in_sizes_and_keywords():
    texts = ["card declined at shop", "pin blocked at shop"] + ["card declined"] * 5 + ["pin blocked"]
    frame = label_groups(texts, [0, 0, 0, 0, 0, 0, 0, 0])
    assert frame.loc[0, "size"] == 8
    keywords = frame.loc[0, "keywords"]
    assert keywords.index("card declined") < keywords.index("pin blocked")  # 6 rows against 2


def test_two_clusters_never_share_alabel_groups():
    texts = ["card declined"] * 2 + ["card declined today"] * 2 + ["card declined again"]
    frame = label_groups(texts, [0, 0, 1, 1, 2])
    assert frame["label"].nunique() == len(frame)


def test_stop_word_setting_accepts_language_codes():
    from pipeline import PipelineConfig

    config = PipelineConfig().with_values({"label.stop_words": "en,de"})
    assert config.label.stop_words == "en,de"
    with pytest.raises(Exception, match="label.stop_words"):
        PipelineConfig().with_values({"label.stop_words": "klingon"})


def test_languages_are_detected_from_a_few_texts_but_not_from_stray_words():
    english = [f"the app crashes when I open it on day {n}" for n in range(60)]
    spanish = ["la aplicación se cierra cuando abro la cámara", "no puedo iniciar sesión en mi cuenta"]
    assert terms.detect_languages(english) == ["en"]
    assert terms.detect_languages(english + spanish) == ["en", "es"]
    stray = [f"a la carte menu {n} and the de facto standard" for n in range(10)]  # stray "la", "de"
    assert terms.detect_languages(english + stray) == ["en"]
    assert terms.detect_languages(english + ["我无法登录我的账户", "退款还没有到账"]) == ["en", "zh"]
    mojibake = ["caf茅 menu", "na茂ve 鈥 text"]  # UTF-8 read as GBK: a stray Han character, not Chinese
    assert terms.detect_languages(english + mojibake) == ["en"]
