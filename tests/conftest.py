"""Tiny corpora and a fake embedder: fast, deterministic, and topic-aware.

The fake embedder turns each word into a fixed random direction and sums them, so texts
sharing words land close together: enough for clustering to find topics in tests.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit.testing.v1.app_test as app_test_module
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

import pipeline
import pipeline.stages
from pages.ui import runbox
from pipeline import PipelineConfig, Runtime, Table
from pipeline.store import Tokens

# The app loads the real embedding model and UMAP's code in a thread on its first page view; in
# tests that thread would run beside them (and through their patched stage functions). The tests
# of the preload itself call it directly.
os.environ["CLUSTERLAB_PRELOAD_MODEL"] = "false"

TOPICS = {
    "billing": ["refund", "charged", "invoice", "price", "subscription", "payment", "billing", "money"],
    "crash": ["crash", "freeze", "update", "bug", "screen", "restart", "broken", "closes"],
    "login": ["login", "password", "reset", "account", "locked", "code", "email", "signin"],
    "praise": ["love", "great", "easy", "helpful", "beautiful", "simple", "amazing", "favourite"],
}


class FakeEmbedder:
    """Word-sum embeddings; counts calls and can fail on a chosen call."""

    def __init__(self, dim: int = 32, name: str = "fake-words", fail_on_call: int | None = None):
        self.dim = dim
        self.identity = f"fake:{name}:{dim}"
        self.calls: list[int] = []
        self.fail_on_call = fail_on_call

    def _word(self, word: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
        return np.random.default_rng(seed).standard_normal(self.dim)

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(len(texts))
        if self.fail_on_call is not None and len(self.calls) == self.fail_on_call:
            raise RuntimeError(f"injected failure on call {len(self.calls)}")
        out = np.zeros((len(texts), self.dim))
        for i, text in enumerate(texts):
            words = text.lower().split() or [text]
            out[i] = sum(self._word(w) for w in words)
        out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-12
        return out.astype(np.float32)

    @property
    def texts_embedded(self) -> int:
        return sum(self.calls)


def topic_texts(n_per_topic: int = 30, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short texts made of one topic's words; returns (texts, topic per text)."""
    rng = random.Random(seed)
    texts, topics = [], []
    for topic, words in TOPICS.items():
        for _ in range(n_per_topic):
            texts.append(" ".join(rng.sample(words, 4)) + f" {rng.randint(0, 999)}")
            topics.append(topic)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [topics[i] for i in order]


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def cache_dir(tmp_path):
    return tmp_path / "cache"


@pytest.fixture
def topic_table() -> Table:
    texts, topics = topic_texts()
    frame = pd.DataFrame({"id": range(1, len(texts) + 1), "comment": texts, "truth": topics})
    return Table.from_frame(frame, name="topics.csv")


def config_for(column: str = "comment", **values) -> PipelineConfig:
    return PipelineConfig().with_values({"preprocess.text_column": column, **values})


def runtime_for(embedder, **kwargs) -> Runtime:
    kwargs.setdefault("chunk_size", 50)
    kwargs.setdefault("heartbeat_s", 0.5)
    return Runtime(embedder=embedder, **kwargs)


def run_collect(table, config, cache_dir, embedder, **runtime_kwargs):
    """Run and return (result, events)."""
    events: list[pipeline.Event] = []
    result = pipeline.run(
        table,
        config,
        cache_dir=cache_dir,
        runtime=runtime_for(embedder, **runtime_kwargs),
        on_event=events.append,
    )
    return result, events


def computed_stages(events) -> list[str]:
    """Stages that computed (did not load from cache), in order."""
    return [e.stage for e in events if e.kind == "finished" and not e.cached]


def count_calls(monkeypatch, owner, name: str) -> list:
    """Wrap ``owner.name`` (still calling it); every call appends to the returned list."""
    calls: list = []
    real = getattr(owner, name)

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls


# ---------------------------------------------------------------------------- the app (AppTest)

