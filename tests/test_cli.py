"""`python -m pipeline run|plan`: outputs, events file, exit codes and error lines."""

from __future__ import annotations

import errno
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pipeline.__main__ as cli
from pipeline import OUTPUT_COLUMNS, Runtime
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


def test_huge_min_samples_exits_2_before_anything_is_computed(feedback_csv, tmp_path, fake_cli, capsys):
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
            "cluster.min_samples=100000000000000000000000",
        ],
        capsys,
    )
    assert code == 2
    assert "error: [config] cluster.min_samples = 100000000000000000000000 is not allowed" in stderr
    assert "0 (automatic) or 1..1000" in stderr and "hint: " in stderr
    assert fake_cli.calls == [] and not (tmp_path / "o.csv").exists()


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mounts():
    """Mount helpers for disk-level faults (tests run as root here); skipped where mounting is
    impossible. Everything mounted is unmounted afterwards, last first."""
    mounted: list[Path] = []

    def mount(*args: str, target: Path, why: str) -> None:
        try:
            done = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as exc:
            pytest.skip(f"cannot mount {why} here: {exc}")
        if done.returncode:
            pytest.skip(f"cannot mount {why} here: {done.stderr.strip() or done.returncode}")
        mounted.append(target)

    class Mounts:
        @staticmethod
        def small_disk(folder: Path, size_kb: int) -> Path:
            folder.mkdir(parents=True, exist_ok=True)
            mount("-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder), target=folder, why="a tmpfs")
            return folder

        @staticmethod
        def read_only(folder: Path) -> Path:
            folder.mkdir(parents=True, exist_ok=True)
            mount("--bind", str(folder), str(folder), target=folder, why="a read-only bind")
            mount("-o", "remount,bind,ro", str(folder), target=folder, why="a read-only bind")
            return folder

    yield Mounts
    for folder in dict.fromkeys(reversed(mounted)):
        if subprocess.run(["umount", str(folder)], capture_output=True, timeout=30).returncode:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


# The command line in a child process (a SIGBUS kills the child, not the tests), with an embedder
# of 4096 floats per text (or argv[1]): a few hundred texts need megabytes of cache.
WIDE_CLI = """
import sys
import numpy as np
import pipeline.__main__ as cli
from pipeline import Runtime

class Wide:
    def __init__(self, dim):
        self.dim, self.identity = dim, f"fake:wide:{dim}"

    def encode(self, texts):
        rng = np.random.default_rng(len(texts))
        return rng.standard_normal((len(texts), self.dim)).astype(np.float32)

dim = int(sys.argv[1])
cli.Runtime = lambda **kw: Runtime(embedder=Wide(dim), heartbeat_s=0.5, **kw)
sys.exit(cli.main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    "dim, disk_kb, expected",
    [
        # the stage's own estimate: refused before the vectors are written
        (4096, 2048, "MB free, about 9.4 MB needed)"),
        # the estimate fits, then joblib runs out of space writing the stage's cache entry
        (1024, 3072, "MB free);"),
    ],
)
def test_full_cache_disk_is_an_error_line_not_sigbus(dim, disk_kb, expected, tmp_path, mounts):
    cache = mounts.small_disk(tmp_path / "cache", disk_kb)
    source = tmp_path / "texts.csv"
    pd.DataFrame({"comment": [f"text number {i}" for i in range(300)]}).to_csv(source, index=False)
    args = ["run", source, "--text-column", "comment", "--out", tmp_path / "out.csv"]
    args += ["--cache-dir", cache, "--chunk-size", "50", "--quiet"]
    done = subprocess.run(
        [sys.executable, "-c", WIDE_CLI, str(dim), *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, (done.returncode, done.stderr)  # SIGBUS was -7 (the shell: 135)
    assert "error: [embed] the disk holding the cache is full (" in done.stderr
    assert expected in done.stderr
    assert "hint: free space, or use --cache-dir on another disk" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(cache.rglob("*.tmp")) and not list((cache / "scratch").iterdir())
    assert not (tmp_path / "out.csv").exists()


def test_failed_output_write_leaves_the_previous_file(feedback_csv, tmp_path, fake_cli, capsys, monkeypatch):
    out = tmp_path / "out" / "labeled.csv"
    out.parent.mkdir()
    out.write_bytes(b"previous,run\r\n1,2\r\n")
    real = pd.DataFrame.to_csv

    def half_then_full(self, path, *args, **kwargs):
        real(self.head(len(self) // 2), path, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_full)
    code, _, stderr = run_cli(
        ["run", feedback_csv, "--text-column", "comment", "--out", out, "--cache-dir", tmp_path / "cache"],
        capsys,
    )
    assert code == 1
    assert f"error: [output] the disk holding {out} is full" in stderr and "hint: free space" in stderr
    assert out.read_bytes() == b"previous,run\r\n1,2\r\n"
    assert [p.name for p in out.parent.iterdir()] == ["labeled.csv"]  # no half-written temporary


@pytest.mark.parametrize("where", ["file", "env"])
def test_unwritable_cache_folder_exits_2_with_a_hint(
    where, feedback_csv, tmp_path, fake_cli, capsys, monkeypatch
):
    args = ["run", feedback_csv, "--text-column", "comment", "--out", tmp_path / "o.csv"]
    if where == "file":
        folder = tmp_path / "a-file"
        folder.write_text("not a folder")
        args += ["--cache-dir", folder]
        reason = "it (or a folder above it) is a file, not a folder"
    else:
        folder = Path("/proc/clusterlab-cache")
        monkeypatch.setenv("CLUSTERLAB_CACHE_DIR", str(folder))
        reason = "the folder cannot be created there"
    code, _, stderr = run_cli(args, capsys)
    assert code == 2, stderr
    assert f"error: [cache] cannot write to {folder}: {reason}" in stderr
    assert "hint: choose a folder you can write to with --cache-dir, or set $CLUSTERLAB_CACHE_DIR" in stderr
    assert "Traceback" not in stderr and "unexpected" not in stderr
    assert fake_cli.calls == []


def test_read_only_cache_is_read_and_an_empty_one_refused(feedback_csv, tmp_path, fake_cli, capsys, mounts):
    cache = tmp_path / "cache"
    base = ["run", feedback_csv, "--text-column", "comment", "--cache-dir", cache]
    assert run_cli(base + ["--out", tmp_path / "a.csv"], capsys)[0] == 0
    calls = len(fake_cli.calls)
    mounts.read_only(cache)
    events = tmp_path / "ev.jsonl"
    code, stdout, stderr = run_cli(
        base + ["--out", tmp_path / "b.csv", "--set", "cluster.min_cluster_size=10", "--events", events],
        capsys,
    )
    assert code == 0, stderr
    assert f"warning: [preprocess] cannot write to the cache {cache} (read-only file system)" in stderr
    assert "-> " in stdout and (tmp_path / "b.csv").exists()
    assert len(fake_cli.calls) == calls  # embeddings read from the cache
    finished = {
        e["stage"]: e["cached"]
        for e in map(json.loads, events.read_text().splitlines())
        if e["kind"] == "finished"
    }
    assert finished == {"preprocess": True, "embed": True, "reduce": True, "cluster": False, "label": False}

    empty = mounts.read_only(tmp_path / "empty")
    code, _, stderr = run_cli(
        ["run", feedback_csv, "--text-column", "comment", "--cache-dir", empty, "--out", tmp_path / "c.csv"],
        capsys,
    )
    assert code == 2
    assert f"error: [cache] cannot write to {empty}: read-only file system" in stderr
    assert "hint: choose a folder you can write to with --cache-dir" in stderr and "Traceback" not in stderr


@pytest.mark.parametrize("name", ["feedback.csv", "labeled.clusters.csv", "labeled.manifest.json"])
def test_out_that_would_overwrite_the_input_is_refused(name, feedback_csv, tmp_path, fake_cli, capsys):
    source = tmp_path / name
    if source != feedback_csv:
        feedback_csv.rename(source)
    before = source.read_bytes()
    out = source if name == "feedback.csv" else tmp_path / "labeled.csv"
    code, _, stderr = run_cli(
        ["run", source, "--text-column", "comment", "--out", out, "--cache-dir", tmp_path / "cache"],
        capsys,
    )
    assert code == 2
    assert f"error: [output] --out {out} would overwrite the input file {source}" in stderr
    assert "hint: choose an --out path that is not the input" in stderr
    assert source.read_bytes() == before and fake_cli.calls == []


@pytest.mark.parametrize(
    "suffix, read, magic",
    [(".xlsx", pd.read_excel, b"PK\x03\x04"), (".parquet", pd.read_parquet, b"PAR1")],
)
def test_out_suffix_picks_excel_or_parquet(suffix, read, magic, feedback_csv, tmp_path, fake_cli, capsys):
    out = tmp_path / f"labeled{suffix}"
    code, stdout, stderr = run_cli(
        ["run", feedback_csv, "--text-column", "comment", "--out", out, "--cache-dir", tmp_path / "cache"],
        capsys,
    )
    assert code == 0, stderr
    assert out.read_bytes().startswith(magic)
    table = read(out)
    assert list(table.columns)[:3] == ["ticket", "comment", "score"]
    assert list(table.columns)[3:] == list(OUTPUT_COLUMNS)
    assert len(table) == 120
    clusters = read(tmp_path / f"labeled.clusters{suffix}")
    assert list(clusters.columns)[:3] == ["id", "label", "size"] and clusters["size"].sum() == 119
    assert (tmp_path / "labeled.manifest.json").exists()
    assert f"labeled.clusters{suffix}" in stdout


@pytest.fixture
def facet_csv(feedback_csv, tmp_path):
    """The feedback table with a channel (one value a formula) and a date per row (some missing)."""
    frame = pd.read_csv(feedback_csv, dtype=str, keep_default_na=False)
    frame["channel"] = [["email", "app", "=cmd|' /C calc'!A0"][i % 3] for i in range(len(frame))]
    days = pd.date_range("2024-01-03", periods=len(frame), freq="D")
    frame["created"] = [d.strftime("%Y-%m-%d") if i % 10 else "" for i, d in enumerate(days)]
    path = tmp_path / "facets.csv"
    frame.to_csv(path, index=False)
    return path


def test_breakdown_and_trends_files(facet_csv, tmp_path, fake_cli, capsys):
    out = tmp_path / "out" / "labeled.csv"
    code, stdout, stderr = run_cli(
        ["run", facet_csv, "--text-column", "comment", "--out", out, "--cache-dir", tmp_path / "cache"]
        + ["--breakdown", "channel", "--time-column", "created", "--quiet"],
        capsys,
    )
    assert code == 0, stderr
    assert stdout.rstrip().endswith("labeled.manifest.json, labeled.breakdown.csv, labeled.trends.csv")

    raw = (tmp_path / "out" / "labeled.breakdown.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    breakdown = pd.read_csv(
        tmp_path / "out" / "labeled.breakdown.csv", encoding="utf-8-sig", keep_default_na=False
    )
    assert list(breakdown.columns) == [
        "value",
        "cluster_id",
        "cluster_label",
        "rows",
        "share_of_value",
        "share_overall",
        "lift",
        "residual",
    ]
    assert list(dict.fromkeys(breakdown["value"])) == ["'=cmd|' /C calc'!A0", "app", "email"]  # neutralised
    for _, rows in breakdown.groupby("value", sort=False):
        assert rows["lift"].tolist() == sorted(rows["lift"], reverse=True)
    assert breakdown["rows"].sum() == 119  # every row with a text, once
    assert np.isfinite(breakdown[["share_of_value", "share_overall", "lift", "residual"]].to_numpy()).all()

    trends = pd.read_csv(tmp_path / "out" / "labeled.trends.csv", encoding="utf-8-sig", keep_default_na=False)
    assert list(trends.columns) == ["period", "cluster_id", "cluster_label", "rows"]
    periods = list(dict.fromkeys(trends["period"]))
    assert periods == sorted(periods) and periods[0] == "2024-01-01"  # the Monday of 2024-01-03's week
    assert all(pd.Timestamp(p).weekday() == 0 for p in periods)
    assert len(trends) == len(periods) * trends["cluster_id"].nunique()  # zeros included
    assert trends["rows"].sum() == 119 - 12  # rows without a date are left out, and said so
    assert "note: [trends] 12 rows have no date in 'created'; they are left out" in stderr
    assert (
        "note: [trends] rows per week (weeks start on Monday): dates from 2024-01-04 to 2024-05-01" in stderr
    )


@pytest.mark.parametrize(
    "flag, column, expected",
    [
        ("--breakdown", "chanel", "error: [breakdown] no column named 'chanel'; the table has: 'ticket', "),
        ("--time-column", "Created", "error: [trends] no column named 'Created'; the table has: 'ticket', "),
        ("--time-column", "channel", "error: [trends] no value of 'channel' reads as a date (found e.g. "),
    ],
)
def test_bad_facet_column_exits_2_before_anything_is_computed(
    flag, column, expected, facet_csv, tmp_path, fake_cli, capsys
):
    out = tmp_path / "o.csv"
    code, _, stderr = run_cli(
        ["run", facet_csv, "--text-column", "comment", "--out", out, "--cache-dir", tmp_path / "cache"]
        + [flag, column],
        capsys,
    )
    assert code == 2
    assert expected in stderr and "Traceback" not in stderr
    hint = (
        "hint: pick one of those columns with" if "no column" in expected else "hint: pick a column of dates"
    )
    assert hint in stderr
    assert fake_cli.calls == [] and not out.exists()


def test_facet_files_are_csv_beside_an_excel_out(facet_csv, tmp_path, fake_cli, capsys):
    out = tmp_path / "labeled.xlsx"
    code, stdout, stderr = run_cli(
        ["run", facet_csv, "--text-column", "comment", "--out", out, "--cache-dir", tmp_path / "cache"]
        + ["--breakdown", "created", "--quiet"],
        capsys,
    )
    assert code == 0, stderr
    breakdown = pd.read_csv(tmp_path / "labeled.breakdown.csv", encoding="utf-8-sig", keep_default_na=False)
    assert breakdown["value"].iloc[-1] == "(missing)"
    assert "note: [breakdown] 12 rows have no value in 'created'; they are counted as '(missing)'" in stderr
    assert not (tmp_path / "labeled.trends.csv").exists()


def test_breakdown_of_an_input_column_named_like_an_output_column(feedback_csv, tmp_path, fake_cli, capsys):
    frame = pd.read_csv(feedback_csv, dtype=str, keep_default_na=False)
    frame["x"] = ["north" if i % 2 else "south" for i in range(len(frame))]
    source = tmp_path / "xy.csv"
    frame.to_csv(source, index=False)
    code, _, stderr = run_cli(
        [
            "run",
            source,
            "--text-column",
            "comment",
            "--out",
            tmp_path / "o.csv",
            "--cache-dir",
            tmp_path / "cache",
        ]
        + ["--breakdown", "x", "--quiet"],
        capsys,
    )
    assert code == 0, stderr
    breakdown = pd.read_csv(tmp_path / "o.breakdown.csv", encoding="utf-8-sig")
    assert set(breakdown["value"]) == {"north", "south"}  # the input's x, not the map's


# --- --codebook ----------------------------------------------------------------------------------


@pytest.fixture
def codebook_csv(tmp_path):
    """The four topics (tests/conftest.py TOPICS) as categories described by their words; praise
    is named like a formula."""
    from tests.conftest import TOPICS

    frame = pd.DataFrame(
        {
            "name": [("=praise" if topic == "praise" else topic) for topic in TOPICS],
            "description": [" ".join(words) for words in TOPICS.values()],
            "examples": [" | ".join(words[:4]) for words in TOPICS.values()],
        }
    )
    path = tmp_path / "codes.csv"
    frame.to_csv(path, index=False)
    return path


def run_with_codebook(feedback_csv, codebook_csv, out, tmp_path, capsys, *extra):
    return run_cli(
        ["run", feedback_csv, "--text-column", "comment", "--out", out, "--cache-dir", tmp_path / "cache"]
        + ["--codebook", codebook_csv, "--quiet", *extra],
        capsys,
    )


def test_codebook_adds_category_and_score_columns(feedback_csv, codebook_csv, tmp_path, fake_cli, capsys):
    out = tmp_path / "labeled.csv"
    code, _, stderr = run_with_codebook(
        feedback_csv, codebook_csv, out, tmp_path, capsys, "--codebook-threshold", "0.3"
    )
    assert code == 0, stderr
    table = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(table.columns) == [
        "ticket",
        "comment",
        "score",
        *OUTPUT_COLUMNS,
        "category",
        "category_score",
    ]
    _, truth = topic_texts()
    expected = ["'=praise" if t == "praise" else t for t in truth]  # the formula-like name neutralised
    given = table["category"] != ""
    assert given.sum() >= 100
    assert (table["category"][given] == pd.Series(expected)[given]).mean() >= 0.95
    scores = table["category_score"][given].astype(float)
    assert (scores >= 0.3).all() and (scores <= 1).all()
    assert (table.loc[~given, "category_score"] == "").all()  # no category: no score
    assert table.loc[3, "category"] == "" and table.loc[3, "text_issue"] == "empty"  # a row without text

    manifest = json.loads((tmp_path / "labeled.manifest.json").read_text())
    record = manifest["codebook"]
    assert [c["name"] for c in record["categories"]] == ["billing", "crash", "login", "=praise"]
    assert record["threshold"] == 0.3 and record["automatic"] is False and record["source"] == "codes.csv"
    assert sum(record["rows"].values()) == given.sum() and record["no_category"] == 119 - given.sum()
    assert manifest["config"]["codebook"] == {"threshold": 0.3}
    matched = f"note: [codebook] {given.sum()} of 119 texts matched a category (threshold 0.30, set); "
    assert matched in stderr and "1 row has no text" in stderr


def test_codebook_automatic_threshold_is_said(feedback_csv, codebook_csv, tmp_path, fake_cli, capsys):
    code, _, stderr = run_with_codebook(feedback_csv, codebook_csv, tmp_path / "o.csv", tmp_path, capsys)
    assert code == 0, stderr
    record = json.loads((tmp_path / "o.manifest.json").read_text())["codebook"]
    assert record["automatic"] is True and record["rule"]
    assert f"(threshold {record['threshold']:.2f}, automatic)" in stderr


@pytest.mark.parametrize(
    "suffix, read",
    [(".xlsx", pd.read_excel), (".parquet", pd.read_parquet)],
)
def test_codebook_columns_in_excel_and_parquet(
    suffix, read, feedback_csv, codebook_csv, tmp_path, fake_cli, capsys
):
    out = tmp_path / f"labeled{suffix}"
    code, _, stderr = run_with_codebook(
        feedback_csv, codebook_csv, out, tmp_path, capsys, "--codebook-threshold", "0.3"
    )
    assert code == 0, stderr
    table = read(out)
    assert list(table.columns)[-2:] == ["category", "category_score"]
    names = set(table["category"].fillna(""))
    assert names <= {"", "billing", "crash", "login", "=praise" if suffix == ".parquet" else "'=praise"}
    assert table["category_score"].dtype == np.float64


def test_an_input_column_named_category_is_kept_under_another_name(
    feedback_csv, codebook_csv, tmp_path, fake_cli, capsys
):
    frame = pd.read_csv(feedback_csv, dtype=str, keep_default_na=False)
    frame["category"] = "theirs"
    source = tmp_path / "with_category.csv"
    frame.to_csv(source, index=False)
    code, _, stderr = run_with_codebook(source, codebook_csv, tmp_path / "o.csv", tmp_path, capsys)
    assert code == 0, stderr
    table = pd.read_csv(tmp_path / "o.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert table["category_input"].eq("theirs").all()
    assert list(table.columns)[-2:] == ["category", "category_score"]
    assert "warning: [output] the input column 'category' is named 'category_input'" in stderr


@pytest.mark.parametrize(
    "content, args, expected",
    [
        (
            b"name\nbilling\nlogin\nBilling \n",
            [],
            "error: [codebook] the codebook codes.csv names 1 category more than once: 'billing' (row 2) "
            "and 'Billing' (row 4)",
        ),
        (
            b"name,description\nbilling,money\n,no name\n",
            [],
            "error: [codebook] the codebook codes.csv has 1 category without a name (row 3)",
        ),
        (
            b"label\nbilling\nlogin\n",
            [],
            "error: [codebook] the codebook codes.csv has no column 'name'; its columns are 'label'",
        ),
        (b"", [], "error: [codebook] the codebook codes.csv is empty"),
        (
            b"name\nbilling\nlogin\n",
            ["--codebook-threshold", "1.5"],
            "error: [config] codebook.threshold = 1.5 is not allowed; expected a cosine similarity -1..1",
        ),
        (
            b"name\nbilling\nlogin\n",
            ["--codebook-threshold", "high"],
            "error: [config] codebook.threshold = 'high' is not a valid float",
        ),
    ],
)
def test_a_bad_codebook_exits_2_before_anything_is_computed(
    content, args, expected, feedback_csv, tmp_path, fake_cli, capsys
):
    codes = tmp_path / "codes.csv"
    codes.write_bytes(content)
    out = tmp_path / "o.csv"
    code, _, stderr = run_with_codebook(feedback_csv, codes, out, tmp_path, capsys, *args)
    assert code == 2
    assert expected in stderr and "\nhint: " in stderr and "Traceback" not in stderr
    assert fake_cli.calls == [] and not out.exists()


def test_a_codebook_threshold_needs_a_codebook(feedback_csv, tmp_path, fake_cli, capsys):
    code, _, stderr = run_cli(
        ["run", feedback_csv, "--text-column", "comment", "--out", tmp_path / "o.csv"]
        + ["--codebook-threshold", "0.4"],
        capsys,
    )
    assert code == 2
    assert "error: [codebook] --codebook-threshold was given without --codebook" in stderr
    assert fake_cli.calls == []


def test_a_missing_codebook_file_and_an_out_over_it_are_refused(
    feedback_csv, codebook_csv, tmp_path, fake_cli, capsys
):
    code, _, stderr = run_with_codebook(
        feedback_csv, tmp_path / "nope.csv", tmp_path / "o.csv", tmp_path, capsys
    )
    assert code == 2 and "error: [codebook] the codebook file " in stderr and "does not exist" in stderr
    before = codebook_csv.read_bytes()
    code, _, stderr = run_with_codebook(feedback_csv, codebook_csv, codebook_csv, tmp_path, capsys)
    assert code == 2
    assert f"error: [output] --out {codebook_csv} would overwrite the codebook {codebook_csv}" in stderr
    assert codebook_csv.read_bytes() == before and fake_cli.calls == []
