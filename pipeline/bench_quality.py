"""``python -m pipeline.bench_quality`` (``make bench-quality``): cluster quality on labelled sets.

Runs the default pipeline, told nothing about the number of groups, on every ``text,label``
CSV in ``../shared/datasets`` (skipped with a note when the folder is absent), and prints
rows, clusters, noise share, AMI, ARI, NMI (noise counted as its own cluster) and seconds,
beside k-means told the true number of groups on the same embeddings. Embeddings come from
the pipeline's cache, so a re-run after a clustering change takes seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"


def score(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

    return {
        "ami": adjusted_mutual_info_score(truth, predicted),
        "ari": adjusted_rand_score(truth, predicted),
        "nmi": normalized_mutual_info_score(truth, predicted),
    }


def evaluate(path: Path, cache_dir: str | None, settings: list[str], kmeans: bool = True) -> dict:
    import pipeline

    frame = pd.read_csv(path)
    table = pipeline.Table.from_frame(frame[["text"]].astype(str), name=path.name)
    config = pipeline.PipelineConfig().with_overrides(["preprocess.text_column=text", *settings])
    started = time.perf_counter()
    result = pipeline.run(table, config, cache_dir=cache_dir)
    seconds = time.perf_counter() - started
    out = result.table()
    keep = out["cluster_id"].notna().to_numpy()
    truth = frame["label"].astype(str).to_numpy()[keep]
    predicted = out["cluster_id"].to_numpy()[keep].astype(int)
    row = {
        "set": path.stem,
        "rows": len(frame),
        "groups": len(set(truth)),
        "clusters": result.n_clusters,
        "noise": float((predicted == -1).mean()),
        **score(truth, predicted),
        "seconds": seconds,
    }
    if kmeans:
        from sklearn.cluster import KMeans

        vectors = result.embeddings.vectors[result.corpus.row_to_unique[keep]]
        k = row["groups"]
        km = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)
        row["kmeans_ami"] = score(truth, km)["ami"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench_quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--datasets", default=str(DATASETS), help="folder of text,label CSVs")
    parser.add_argument("--only", nargs="*", help="dataset names (file stems) to run")
    parser.add_argument("--set", action="append", default=[], help="settings, as for the command line")
    parser.add_argument("--cache-dir", help="pipeline cache (default: the usual cache folder)")
    parser.add_argument("--no-kmeans", action="store_true")
    args = parser.parse_args(argv)
    folder = Path(args.datasets)
    if not folder.is_dir():
        print(
            f"note: no benchmark sets at {folder}; nothing to measure (they are not shipped with Clusterlab)"
        )
        return 0
    files = sorted(p for p in folder.glob("*.csv") if not args.only or p.stem in args.only)
    rows = []
    for path in files:
        row = evaluate(path, args.cache_dir, args.set, kmeans=not args.no_kmeans)
        rows.append(row)
        print(
            f"{row['set']:<26} rows {row['rows']:>6,}  groups {row['groups']:>3}  clusters {row['clusters']:>4}  "
            f"noise {row['noise']:5.1%}  AMI {row['ami']:.3f}  ARI {row['ari']:.3f}  NMI {row['nmi']:.3f}  "
            f"k-means(true k) AMI {row.get('kmeans_ami', float('nan')):.3f}  {row['seconds']:6.1f} s",
            flush=True,
        )
    print()
    print(
        "| set | rows | true groups | clusters | noise | AMI | ARI | NMI | k-means, true k: AMI | seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['set']} | {r['rows']:,} | {r['groups']} | {r['clusters']} | {r['noise']:.0%} | {r['ami']:.3f} | "
            f"{r['ari']:.3f} | {r['nmi']:.3f} | {r.get('kmeans_ami', float('nan')):.3f} | {r['seconds']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
