"""``python -m pipeline.bench_codebook``: how right a codebook is when the labels' names are the
codebook, with the packaged model (all-MiniLM-L6-v2 on torch).

For each labelled set in ``../shared/datasets`` whose labels are words (banking77's test split,
every text; agnews, searchsnippets, stackoverflow and, with ``--sets``, bbc_news, a seeded sample
of ``--texts``), the texts go through the real preprocess stage (cleaned, repeated texts once) and
the model; the codebook is the set's label names, underscores and hyphens read as spaces
("card_arrival" -> "card arrival"), nothing else. ``pipeline.codebook`` then does what a run does
(``category_vectors``, ``nearest``, ``auto_threshold``), and the table reports, per row of text:

  * right, every text: each text given its closest category (threshold -1);
  * the automatic threshold: the cosine it chose, the share of texts given a category and the
    share right among them;
  * half the codebook (every other label name): the share of the texts it covers that get a
    category, the share right among all that get one, and the share of the other texts (whose
    category is missing) that wrongly get one: what the threshold is for.

Then a codebook that fits nothing (banking77's intents over stackoverflow's titles): the share of
texts the automatic threshold still gives a category. The set embeddings are kept in
``<cache>/bench_codebook`` (by model and texts), so a second run takes seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import codebook
from .cache import default_cache_dir
from .config import EmbedParams, PreprocessParams
from .embedders import Embedder, load, load_embedder
from .stages.preprocess import preprocess
from .types import Table

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
SETS = ("banking77_test", "agnews", "searchsnippets", "stackoverflow")
OPTIONAL = ("bbc_news",)  # long articles: slow to embed on a CPU
TEXTS = 1000  # sampled from each set but banking77_test (3,080, all of them)
SEED = 0


@dataclass(frozen=True)
class Labelled:
    name: str
    vectors: np.ndarray  # per distinct text
    row_to_unique: np.ndarray  # per row
    labels: np.ndarray  # label index per row
    names: list[str]  # the label names as written


def readable(label: str) -> str:
    """A label as a codebook name: underscores and hyphens as spaces."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


def load_set(name: str, texts: int, embedder: Embedder, cache: Path | None) -> Labelled:
    frame = pd.read_csv(DATASETS / f"{name}.csv", dtype=str, keep_default_na=False)
    if name != "banking77_test" and texts and len(frame) > texts:
        frame = frame.sample(n=texts, random_state=SEED)
    frame = frame.reset_index(drop=True)
    corpus = preprocess(Table.from_frame(frame, name=name), PreprocessParams(text_column="text"))
    names = sorted(set(frame["label"]))
    labels = frame["label"].map({label: i for i, label in enumerate(names)}).to_numpy()
    vectors = _embedded(list(corpus.texts), embedder, cache, name)
    return Labelled(name, vectors, corpus.row_to_unique, labels, names)


def _embedded(texts: list[str], embedder: Embedder, cache: Path | None, name: str) -> np.ndarray:
    digest = hashlib.sha256("\n".join([embedder.identity, *texts]).encode()).hexdigest()[:16]
    path = cache / f"{name}-{len(texts)}-{digest}.npy" if cache else None
    if path is not None and path.exists():
        return np.load(path)
    vectors = np.asarray(embedder.encode(texts), dtype=np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, vectors)
    return vectors


@dataclass(frozen=True)
class Scores:
    best: np.ndarray  # per row with text: the category index given
    scores: np.ndarray
    truth: np.ndarray
    threshold: float
    rule: str


def score(data: Labelled, vectors: np.ndarray, keep: np.ndarray | None = None) -> Scores:
    """Each text's closest category among ``vectors`` (indices mapped back to all the label
    names when ``keep`` picks some), per row with text, and the automatic threshold."""
    best, scores, second = codebook.nearest(data.vectors, vectors)
    threshold, rule = codebook.auto_threshold(scores, second)
    if keep is not None:
        best = np.flatnonzero(keep)[best]
    has_text = data.row_to_unique >= 0
    rows = data.row_to_unique[has_text]
    return Scores(best[rows], scores[rows], data.labels[has_text], threshold, rule)


def measure(data: Labelled, embedder: Embedder) -> dict[str, object]:
    book = codebook.Codebook(tuple(codebook.Category(readable(n)) for n in data.names))
    vectors = codebook.category_vectors(book, embedder)
    full = score(data, vectors)
    right = full.best == full.truth
    taken = full.scores >= full.threshold
    sure = full.scores >= np.quantile(full.scores, 0.3)  # the 70% it is most sure about
    keep = np.arange(len(data.names)) % 2 == 0
    half = score(data, vectors[keep], keep)
    covered = keep[half.truth]
    half_taken = half.scores >= half.threshold
    return {
        "set": data.name,
        "texts": len(full.truth),
        "categories": len(data.names),
        "right, every text": right.mean(),
        "right, 70% most sure": right[sure].mean(),
        "auto threshold": full.threshold,
        "given a category": taken.mean(),
        "right among them": right[taken].mean() if taken.any() else np.nan,
        "half: covered given one": half_taken[covered].mean(),
        "half: right among given": (half.best == half.truth)[half_taken].mean()
        if half_taken.any()
        else np.nan,
        "half: others given one": half_taken[~covered].mean(),
        "rule": full.rule,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench_codebook", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--sets",
        default=",".join(SETS),
        help=f"comma-separated sets of {DATASETS} (default {','.join(SETS)}; also {','.join(OPTIONAL)})",
    )
    parser.add_argument("--texts", type=int, default=TEXTS, help=f"texts sampled per set (default {TEXTS})")
    parser.add_argument("--no-cache", action="store_true", help="embed again (do not keep or reuse vectors)")
    args = parser.parse_args(argv)
    if not DATASETS.exists():
        print(f"error: the labelled sets are not in {DATASETS}", file=sys.stderr)
        return 2
    cache = None if args.no_cache else default_cache_dir() / "bench_codebook"
    started = time.perf_counter()
    embedder = load_embedder(EmbedParams(), "cpu", 64)
    load(embedder)
    load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"model {embedder.identity}; {os.cpu_count()} CPUs; load average {load_avg}")
    rows, sets = [], {}
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        began = time.perf_counter()
        sets[name] = load_set(name, args.texts, embedder, cache)
        rows.append(measure(sets[name], embedder))
        print(f"  {name}: {time.perf_counter() - began:.0f} s", file=sys.stderr)
    table = pd.DataFrame(rows)
    shown = table.drop(columns="rule").copy()
    for column in shown.columns[3:]:
        style = "{:.2f}" if column == "auto threshold" else "{:.0%}"
        shown[column] = shown[column].map(style.format)
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(shown.to_string(index=False))
    for row in rows:
        print(f"  {row['set']}: threshold from {row['rule']}")
    if {"banking77_test", "stackoverflow"} <= set(sets):
        misfit = sets["stackoverflow"]
        book = codebook.Codebook(tuple(codebook.Category(readable(n)) for n in sets["banking77_test"].names))
        found = score(misfit, codebook.category_vectors(book, embedder))
        taken = (found.scores >= found.threshold).mean()
        print(
            f"a codebook that fits nothing (banking77's intents over stackoverflow's titles): "
            f"threshold {found.threshold:.2f}, {taken:.0%} of the texts still get a category"
        )
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