APP = Path(__file__).resolve().parents[1] / "app.py"
STAGES = list(pipeline.stages.names())  # the registry's order (pipeline/stages/__init__.py)


class _NavigationPagesManager(PagesManager):
    """AppTest makes a fresh PagesManager per run, which sees ``pages/`` next to app.py and
    runs the page script alone (Streamlit's old pages-folder mode) on every run after the
    first: app.py's sidebar would vanish. A server switches to st.navigation for good the
    first time app.py calls it; this does the same from the start."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        PagesManager.uses_pages_directory = False


@dataclass
class Harness:
    root: Path
    embedder: FakeEmbedder
    calls: list[str] = field(default_factory=list)  # stage functions that computed, in order
    storages: list[MemoryMediaFileStorage] = field(default_factory=list)
    managers: list[MediaFileManager] = field(default_factory=list)

    def open(self, ws: str | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        if ws is not None:
            at.query_params["ws"] = ws
        return at.run()

    def new_token(self) -> str:
        """A workspace link this server issued (made-up ones start a new workspace)."""
        return Tokens.for_root(self.root).new()

    def workspace_dir(self, at: AppTest) -> Path:
        return self.root / at.query_params["ws"]

    def downloaded(self, at: AppTest, key: str) -> bytes:
        """The bytes a click on the download button ``key`` gives the browser."""
        (button,) = [b for b in at.get("download_button") if b.key == key]
        url = button.proto.url
        if button.proto.deferred_file_id:  # built on click: click it
            url = self.managers[-1].execute_deferred(button.proto.deferred_file_id)
        return self.storages[-1].get_file(url.rsplit("/", 1)[-1]).content


@pytest.fixture
def app(monkeypatch, tmp_path) -> Harness:
    harness = Harness(root=tmp_path / "workspaces", embedder=FakeEmbedder())
    monkeypatch.setenv("CLUSTERLAB_WORKSPACES_DIR", str(harness.root))
    monkeypatch.setattr(
        runbox, "runtime", lambda: pipeline.Runtime(embedder=harness.embedder, chunk_size=50, heartbeat_s=0.5)
    )
    for stage in STAGES:
        module = importlib.import_module(f"pipeline.stages.{stage}")
        original = getattr(module, stage)

        def counting(*args, _original=original, _stage=stage, **kwargs):
            harness.calls.append(_stage)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, stage, counting)

    class RecordingStorage(MemoryMediaFileStorage):  # AppTest makes one per run and drops it
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            harness.storages.append(self)

    class RecordingManager(MediaFileManager):  # holds the deferred downloads' callables
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            harness.managers.append(self)

    monkeypatch.setattr(app_test_module, "MemoryMediaFileStorage", RecordingStorage)
    monkeypatch.setattr(app_test_module, "MediaFileManager", RecordingManager)
    monkeypatch.setattr(app_test_module, "PagesManager", _NavigationPagesManager)
    monkeypatch.setattr(PagesManager, "uses_pages_directory", False)
    return harness


def label_groups(texts: list[str], groups: list[int], **params) -> pd.DataFrame:
    """The label stage's cluster table for ``texts`` put in ``groups`` by hand (by id)."""
    from pipeline import LabelParams, PreprocessParams
    from pipeline.stages.label import label
    from pipeline.stages.preprocess import preprocess
    from pipeline.types import Clustering, Embeddings

    corpus = preprocess(Table.from_frame(pd.DataFrame({"t": texts})), PreprocessParams(text_column="t"))
    ids = np.zeros(corpus.n_texts, dtype=np.int64)
    ids[corpus.row_to_unique] = groups  # duplicates carry the same group
    clustering = Clustering(ids, ids, np.ones(len(ids), np.float32), "test")
    vectors = np.eye(corpus.n_texts, max(corpus.n_texts, 2), dtype=np.float32)
    params = LabelParams(**params)
    return label(corpus, Embeddings(vectors, "test"), clustering, params).clusters.set_index("id")
