"""The runner: events, cache behaviour stage by stage, resume, determinism, plan."""

from __future__ import annotations

import dataclasses
import re
import shutil
import threading

import numpy as np
import pandas as pd
import pytest

import pipeline
from pipeline import PipelineError, StageError, Table
from pipeline.cache import RECENT_OUTPUTS
from pipeline.stages import cluster as cluster_mod
from tests.conftest import (
    STAGES,
    FakeEmbedder,
    computed_stages,
    config_for,
    count_calls,
    run_collect,
    runtime_for,
)


def test_events_describe_every_stage(topic_table, cache_dir, fake_embedder):
    result, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    started = [e.stage for e in events if e.kind == "started"]
    finished = [e.stage for e in events if e.kind == "finished"]
    assert started == STAGES and finished == STAGES
    for event in events:
        assert event.kind in pipeline.events.KINDS
        assert 0.0 <= event.fraction <= 1.0
        assert event.elapsed_s >= 0.0
    embed_progress = [e for e in events if e.stage == "embed" and e.kind == "progress"]
    # 120 texts in chunks of 50: each chunk is announced, then counted, fractions rising to 1
    assert [round(e.fraction, 2) for e in embed_progress] == [0.0, 0.0, 0.42, 0.42, 0.83, 0.83, 1.0]
    assert embed_progress[0].message == f"embedding with {fake_embedder.identity}"
    assert embed_progress[1].message == "embedding chunk 1/3 (50 texts)"
    assert embed_progress[-1].message == "chunk 3/3: 120 of 120 texts"
    assert result.n_clusters == 4


def test_event_json_has_the_documented_keys(topic_table, cache_dir, fake_embedder):
    import json

    _, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    data = json.loads(events[0].to_json())
    assert set(data) == {"stage", "kind", "fraction", "elapsed_s", "cached", "message"}


def test_second_identical_run_computes_nothing(topic_table, cache_dir, fake_embedder):
    run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    calls = len(fake_embedder.calls)
    result, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert computed_stages(events) == []
    assert all(e.cached for e in events if e.kind in ("started", "finished"))
    assert len(fake_embedder.calls) == calls
    assert result.n_clusters == 4


def test_cluster_setting_recomputes_only_cluster_and_label(
    topic_table, cache_dir, fake_embedder, monkeypatch
):
    run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    calls = count_calls(monkeypatch, cluster_mod, "cluster")
    _, events = run_collect(
        topic_table, config_for(**{"cluster.min_cluster_size": 12}), cache_dir, fake_embedder
    )
    assert computed_stages(events) == ["cluster", "label"]
    assert len(calls) == 1


def test_relabeling_after_a_recluster_reuses_the_word_counts(
    topic_table, cache_dir, fake_embedder, monkeypatch
):
    from pipeline.stages import label as label_mod

    calls = count_calls(monkeypatch, label_mod, "_vectorize")
    first, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    again, events = run_collect(
        topic_table, config_for(**{"cluster.min_cluster_size": 12}), cache_dir, fake_embedder
    )
    assert computed_stages(events) == ["cluster", "label"] and len(calls) == 1
    assert again.labels.clusters["keywords"].map(len).gt(0).all()  # keywords still found
    run_collect(topic_table, config_for(**{"label.max_ngram": 1}), cache_dir, fake_embedder)
    assert len(calls) == 2  # a setting that changes the counts counts again


def test_a_recluster_hashes_the_texts_and_reads_the_word_counts_once_per_process(
    topic_table, cache_dir, fake_embedder, monkeypatch
):
    from pipeline import cache as cache_mod

    first, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    hashed = count_calls(monkeypatch, cache_mod, "texts_digest")
    loaded = count_calls(monkeypatch, cache_mod.numpy_pickle, "load")
    for size in (9, 11):
        tuned, events = run_collect(
            topic_table, config_for(**{"cluster.min_cluster_size": size}), cache_dir, fake_embedder
        )
        assert computed_stages(events) == ["cluster", "label"]
        assert tuned.labels.clusters["keywords"].map(len).gt(0).all()
    assert hashed == []  # the corpus's texts were hashed by the first run, not by each step
    assert [str(c[0]) for c in loaded if "label_terms" in str(c[0])] == []  # nor its counts read back
    assert cache_mod.array_texts_digest(first.corpus.texts) == cache_mod.texts_digest(first.corpus.texts)
    other = first.corpus.texts.copy()
    other[0] = other[0] + " changed"
    assert cache_mod.array_texts_digest(other) != cache_mod.array_texts_digest(first.corpus.texts)


