"""`python -m pipeline run|plan`: outputs, events file, exit codes and error lines."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

import pipeline.__main__ as cli
from pipeline import Runtime
from tests.conftest import FakeEmbedder, topic_texts


@pytest.fixture
def fake_cli(monkeypatch):
    embedder = FakeEmbedder()
    monkeypatch.setattr(cli, "Runtime", lambda **kw: Runtime(embedder=embedder, heartbeat_s=0.5, **kw))
    return embedder


@pytest.fixture
def feedback_csv(tmp_path):
    texts, _ = topic_texts()
    texts[0] = '=HYPERLINK("http://evil.example","click")'
    frame = pd.DataFrame(
        {"ticket": [f"T-{i:03d}" for i in range(len(texts))], "comment": texts, "score": "-5"}
    )
    frame.loc[3, "comment"] = ""
    path = tmp_path / "feedback.csv"
    frame.to_csv(path, index=False)
    return path


def run_cli(args, capsys):
    code = cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_writes_table_summary_manifest_and_events(feedback_csv, tmp_path, fake_cli, capsys):
    out = tmp_path / "out" / "labeled.csv"
    events = tmp_path / "events.jsonl"
    code, stdout, stderr = run_cli(
        [
            "run",
            feedback_csv,
            "--text-column",
            "comment",
            "--out",
            out,
            "--cache-dir",
            tmp_path / "cache",
            "--events",
            events,
            "--chunk-size",
            "50",
        ],
        capsys,
    )
    assert code == 0, stderr
    assert "120 rows -> 4 clusters" in stdout

    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    original = pd.read_csv(feedback_csv, dtype=str, keep_default_na=False)
    assert list(table.columns) == list(original.columns) + [
        "cluster_id",
        "cluster_label",
        "cluster_probability",
        "raw_cluster_id",
        "x",
        "y",
        "text_issue",
    ]
    assert table["ticket"].tolist() == original["ticket"].tolist()
    assert table["score"].eq("-5").all()  # numbers are not mistaken for formulas
    assert table.loc[0, "comment"] == "'" + original.loc[0, "comment"]  # formula neutralised
    assert table.loc[3, "cluster_id"] == "" and table.loc[3, "text_issue"] == "empty"
    assert set(table.loc[table.cluster_id != "", "cluster_id"].astype(int)) <= {-1, 0, 1, 2, 3}

    clusters = pd.read_csv(tmp_path / "out" / "labeled.clusters.csv", encoding="utf-8-sig")
    assert list(clusters.columns) == [
        "id",
        "label",
        "size",
        "share",
        "keywords",
        "representative_texts",
        "parent_id",
    ]
    assert clusters["size"].sum() == 119

    manifest = json.loads((tmp_path / "out" / "labeled.manifest.json").read_text())
    assert manifest["input"]["sha256"] == hashlib.sha256(feedback_csv.read_bytes()).hexdigest()
    assert manifest["config"]["cluster"]["min_cluster_size"] == 0
    assert manifest["resolved"]["min_cluster_size"] >= 2
    assert manifest["seeds"] == {"reduce": 42, "cluster": 42}
    assert {"numpy", "umap-learn", "hdbscan", "sentence-transformers"} <= set(manifest["versions"])
    assert [s["stage"] for s in manifest["stages"]] == ["preprocess", "embed", "reduce", "cluster", "label"]
    assert all(isinstance(s["seconds"], float) and s["cached"] is False for s in manifest["stages"])

    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert all(set(line) == {"stage", "kind", "fraction", "elapsed_s", "cached", "message"} for line in lines)
    assert {e["stage"] for e in lines if e["kind"] == "finished"} == {s["stage"] for s in manifest["stages"]}
    # progress is shown on the terminal (plain lines when stderr is not a terminal)
    assert "embed" in stderr and "100%" in stderr


def test_changed_cluster_setting_loads_embeddings_from_cache(feedback_csv, tmp_path, fake_cli, capsys):
    base = ["run", feedback_csv, "--text-column", "comment", "--cache-dir", tmp_path / "cache"]
    assert run_cli(base + ["--out", tmp_path / "a.csv"], capsys)[0] == 0
    calls = len(fake_cli.calls)
    events = tmp_path / "ev.jsonl"
    code, _, _ = run_cli(
        base + ["--out", tmp_path / "b.csv", "--set", "cluster.min_cluster_size=10", "--events", events],
        capsys,
    )
    assert code == 0 and len(fake_cli.calls) == calls
    finished = {
        e["stage"]: e["cached"]
        for e in map(json.loads, events.read_text().splitlines())
        if e["kind"] == "finished"
    }
    assert finished == {"preprocess": True, "embed": True, "reduce": True, "cluster": False, "label": False}
    manifest = json.loads((tmp_path / "b.manifest.json").read_text())
    assert [s["cached"] for s in manifest["stages"]] == [True, True, True, False, False]


def test_plan_lists_loads_and_computes(feedback_csv, tmp_path, fake_cli, capsys):
    base = [feedback_csv, "--text-column", "comment", "--cache-dir", tmp_path / "cache"]
    run_cli(["run", *base, "--out", tmp_path / "a.csv"], capsys)
    code, stdout, _ = run_cli(["plan", *base, "--set", "reduce.n_neighbors=5"], capsys)
    assert code == 0
    actions = [line.split()[:2] for line in stdout.splitlines()]
    assert actions == [
        ["preprocess", "load"],
        ["embed", "load"],
        ["reduce", "compute"],
        ["cluster", "compute"],
        ["label", "compute"],
    ]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "error: [input] feedback.csv is empty"),
        (b"id,comment\n", "error: [input] feedback.csv has a header (id, comment) but no rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "does not look like a text table"),
        (
            b"id,text\n1,hello\n",
            "error: [preprocess] expected a text column named 'comment', found columns: 'id', 'text'",
        ),
    ],
)
def test_bad_input_exits_2_with_a_clear_line(content, expected, tmp_path, fake_cli, capsys):
    path = tmp_path / "feedback.csv"
    path.write_bytes(content)
    code, _, stderr = run_cli(
        [
            "run",
            path,
            "--text-column",
            "comment",
            "--out",
            tmp_path / "o.csv",
            "--cache-dir",
            tmp_path / "cache",
        ],
        capsys,
    )
    assert code == 2
    assert expected in stderr
    assert "hint: " in stderr and "Traceback" not in stderr
    assert fake_cli.calls == []


def test_bad_setting_exits_2(feedback_csv, tmp_path, fake_cli, capsys):
    code, _, stderr = run_cli(
        [
            "run",
            feedback_csv,
            "--text-column",
            "comment",
            "--out",
            tmp_path / "o.csv",
            "--set",
            "cluster.min_cluster_size=lots",
        ],
        capsys,
    )
    assert code == 2
    assert "error: [config] cluster.min_cluster_size = 'lots' is not a valid int" in stderr


def test_failing_stage_exits_1_and_names_it(feedback_csv, tmp_path, fake_cli, capsys):
    code, _, stderr = run_cli(
        [
            "run",
            feedback_csv,
            "--text-column",
            "comment",
            "--out",
            tmp_path / "o.csv",
            "--cache-dir",
            tmp_path / "cache",
            "--set",
            "cluster.min_cluster_size=400",
        ],
        capsys,
    )
    assert code == 1
    assert "error: [cluster] HDBSCAN cannot find clusters in 119 distinct texts" in stderr
    assert "hint: lower cluster.min_cluster_size" in stderr


def test_config_file_and_plots(feedback_csv, tmp_path, fake_cli, capsys):
    config = tmp_path / "settings.toml"
    config.write_text('[cluster]\nalgorithm = "kmeans"\nn_clusters = 3\n')
    code, stdout, stderr = run_cli(
        [
            "run",
            feedback_csv,
            "--text-column",
            "comment",
            "--config",
            config,
            "--out",
            tmp_path / "k.csv",
            "--cache-dir",
            tmp_path / "cache",
            "--plots",
        ],
        capsys,
    )
    assert code == 0, stderr
    assert "-> 3 clusters" in stdout
    html = (tmp_path / "k.map.html").read_text()
    assert "scattergl" in html and "Rows per cluster" in html
