"""The browser benchmark's options, goals and report, without a browser (that is `make bench
BENCH_ARGS=--browser` itself)."""

from __future__ import annotations

import pytest

from pipeline import bench, bench_browser
from pipeline.bench_browser import SizeResult, format_size, goals_for, parse_args, table_rows


def test_the_default_run_is_10000_and_100000_texts_five_times_each():
    args = parse_args([])
    assert args.rows == [10_000, 100_000]
    assert args.repeat == 5
    assert (args.backend, args.first_run) == ("auto", "auto")


def test_small_runs_and_bad_values():
    assert parse_args(["--rows", "2000", "--repeat", "3"]).rows == [2000]
    with pytest.raises(SystemExit):
        parse_args(["--repeat", "0"])


def test_goals_follow_the_issue():
    assert goals_for(2_000) == (10_000, {"setting": 1.5, "other": 0.5, "page": 1.5})
    assert goals_for(10_000)[0] == 10_000
    assert goals_for(100_000) == (100_000, {"setting": 3.0, "other": 1.0, "page": 1.0})
    assert goals_for(500_000)[0] == 100_000
    assert bench_browser.default_backend(100_000) == "onnx-int8"
    assert bench_browser.default_backend(10_000) == "torch"


def measured(**changes) -> SizeResult:
    result = SizeResult(rows=10_000, backend="torch", first_run="cold")
    result.samples = {
        "clustering slider step": [1.0, 2.0, 1.2],
        "type a merge name": [0.2, 0.1, 0.3],
        "undo the merge": [0.6, 0.4, 0.5],
        "open Export": [1.6, 1.7, 1.8],
    }
    result.script_samples = {"clustering slider step": [0.8, 1.0, 0.9]}
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def test_the_table_gives_median_min_max_and_whether_the_goal_is_met():
    rows = {row["interaction"]: row for row in table_rows(measured())}
    slider = rows["clustering slider step"]
    assert (slider["median"], slider["min"], slider["max"], slider["n"]) == (1.2, 1.0, 2.0, 3)
    assert (slider["goal"], slider["met"], slider["script_median"]) == (1.5, True, 0.9)
    assert rows["open Export"]["met"] is False
    assert rows["type a merge name"]["script_median"] is None  # it ran no script
    assert rows["undo the merge"]["extra"] is True
    assert "pick a cluster to read" not in rows  # not measured: no row


def test_the_report_names_skips_and_the_ratio_to_the_command_line():
    text = format_size(
        measured(
            skipped=["pick a cluster to read (selector read_cluster = '.x' not found)"],
            app_first_s=60.0,
            cli_s=50.0,
        )
    )
    assert "skipped: pick a cluster to read (selector read_cluster" in text
    assert "undo the merge (extra)" in text
    assert "ratio app / command line 1.20x (goal <= 1.2x): met" in text
    prebuilt = format_size(measured(first_run="prebuilt", app_first_s=2.0, cli_s=50.0))
    assert "a cache prebuilt by the command line" in prebuilt
    assert "ratio app / command line" not in prebuilt


def test_bench_hands_browser_runs_to_the_browser_benchmark(monkeypatch):
    seen = []
    monkeypatch.setattr(bench_browser, "main", lambda argv: seen.append(argv) or 0)
    assert bench.main(["--browser", "--rows", "2000"]) == 0
    assert seen == [["--rows", "2000"]]


def test_a_fresh_install_is_measured_first_and_its_report_says_what_was_warm(tmp_path):
    assert parse_args([]).fresh_start == 1_000
    assert parse_args(["--fresh-start", "0"]).fresh_start == 0  # left out
    with pytest.raises(SystemExit):
        parse_args(["--fresh-start", "5"])
    fresh = bench_browser.FreshStart(
        rows=1_000,
        warmup_s=26.6,
        warmup_said="compiled 94 functions into numba's cache (0 were there already) (25.1 s)",
        click_after_s=2.8,
        at_once_s=10.4,
        server_warm_s=7.0,
        after_warm_s=6.1,
        after_warm_status="Done in 6.0 s: 10 clusters found",
    )
    text = bench_browser.format_fresh(fresh)
    assert "set-up's warm-up (python -m pipeline.warmup, which make run does once): 26.6 s" in text
    assert "2.8 s after the page opened (the server still warming up): 10.4 s (goal <= 10 s: not met)" in text
    assert "once it had warmed up (its warm-up took 7.0 s): 6.1 s (goal <= 10 s: met)" in text
    assert "[Done in 6.0 s: 10 clusters found]" in text
    assert bench_browser.report_json([], fresh)["fresh_start"]["after_warm_s"] == 6.1
    log = tmp_path / "server.log"
    log.write_text("INFO clusterlab.app: server warmed in 7.4 s: the embedding model: ...\n")
    assert bench_browser.server_warmed(log, timeout_s=1) == 7.4
    log.write_text("nothing yet\n")
    with pytest.raises(RuntimeError, match="did not say it had warmed up"):
        bench_browser.server_warmed(log, timeout_s=0.3)