def test_a_new_min_cluster_size_reuses_hdbscans_tree(topic_table, cache_dir, fake_embedder, monkeypatch):
    import hdbscan

    fits = count_calls(monkeypatch, hdbscan.HDBSCAN, "fit")
    first, _ = run_collect(topic_table, config_for(**{"cluster.min_samples": 4}), cache_dir, fake_embedder)
    assert len(fits) >= 1
    fits.clear()
    again, events = run_collect(
        topic_table,
        config_for(**{"cluster.min_samples": 4, "cluster.min_cluster_size": 14}),
        cache_dir,
        fake_embedder,
    )
    assert computed_stages(events) == ["cluster", "label"]
    assert len(fits) == 0  # the main fit and the stability re-fits only re-select clusters
    assert again.clustering.resolved["min_cluster_size"] == 14 and again.n_clusters >= 1
    fits.clear()
    run_collect(topic_table, config_for(**{"cluster.min_samples": 3}), cache_dir, fake_embedder)
    assert len(fits) >= 1  # another min_samples builds another tree


def test_reduce_setting_recomputes_reduce_cluster_label(topic_table, cache_dir, fake_embedder):
    run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    _, events = run_collect(topic_table, config_for(**{"reduce.n_neighbors": 8}), cache_dir, fake_embedder)
    assert computed_stages(events) == ["reduce", "cluster", "label"]


def test_other_model_recomputes_from_embed(topic_table, cache_dir, fake_embedder):
    run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    other = FakeEmbedder(name="other-model")
    _, events = run_collect(topic_table, config_for(), cache_dir, other)
    assert computed_stages(events) == ["embed", "reduce", "cluster", "label"]
    assert other.texts_embedded == 120


def test_killed_embedding_resumes_at_the_failed_chunk(topic_table, cache_dir):
    failing = FakeEmbedder(fail_on_call=3)  # chunks 1 and 2 finish, chunk 3 dies
    with pytest.raises(StageError) as info:
        run_collect(topic_table, config_for(), cache_dir, failing)
    assert info.value.stage == "embed"
    assert "resumes here" in info.value.user_message()
    healthy = FakeEmbedder()
    result, events = run_collect(topic_table, config_for(), cache_dir, healthy)
    assert healthy.calls == [20]  # only the last chunk (120 = 50 + 50 + 20) was embedded again
    assert computed_stages(events) == STAGES[1:]
    messages = [e.message for e in events if e.stage == "embed" and e.kind == "progress"]
    assert sum("chunk from cache" in m for m in messages) == 2
    assert result.embeddings.vectors.shape == (120, 32)


