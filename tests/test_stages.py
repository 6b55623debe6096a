"""Stage functions on their own: reduce, cluster and label with tiny inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import ClusterParams, ConfigError, LabelParams, PreprocessParams, ReduceParams, StageError
from pipeline.clustering.hdbscan import auto_min_cluster_size
from pipeline.stages.cluster import cluster
from pipeline.stages.label import ctfidf, label, unique_labels
from pipeline.stages.preprocess import preprocess
from pipeline.stages.reduce import exact_knn, reduce
from pipeline.types import Clustering, Embeddings, Projection, Table


def blobs(n_per: int = 40, centers: int = 3, dim: int = 8, seed: int = 0, spread: float = 0.05):
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centers, dim)) * 3
    points = np.concatenate([c + rng.standard_normal((n_per, dim)) * spread for c in middle])
    truth = np.repeat(np.arange(centers), n_per)
    return points.astype(np.float32), truth


def projection_of(points: np.ndarray) -> Projection:
    return Projection(coords=points, layout=points[:, :2], method="test")


def test_exact_knn_matches_brute_force():
    points, _ = blobs()
    indices, distances = exact_knn(points, 5, "euclidean")
    full = np.linalg.norm(points[:, None] - points[None], axis=2)
    assert (indices[:, 0] == np.arange(len(points))).all()
    np.testing.assert_allclose(distances, np.sort(full, axis=1)[:, :5], atol=1e-4)


def test_reduce_adapts_n_neighbors_to_small_corpora():
    points, _ = blobs(n_per=4, centers=3)  # 12 points, fewer than n_neighbors=15
    projection = reduce(Embeddings(points, "test"), ReduceParams(n_neighbors=15, n_components=3))
    assert projection.method == "umap" and projection.n_neighbors == 11
    assert projection.coords.shape == (12, 3) and projection.layout.shape == (12, 2)
    assert np.isfinite(projection.coords).all()


@pytest.mark.parametrize("n", [1, 2, 5])
def test_reduce_uses_pca_below_umaps_minimum(n):
    points, _ = blobs(n_per=n, centers=1)
    projection = reduce(Embeddings(points, "test"), ReduceParams(n_components=5))
    assert projection.method == "pca"
    assert projection.coords.shape == (n, 5) and np.isfinite(projection.coords).all()


def test_hdbscan_finds_blobs_and_numbers_them_by_size():
    points, truth = blobs(n_per=30, centers=3)
    points = np.concatenate([points, points[:20] + 0.01])  # make the first blob the largest
    result = cluster(projection_of(points), ClusterParams(min_cluster_size=5))
    assert result.n_clusters == 3
    sizes = np.bincount(result.labels[result.labels >= 0])
    assert list(sizes) == sorted(sizes, reverse=True)
    assert result.resolved["min_cluster_size"] == 5


def test_noise_stays_visible_and_assignment_keeps_the_raw_label():
    points, _ = blobs(n_per=30, centers=2, dim=2)
    far = np.array([[40.0, 40.0], [-40.0, 35.0]], dtype=np.float32)
    points = np.concatenate([points, far])
    raw = cluster(projection_of(points), ClusterParams(min_cluster_size=5))
    assert (raw.labels[-2:] == -1).all()
    assigned = cluster(projection_of(points), ClusterParams(min_cluster_size=5, assign_outliers=True))
    # points far from every cluster are not forced into one (tests/clustering/test_assign.py: near ones join)
    assert (assigned.labels[-2:] == -1).all()
    assert (assigned.raw_labels[-2:] == -1).all()
    np.testing.assert_array_equal(assigned.labels[:-2], raw.labels[:-2])


def test_kmeans_gives_the_number_asked_for():
    points, truth = blobs(n_per=20, centers=4)
    result = cluster(projection_of(points), ClusterParams(algorithm="kmeans", n_clusters=4))
    assert result.n_clusters == 4 and result.algorithm == "kmeans"
    assert (result.labels >= 0).all()


def test_kmeans_with_more_clusters_than_texts_says_what_to_do():
    points, _ = blobs(n_per=2, centers=2)
    with pytest.raises(StageError) as info:
        cluster(projection_of(points), ClusterParams(algorithm="kmeans", n_clusters=10))
    assert "set cluster.n_clusters to at most 4" in info.value.user_message()


def test_automatic_min_cluster_size_grows_with_the_corpus():
    # sqrt(n)/6, at least 5 (at most n/4): smaller than before (sqrt(n)/2), so sets of many small
    # topics keep them; the automatic selection epsilon joins the pieces of broad topics again
    assert auto_min_cluster_size(2) == 2
    assert auto_min_cluster_size(12) == 3
    assert auto_min_cluster_size(400) == 5
    assert auto_min_cluster_size(10_000) == 17
    assert auto_min_cluster_size(1_000_000) == 167


def test_all_noise_is_a_warning_not_a_crash():
    rng = np.random.default_rng(3)
    points = rng.uniform(-1, 1, (30, 5)).astype(np.float32)
    warnings = []
    from pipeline.context import detached

    ctx = detached("cluster")
    ctx.warn = warnings.append  # type: ignore[method-assign]
    result = cluster(projection_of(points), ClusterParams(min_cluster_size=15, min_samples=15), ctx)
    if result.n_clusters == 0:
        assert warnings and "Lower cluster.min_cluster_size" in warnings[-1]


def test_min_samples_above_the_corpus_is_clamped_with_a_warning_naming_it():
    from pipeline.context import detached

    points, _ = blobs(n_per=10)
    warnings = []
    ctx = detached("cluster")
    ctx.warn = warnings.append  # type: ignore[method-assign]
    result = cluster(projection_of(points), ClusterParams(min_cluster_size=5, min_samples=500), ctx)
    assert result.resolved["min_samples"] == 29
    assert any("cluster.min_samples=500" in w and "used min_samples=29" in w for w in warnings)
    if result.n_clusters == 0:  # the all-noise warning points at min_samples too
        assert "or cluster.min_samples" in warnings[-1]


def _corpus(texts):
    return preprocess(Table.from_frame(pd.DataFrame({"t": texts})), PreprocessParams(text_column="t"))


def test_label_reads_keywords_counts_duplicates_and_picks_representatives():
    texts = [
        "refund for double charge",
        "refund not received",
        "charged twice refund",
        "app crashes on start",
        "crashes after update",
        "app crashes again",
    ] + ["refund please"] * 4
    corpus = _corpus(texts)
    vectors = np.eye(corpus.n_texts, 8, dtype=np.float32)
    groups = np.array([0 if "refund" in t or "charge" in t else 1 for t in corpus.texts])
    clustering = Clustering(groups, groups, np.ones(len(groups), np.float32), "test")
    labels = label(corpus, Embeddings(vectors, "test"), clustering, LabelParams(n_keywords=3))
    frame = labels.clusters.set_index("id")
    assert frame.loc[0, "size"] == 7  # "refund please" counts 4 times
    assert frame.loc[0, "keywords"][0] == "refund"
    assert "crashes" in frame.loc[1, "label"]
    assert len(frame.loc[0, "representatives"]) == 3
    assert frame["share"].sum() == pytest.approx(1.0)


def test_noise_is_labelled_unclustered_and_listed_last():
    corpus = _corpus(["alpha beta", "alpha gamma", "delta epsilon"])
    groups = np.array([0, 0, -1])
    clustering = Clustering(groups, groups, np.ones(3, np.float32), "test")
    labels = label(corpus, Embeddings(np.eye(3, dtype=np.float32), "t"), clustering, LabelParams())
    assert labels.clusters["id"].tolist() == [0, -1]
    assert labels.clusters["label"].tolist()[-1] == "Unclustered"


def test_texts_without_words_fall_back_to_an_example():
    corpus = _corpus(["😀😀", "👍", "!!!", "??"])
    groups = np.array([0, 0, 1, 1])
    clustering = Clustering(groups, groups, np.ones(4, np.float32), "test")
    labels = label(corpus, Embeddings(np.eye(4, dtype=np.float32), "t"), clustering, LabelParams())
    assert labels.clusters["label"].tolist()[0] in ("😀😀", "👍")
    assert labels.clusters["label"].nunique() == 2


def test_unique_labels_never_repeat():
    named = unique_labels(
        {0: "card, declined", 1: "card, declined", 2: "card, declined"},
        {0: ["card", "declined"], 1: ["card", "declined", "limit"], 2: ["card", "declined"]},
        2,
    )
    assert named == {0: "card, declined", 1: "card, declined, limit", 2: "card, declined (2)"}


def test_ctfidf_prefers_words_specific_to_a_cluster():
    import scipy.sparse as sp

    counts = sp.csr_matrix(np.array([[5, 1, 3], [0, 1, 3]]))
    scores = ctfidf(counts)
    assert scores[0, 0] > scores[0, 2]  # word 0 only in cluster 0 beats word 2 shared by both


def test_large_input_is_fitted_on_a_sample_and_the_rest_follow_their_neighbours():
    from sklearn.metrics import adjusted_rand_score

    from pipeline.context import StageContext

    points, truth = blobs(n_per=1000, centers=4, dim=5, spread=0.3)
    far = np.full((3, 5), 60.0, dtype=np.float32) + np.arange(3, dtype=np.float32)[:, None] * 20
    points = np.concatenate([points, far])
    messages: list[str] = []
    ctx = StageContext(stage="cluster", emit=lambda e: messages.append(e.message))
    params = ClusterParams(min_cluster_size=40, fit_sample=1000)
    sampled = cluster(projection_of(points), params, ctx)
    full = cluster(projection_of(points), ClusterParams(min_cluster_size=40, fit_sample=0))
    assert sampled.resolved["fit_sample"] == 1000 and "fit_sample" not in full.resolved
    assert any("fitted on a sample of 1,000" in m for m in messages)
    assert sampled.n_clusters == full.n_clusters == 4
    assert adjusted_rand_score(truth, sampled.labels[:-3]) > 0.99
    assert (sampled.labels[-3:] == -1).all()  # points far from every sampled cluster stay noise
    assert ((sampled.probabilities > 0) == (sampled.labels >= 0)).all()
    again = cluster(projection_of(points), params)
    np.testing.assert_array_equal(again.labels, sampled.labels)  # the sample is seeded


def test_fit_sample_setting_is_checked():
    with pytest.raises(ConfigError, match="cluster.fit_sample"):
        ClusterParams(fit_sample=10)


# --- the stages' declarations (pipeline/stages/__init__.py) -----------------------------------


def test_every_stage_declares_what_it_reads_makes_and_is_called():
    import dataclasses
    import importlib
    import typing

    from pipeline import Result
    from pipeline.stages import SOURCE, STAGES

    fields = typing.get_type_hints(Result)
    made = {SOURCE}
    for stage in STAGES:
        module = importlib.import_module(f"pipeline.stages.{stage.name}")
        assert module.STAGE is stage and stage.version == module.VERSION
        assert callable(getattr(module, stage.name))  # one verb per module, named for the stage
        assert set(stage.inputs) <= made, stage.name  # only what earlier stages made
        assert stage.output not in made and fields[stage.output] is stage.artifact
        assert stage.title and stage.title[0].isupper()
        made.add(stage.output)
    assert {f.name for f in dataclasses.fields(Result)} >= made - {SOURCE}
    # stages.<name> switches off exactly the stages that say what runs instead
    from pipeline import StagesParams

    optional = {f.name for f in dataclasses.fields(StagesParams)}
    assert optional == {s.name for s in STAGES if s.bypass is not None} == {"reduce"}


def test_a_stage_that_reads_what_is_not_made_yet_is_refused():
    from pipeline.stages import STAGES, check_order

    check_order(STAGES)
    with pytest.raises(RuntimeError, match="'embed' is out of order"):
        check_order((STAGES[1], STAGES[0], *STAGES[2:]))
    with pytest.raises(RuntimeError, match="'preprocess' is out of order"):
        check_order((STAGES[0], STAGES[0]))


def test_the_stages_with_big_arrays_are_the_ones_read_memory_mapped():
    from pipeline.stages import STAGES

    assert [s.output for s in STAGES if s.mmap] == ["embeddings", "projection"]


def test_reduce_switched_off_is_keyed_planned_and_run_as_its_bypass():
    from pipeline import PipelineConfig, Runtime
    from pipeline.stages import reduce as reduce_stage
    from pipeline.stages.base import PlanContext

    stage = reduce_stage.STAGE
    on, off = PipelineConfig(), PipelineConfig().with_values({"stages.reduce": False})
    assert stage.is_on(on) and not stage.is_on(off)
    assert stage.key_params(on, Runtime()) == on.reduce and stage.key_params(off, Runtime()) == "off"
    plan = PlanContext(off, Runtime(), None, {}, {})
    assert stage.detail(plan) == "reduce is off: clustering on full embeddings"
    points, _ = blobs(n_per=10, centers=2, dim=6)
    projection = stage.call({"embeddings": Embeddings(points, "test")}, off, None)
    assert projection.method == "none" and projection.coords is points
    assert stage.summary(projection) == "6 dimensions (none)"
