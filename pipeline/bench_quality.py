"""``python -m pipeline.bench_quality`` (``make bench-quality``): cluster quality on labelled sets.

Runs the default pipeline, told nothing about the number of groups, on every ``text,label``
CSV in ``../shared/datasets`` (skipped with a note when the folder is absent), and prints
rows, clusters, noise share, AMI, ARI, NMI (noise counted as its own cluster), the run's
readouts (separation, stability) and seconds, beside k-means told the true number of groups on
the same embeddings. ``--assign-outliers`` adds the AMI with ``cluster.assign_outliers = true``;
``--about-k`` adds HDBSCAN asked for the true number of groups (``cluster.n_clusters``), with
noise kept and with noise assigned. Embeddings come from the pipeline's cache, so a re-run after
a clustering change takes seconds.
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


def _truth_and_predicted(result, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = result.table()
    keep = out["cluster_id"].notna().to_numpy()
    truth = frame["label"].astype(str).to_numpy()[keep]
    return truth, out["cluster_id"].to_numpy()[keep].astype(int), keep


def evaluate(
    path: Path,
    cache_dir: str | None,
    settings: list[str],
    kmeans: bool = True,
    assign_outliers: bool = False,
    about_k: bool = False,
) -> dict:
    import pipeline

    frame = pd.read_csv(path)
    table = pipeline.Table.from_frame(frame[["text"]].astype(str), name=path.name)
    base = pipeline.PipelineConfig().with_overrides(["preprocess.text_column=text", *settings])
    started = time.perf_counter()
    result = pipeline.run(table, base, cache_dir=cache_dir)
    seconds = time.perf_counter() - started
    truth, predicted, keep = _truth_and_predicted(result, frame)
    readouts = result.readouts
    row = {
        "set": path.stem,
        "rows": len(frame),
        "groups": len(set(truth)),
        "clusters": result.n_clusters,
        "noise": float((predicted == -1).mean()),
        **score(truth, predicted),
        "separation": readouts.get("separation"),
        "stability": readouts.get("stability"),
        "seconds": seconds,
    }

    def ami_with(*extra: str) -> tuple[int, float, float]:
        again = pipeline.run(table, base.with_overrides(list(extra)), cache_dir=cache_dir)
        t, p, _ = _truth_and_predicted(again, frame)
        return again.n_clusters, score(t, p)["ami"], float((p == -1).mean())

    if assign_outliers:
        row["ami_assigned"] = ami_with("cluster.assign_outliers=true")[1]
    if about_k:
        k = row["groups"]
        row["k_clusters"], row["k_ami"], row["k_noise"] = ami_with(f"cluster.n_clusters={k}")
        row["k_ami_assigned"] = ami_with(f"cluster.n_clusters={k}", "cluster.assign_outliers=true")[1]
    if kmeans:
        from sklearn.cluster import KMeans

        vectors = result.embeddings.vectors[result.corpus.row_to_unique[keep]]
        km = KMeans(n_clusters=row["groups"], n_init=3, random_state=0).fit_predict(vectors)
        row["kmeans_ami"] = score(truth, km)["ami"]
    return row


def _num(value, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and np.isnan(value)) else format(value, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench_quality", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--datasets", default=str(DATASETS), help="folder of text,label CSVs")
    parser.add_argument("--only", nargs="*", help="dataset names (file stems) to run")
    parser.add_argument("--set", action="append", default=[], help="settings, as for the command line")
    parser.add_argument("--cache-dir", help="pipeline cache (default: the usual cache folder)")
    parser.add_argument("--no-kmeans", action="store_true")
    parser.add_argument(
        "--assign-outliers", action="store_true", help="also report AMI with cluster.assign_outliers=true"
    )
    parser.add_argument(
        "--about-k", action="store_true", help="also run HDBSCAN asked for the true number of groups"
    )
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
        row = evaluate(
            path,
            args.cache_dir,
            args.set,
            kmeans=not args.no_kmeans,
            assign_outliers=args.assign_outliers,
            about_k=args.about_k,
        )
        rows.append(row)
        line = (
            f"{row['set']:<24} rows {row['rows']:>6,}  groups {row['groups']:>3}  clusters {row['clusters']:>4}  "
            f"noise {row['noise']:5.1%}  AMI {row['ami']:.3f}  ARI {row['ari']:.3f}  NMI {row['nmi']:.3f}  "
            f"sep {_num(row['separation'], '.2f')}  stab {_num(row['stability'], '.2f')}"
        )
        if "ami_assigned" in row:
            line += f"  AMI(assigned) {row['ami_assigned']:.3f}"
        if "k_ami" in row:
            line += (
                f"  about-K: {row['k_clusters']} clusters AMI {row['k_ami']:.3f}"
                f" (assigned {row['k_ami_assigned']:.3f})"
            )
        line += f"  k-means(true k) AMI {_num(row.get('kmeans_ami'), '.3f')}  {row['seconds']:6.1f} s"
        print(line, flush=True)
    print()
    print(_markdown(rows))
    return 0


def _markdown(rows: list[dict]) -> str:
    heads = [
        "set",
        "rows",
        "true groups",
        "clusters",
        "noise",
        "AMI",
        "ARI",
        "NMI",
        "separation",
        "stability",
    ]
    if any("ami_assigned" in r for r in rows):
        heads.append("AMI, outliers assigned")
    if any("k_ami" in r for r in rows):
        heads += ["about K=true: clusters", "AMI", "AMI, assigned"]
    heads += ["k-means, true k: AMI", "seconds"]
    lines = ["| " + " | ".join(heads) + " |", "|---|" + "---:|" * (len(heads) - 1)]
    for r in rows:
        cells = [
            r["set"],
            f"{r['rows']:,}",
            str(r["groups"]),
            str(r["clusters"]),
            f"{r['noise']:.0%}",
            f"{r['ami']:.3f}",
            f"{r['ari']:.3f}",
            f"{r['nmi']:.3f}",
            _num(r["separation"], ".2f"),
            _num(r["stability"], ".2f"),
        ]
        if "ami_assigned" in r:
            cells.append(f"{r['ami_assigned']:.3f}")
        if "k_ami" in r:
            cells += [str(r["k_clusters"]), f"{r['k_ami']:.3f}", f"{r['k_ami_assigned']:.3f}"]
        cells += [_num(r.get("kmeans_ami"), ".3f"), f"{r['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