def test_failure_in_a_later_stage_keeps_earlier_ones(topic_table, cache_dir, fake_embedder, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(cluster_mod, "cluster", broken)
    events = []
    with pytest.raises(StageError) as info:
        pipeline.run(
            topic_table,
            config_for(),
            cache_dir=cache_dir,
            runtime=runtime_for(fake_embedder),
            on_event=events.append,
        )
    assert info.value.stage == "cluster"
    assert "unexpected ValueError: boom" in info.value.user_message()
    failed = [e for e in events if e.kind == "failed"]
    assert [e.stage for e in failed] == ["cluster"]
    monkeypatch.undo()
    _, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert computed_stages(events) == ["cluster", "label"]


def test_a_process_reads_each_stage_output_once_while_it_is_on_disk(topic_table, cache_dir, fake_embedder):
    first, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    again, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert computed_stages(events) == [] and again.corpus is first.corpus  # not read back from disk
    tuned, events = run_collect(
        topic_table, config_for(**{"cluster.min_cluster_size": 6}), cache_dir, fake_embedder
    )
    assert computed_stages(events) == ["cluster", "label"] and tuned.projection is first.projection
    for entry in cache_dir.rglob("preprocess/*/output.pkl"):  # cleaned away: what was read is not used
        shutil.rmtree(entry.parent)
    fresh, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert computed_stages(events)[0] == "preprocess" and fresh.corpus is not first.corpus


def test_corrupt_cache_entry_is_recomputed_with_a_warning(topic_table, cache_dir, fake_embedder):
    run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    entries = list(cache_dir.rglob("reduce/*/output.pkl"))
    assert len(entries) == 1
    entries[0].write_bytes(b"not a pickle")
    # this process read the entry before it broke: it keeps using what it read
    result, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert computed_stages(events) == [] and result.n_clusters == 4
    RECENT_OUTPUTS.clear()  # a new process reads the broken file
    result, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    warnings = [e for e in events if e.kind == "warning" and e.stage == "reduce"]
    assert warnings and "could not be read" in warnings[0].message
    assert "reduce" in computed_stages(events)
    assert result.n_clusters == 4


def test_same_input_and_params_give_identical_output(topic_table, tmp_path):
    first, _ = run_collect(topic_table, config_for(), tmp_path / "a", FakeEmbedder())
    second, _ = run_collect(topic_table, config_for(), tmp_path / "b", FakeEmbedder())
    pd.testing.assert_frame_equal(first.table(), second.table())
    assert np.array_equal(first.projection.coords, second.projection.coords)


def test_plan_says_what_loads_and_what_computes(topic_table, cache_dir, fake_embedder):
    runtime = runtime_for(fake_embedder)
    steps = pipeline.plan(topic_table, config_for(), cache_dir=cache_dir, runtime=runtime)
    assert [(s.stage, s.action) for s in steps] == [(s, "compute") for s in STAGES]
    run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    steps = pipeline.plan(
        topic_table, config_for(**{"cluster.method": "leaf"}), cache_dir=cache_dir, runtime=runtime
    )
    assert [s.action for s in steps] == ["load", "load", "load", "compute", "compute"]


def test_plan_counts_cached_embedding_chunks(topic_table, cache_dir):
    with pytest.raises(StageError):
        run_collect(topic_table, config_for(), cache_dir, FakeEmbedder(fail_on_call=2))
    steps = pipeline.plan(topic_table, config_for(), cache_dir=cache_dir, runtime=runtime_for(FakeEmbedder()))
    embed_step = next(s for s in steps if s.stage == "embed")
    assert embed_step.action == "compute" and embed_step.detail == "1 of 3 chunks cached"


def test_reduce_can_be_switched_off(topic_table, cache_dir, fake_embedder):
    result, events = run_collect(
        topic_table, config_for(**{"stages.reduce": False}), cache_dir, fake_embedder
    )
    assert result.projection.method == "none"
    assert result.projection.coords.shape == (120, 32)  # clustered on the full embeddings
    assert result.projection.layout.shape == (120, 2)
    assert result.n_clusters == 4


def test_output_table_keeps_every_row_and_column(cache_dir, fake_embedder):
    frame = pd.DataFrame(
        {
            "id": ["007", "8", "9", "10", "11", "12", "13", "14", "15", "16", "17", "18"],
            "comment": ["refund charged invoice price"] * 3
            + ["crash freeze update bug"] * 3
            + [
                "",
                None,
                "login password reset",
                "login password code",
                "love great easy",
                "love easy simple",
            ],
        }
    )
    table = Table.from_frame(frame)
    result, _ = run_collect(table, config_for(), cache_dir, fake_embedder)
    out = result.table()
    assert list(out.columns) == ["id", "comment", *pipeline.OUTPUT_COLUMNS]
    assert out["id"].tolist() == frame["id"].tolist()
    assert len(out) == 12
    assert out.loc[6, "text_issue"] == "empty" and out.loc[7, "text_issue"] == "missing"
    assert out.loc[[6, 7], "cluster_id"].isna().all()
    assert out.loc[[6, 7], "cluster_label"].isna().all()
    assert out["cluster_id"].dtype == "Int64"
    # exact duplicates share one embedding and one cluster
    assert out.loc[0:2, "cluster_id"].nunique() == 1
    assert result.corpus.n_texts == 6  # 12 rows: 2 without text, 2 texts repeated 3 times


@pytest.mark.parametrize(
    "texts, clusters",
    [
        (["only one text here"], 1),
        (["refund please", "crash on start"], None),
        (["same words"] * 25, 1),
    ],
)
def test_tiny_and_degenerate_inputs_give_a_clear_result(texts, clusters, cache_dir, fake_embedder):
    table = Table.from_frame(pd.DataFrame({"comment": texts}))
    result, events = run_collect(table, config_for(), cache_dir, fake_embedder)
    out = result.table()
    assert len(out) == len(texts)
    assert out["cluster_label"].notna().all()
    if clusters is not None:
        assert result.n_clusters == clusters
    assert result.projection.method == "pca"
    assert any(e.kind == "warning" for e in events)  # the user is told why it looks this way


def test_mixed_languages_emoji_and_long_texts(cache_dir, fake_embedder):
    texts = ["Die App stürzt ab 😡", "アプリが落ちる", "la app se cierra", "love it ❤️", "x" * 5000] * 4
    table = Table.from_frame(pd.DataFrame({"comment": texts}))
    result, events = run_collect(table, config_for(), cache_dir, fake_embedder)
    out = result.table()
    assert out["comment"].tolist() == texts
    assert (out["text_issue"] == "truncated").sum() == 4
    assert any("longer than" in e.message for e in events if e.kind == "warning")


def test_too_large_min_cluster_size_says_what_to_do(topic_table, cache_dir, fake_embedder):
    with pytest.raises(StageError) as info:
        run_collect(topic_table, config_for(**{"cluster.min_cluster_size": 500}), cache_dir, fake_embedder)
    message = info.value.user_message()
    assert message.startswith(
        "cluster: HDBSCAN cannot find clusters in 120 distinct texts with min_cluster_size=500"
    )
    assert "lower cluster.min_cluster_size below 60" in message


def test_missing_column_fails_before_anything_runs(topic_table, cache_dir, fake_embedder):
    with pytest.raises(pipeline.InputError) as info:
        run_collect(topic_table, config_for("text"), cache_dir, fake_embedder)
    assert "'id', 'comment', 'truth'" in info.value.user_message()
    assert fake_embedder.calls == []


def test_ten_thousand_rows_go_through_the_same_code(cache_dir):
    rng = np.random.default_rng(1)
    words = [
        w for topic in ("alpha", "beta", "gamma", "delta", "omega") for w in [f"{topic}{i}" for i in range(6)]
    ]
    topics = rng.integers(0, 5, 10_000)
    texts = [" ".join(rng.choice(words[t * 6 : (t + 1) * 6], 3)) + f" n{i}" for i, t in enumerate(topics)]
    table = Table.from_frame(pd.DataFrame({"comment": texts}))
    embedder = FakeEmbedder(dim=16)
    result, events = run_collect(table, config_for(), cache_dir, embedder, chunk_size=2000)
    assert len(result.table()) == 10_000
    from sklearn.metrics import homogeneity_score

    out = result.table()
    clustered = out["cluster_id"].to_numpy() >= 0
    assert result.n_clusters >= 5
    assert homogeneity_score(topics[clustered], out["cluster_id"].to_numpy()[clustered]) > 0.9
    assert [e.stage for e in events if e.kind == "finished"] == STAGES


def test_stream_stops_cleanly_when_the_consumer_leaves(topic_table, cache_dir, fake_embedder):
    events = pipeline.stream(
        topic_table, config_for(), cache_dir=cache_dir, runtime=runtime_for(fake_embedder)
    )
    iterator = iter(events)
    first = next(iterator)
    assert first.stage == "preprocess" and first.kind == "started"
    iterator.close()
    with pytest.raises(RuntimeError):
        _ = events.result


def test_errors_share_one_base_class():
    for cls in (pipeline.InputError, pipeline.ConfigError, pipeline.StageError):
        assert issubclass(cls, PipelineError)


def test_a_rerun_from_the_cache_reuses_the_cluster_tree(topic_table, cache_dir, fake_embedder):
    first, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    again, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert again.tree is first.tree  # the app re-runs the cached pipeline on every interaction
    other, _ = run_collect(
        topic_table, config_for(**{"cluster.min_cluster_size": 12}), cache_dir, fake_embedder
    )
    assert other.tree is not first.tree and other.tree.n_clusters == other.n_clusters


# --- the runner reads the stages' declarations ---------------------------------------------------


def test_the_runner_never_names_a_stage():
    import inspect

    from pipeline import runner

    source = inspect.getsource(runner)
    assert not [name for name in STAGES if f'"{name}"' in source or f"'{name}'" in source]


def test_summaries_and_plan_details_come_from_the_declarations(
    topic_table, cache_dir, fake_embedder, monkeypatch
):
    import dataclasses

    from pipeline import runner

    changed = {
        "reduce": {"summary": lambda projection: f"{projection.method} says hello"},
        "cluster": {"plan_detail": lambda plan: f"would cluster with {plan.config.cluster.method}"},
    }
    monkeypatch.setattr(
        runner, "STAGES", tuple(dataclasses.replace(s, **changed.get(s.name, {})) for s in runner.STAGES)
    )
    _, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    finished = {e.stage: e.message for e in events if e.kind == "finished"}
    assert finished["reduce"] == "computed: umap says hello"
    assert finished["embed"] == "computed: 120 vectors of 32 dimensions"
    steps = pipeline.plan(
        topic_table,
        config_for(**{"cluster.method": "leaf"}),
        cache_dir=cache_dir,
        runtime=runtime_for(fake_embedder),
    )
    assert [(s.stage, s.action, s.detail) for s in steps][3] == (
        "cluster",
        "compute",
        "would cluster with leaf",
    )


def test_the_cache_maps_exactly_the_artifacts_a_stage_declares_big(
    topic_table, cache_dir, fake_embedder, monkeypatch
):
    import dataclasses

    from pipeline import runner

    run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    loaded, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert isinstance(loaded.embeddings.vectors, np.memmap) and not loaded.embeddings.vectors.flags.writeable
    assert isinstance(loaded.projection.coords, np.memmap)
    assert not isinstance(loaded.clustering.labels, np.memmap)
    monkeypatch.setattr(runner, "STAGES", tuple(dataclasses.replace(s, mmap=False) for s in runner.STAGES))
    plain, events = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert computed_stages(events) == []  # the same entries, read without memory maps
    assert not isinstance(plain.embeddings.vectors, np.memmap)
    np.testing.assert_array_equal(plain.embeddings.vectors, loaded.embeddings.vectors)


def test_plan_says_when_reduce_is_off(topic_table, cache_dir, fake_embedder):
    steps = pipeline.plan(
        topic_table,
        config_for(**{"stages.reduce": False}),
        cache_dir=cache_dir,
        runtime=runtime_for(fake_embedder),
    )
    assert [(s.stage, s.detail) for s in steps][2] == (
        "reduce",
        "reduce is off: clustering on full embeddings",
    )


# --- loading the model: a timed step, once per process (issue 13, bug 8) --------------------------


class LoadCounting(FakeEmbedder):
    """A backend's embedder whose weights "load" once, ahead or on the first encode, and count."""

    def __init__(self, model: str, loads: list[str]):
        super().__init__(name=model)
        self.loads = loads
        self.loaded = False
        self._lock = threading.Lock()  # as the real backends: one load per object

    def load(self, report=lambda fraction, message: None) -> None:
        with self._lock:
            if not self.loaded:
                report(0.5, "reading its weights")
                self.loads.append(self.identity)
                self.loaded = True

    def encode(self, texts):
        self.load()
        return super().encode(texts)


@pytest.fixture
def counted(monkeypatch, tmp_path) -> list[str]:
    """A backend "counted" registered for the test, in a process that has loaded no model yet;
    returns the loads, in order."""
    from pipeline import embedders

    loads: list[str] = []
    monkeypatch.setitem(
        embedders.BACKENDS,
        "counted",
        embedders.Backend(
            name="counted",
            label="Counted",
            load=lambda model, device, batch_size, models: LoadCounting(model, loads),
            libraries=(),
        ),
    )
    monkeypatch.setattr(embedders, "MODELS", embedders.LoadedModels())
    monkeypatch.setenv("CLUSTERLAB_MODELS_DIR", str(tmp_path / "models"))
    return loads


def run_counted(table, cache_dir, model: str = "tiny-words", **values):
    config = config_for(**{"embed.backend": "counted", "embed.model": model, **values})
    return run_collect(table, config, cache_dir, None)


def embed_messages(events) -> list[str]:
    return [e.message for e in events if e.stage == "embed" and e.kind == "progress"]


def test_a_server_process_loads_a_model_once_and_the_load_is_a_timed_step(topic_table, tmp_path, counted):
    first, events = run_counted(topic_table, tmp_path / "dataset-a")
    # the app: every dataset has a cache of its own, in the same server process
    second, again = run_counted(topic_table, tmp_path / "dataset-b")
    assert counted == ["fake:tiny-words:32"]  # loaded once
    messages = embed_messages(events)
    assert messages[0] == "loading the model tiny-words (once per process)"
    assert messages[1] == "loading tiny-words: reading its weights"
    assert re.fullmatch(r"model tiny-words loaded in \d+\.\d s", messages[2])
    assert messages[3] == "embedding chunk 1/3 (50 texts)"  # what the heartbeat repeats meanwhile
    fractions = [e.fraction for e in events if e.stage == "embed" and e.kind == "progress"]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1
    # the load is a tenth of the stage (its own report halfway through), the texts the rest
    assert fractions[1:3] == [pytest.approx(0.05), pytest.approx(0.1)]
    embed = next(s for s in first.manifest()["stages"] if s["stage"] == "embed")
    assert set(embed["steps"]) == {"loading the model"} and embed["steps"]["loading the model"] >= 0
    finished = next(e for e in events if e.stage == "embed" and e.kind == "finished")
    assert re.search(r"; loading the model took \d+\.\d s$", finished.message)
    assert embed_messages(again)[0] == "the model tiny-words is loaded already (once per process)"
    assert "steps" not in next(s for s in second.manifest()["stages"] if s["stage"] == "embed")


def test_another_model_loads_on_its_own_and_a_process_keeps_the_last_two(topic_table, tmp_path, counted):
    run_counted(topic_table, tmp_path / "a", model="one")
    run_counted(topic_table, tmp_path / "b", model="two")
    assert counted == ["fake:one:32", "fake:two:32"]
    run_counted(topic_table, tmp_path / "c", model="one")  # kept: no load
    run_counted(topic_table, tmp_path / "d", model="three")  # "two" was used longest ago: dropped
    run_counted(topic_table, tmp_path / "e", model="one")
    assert counted == ["fake:one:32", "fake:two:32", "fake:three:32"]
    run_counted(topic_table, tmp_path / "f", model="two")
    assert counted[-1] == "fake:two:32" and len(counted) == 4


def test_two_runs_at_once_load_a_model_once(topic_table, tmp_path, counted):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        done = [pool.submit(run_counted, topic_table, tmp_path / name) for name in ("a", "b")]
        results = [d.result()[0] for d in done]
    assert counted == ["fake:tiny-words:32"] and all(r.n_clusters == 4 for r in results)


def test_a_warmed_server_has_the_model_and_umap_ready_before_its_first_run(topic_table, tmp_path, counted):
    """The app warms each server process on its first page view; its first clustering then
    starts embedding at once (issue 13: the first 1,000-text clustering within 10 s)."""
    from pipeline.config import EmbedParams
    from pipeline.warmup import warm_server

    done = warm_server(EmbedParams(backend="counted", model="tiny-words"), pipeline.Runtime(), ("json",))
    assert counted == ["fake:tiny-words:32"]  # under the key a run asks for: not loaded again below
    assert re.fullmatch(r"the embedding model: fake:tiny-words:32 loaded in \d+\.\d s", done[0])
    assert re.fullmatch(r"UMAP's compiled code: (already warm|compiled)\b.* in \d+\.\d s", done[1])
    assert re.fullmatch(r"import json: imported in \d+\.\d s", done[2])
    result, events = run_counted(topic_table, tmp_path / "first-dataset")
    assert counted == ["fake:tiny-words:32"]
    assert embed_messages(events)[0] == "the model tiny-words is loaded already (once per process)"
    assert "steps" not in next(s for s in result.manifest()["stages"] if s["stage"] == "embed")


def test_warming_up_leaves_alone_what_it_should_not_load(counted, monkeypatch):
    """Turned off (the operator's preload_model), a model given at run time, a backend that
    builds its model first (minutes, with progress the first run shows), a broken import: no
    load, nothing raised, and what happened is said."""
    from pipeline import embedders, warmup
    from pipeline.config import EmbedParams

    monkeypatch.setattr(warmup, "compile_numba", lambda: pytest.fail("not asked for"))
    params = EmbedParams(backend="counted", model="tiny-words")
    assert warmup.warm_server(params, pipeline.Runtime(), model=False) == []
    monkeypatch.setattr(warmup, "compile_numba", lambda: "already warm")
    given = warmup.warm_server(params, pipeline.Runtime(embedder=FakeEmbedder()), model=True)
    assert given[0].startswith("the embedding model: given at run time, nothing to load")
    built = dataclasses.replace(embedders.BACKENDS["counted"], name="built", builds=True)
    monkeypatch.setitem(embedders.BACKENDS, "built", built)
    left = warmup.warm_server(EmbedParams(backend="built"), pipeline.Runtime(), ("no_such_module_here",))
    assert left[0].startswith("the embedding model: built builds its model first: left to the first run")
    assert left[2] == "import no_such_module_here: failed (see the log)"
    assert counted == []


# --- a reload from the cache reports the computing run's times (issue 13, item 10) --------------


def test_a_reload_from_the_cache_reports_the_seconds_of_the_run_that_computed_it(
    topic_table, cache_dir, fake_embedder
):
    first, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    again, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    computed = {s["stage"]: s for s in first.manifest()["stages"]}
    reloaded = {s["stage"]: s for s in again.manifest()["stages"]}
    for stage in STAGES:
        assert computed[stage]["cached"] is False and "reload_seconds" not in computed[stage]
        assert reloaded[stage]["cached"] is True
        assert reloaded[stage]["seconds"] == computed[stage]["seconds"]  # the first run's
        assert reloaded[stage]["reload_seconds"] >= 0  # and the reload's own, apart
        assert reloaded[stage]["key"] == computed[stage]["key"]
    stat = next(s for s in again.stages if s.stage == "reduce")
    assert stat.cached and stat.computed_s == next(s for s in first.stages if s.stage == "reduce").seconds
    changed, _ = run_collect(
        topic_table, config_for(**{"cluster.min_cluster_size": 12}), cache_dir, fake_embedder
    )
    partly = {s["stage"]: s for s in changed.manifest()["stages"]}
    assert partly["embed"]["seconds"] == computed["embed"]["seconds"] and partly["embed"]["cached"]
    assert partly["cluster"]["cached"] is False and "reload_seconds" not in partly["cluster"]


def test_a_cache_without_timings_reports_unknown_seconds_not_the_reload(
    topic_table, cache_dir, fake_embedder
):
    import shutil

    from pipeline.runner import TIMINGS

    run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    for folder in cache_dir.rglob(TIMINGS):  # a cache written before timings were kept
        shutil.rmtree(folder)
    again, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert all(s["seconds"] is None and s["reload_seconds"] >= 0 for s in again.manifest()["stages"])
