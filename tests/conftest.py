"""Tiny corpora and a fake embedder: fast, deterministic, and topic-aware.

The fake embedder turns each word into a fixed random direction and sums them, so texts
sharing words land close together: enough for clustering to find topics in tests.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pandas as pd
import pytest

import pipeline
from pipeline import PipelineConfig, Runtime, Table

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
