"""``python -m pipeline.bench_search``: how fast search answers on a big result.

Builds a result of ``--rows`` short texts (100,000 by default; the benchmark data set repeated
with small variations past its size, as ``pipeline.bench`` does) without running the pipeline:
the texts are prepared by the real preprocess stage, the vectors are random unit vectors of the
model's 384 dimensions (the cosine part costs the same whatever the vectors hold), the clusters
random. Then it reports the median of ``--repeat`` timings of each kind of search:

  * words: a plain word, a regular expression, a whole word with case, a pattern only Python's
    engine runs (a lookbehind), a search over another column;
  * meaning with the real packaged model: the query's encode, the cosine and the top k (the
    model's load is timed apart, once);
  * "find texts like this one";
  * a hostile pattern over texts made to trip it: how long until it answers or is stopped.

Targets at 100,000 texts: a plain word < 0.3 s, a meaning search < 1 s once the model is loaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from . import search
from .bench import DEFAULT_DATA, load_texts
from .config import EmbedParams, PipelineConfig, PreprocessParams
from .errors import InputError
from .result import Result
from .stages.preprocess import preprocess
from .types import Clustering, Embeddings, Labels, Projection, Table

DIM = 384  # all-MiniLM-L6-v2
CLUSTERS = 60
QUERIES = (
    "my card was declined",
    "how do I reset my pin",
    "refund for a payment I did not make",
    "the exchange rate was wrong",
    "top up failed",
    "I lost my card abroad",
    "when will my new card arrive",
    "why was I charged a fee",
)


def synthetic_result(
    texts: list[str], identity: str, dim: int = DIM, clusters: int = CLUSTERS, seed: int = 0
) -> Result:
    """A ``Result`` over ``texts`` (the real preprocess stage; an ``id`` and a ``score`` column
    beside the text) with random unit vectors said to be made by ``identity``, a random layout and
    random clusters (-1 included): what search reads, without embedding anything."""
    rng = np.random.default_rng(seed)
    n = len(texts)
    scores = rng.integers(1, 6, n).astype(float)
    scores[rng.random(n) < 0.1] = np.nan  # missing values
    frame = pd.DataFrame({"id": np.arange(1, n + 1), "text": texts, "score": scores})
    config = PipelineConfig().with_values({"preprocess.text_column": "text"})
    corpus = preprocess(Table.from_frame(frame, name="bench"), PreprocessParams(text_column="text"))
    vectors = rng.standard_normal((corpus.n_texts, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = rng.integers(-1, clusters, corpus.n_texts).astype(np.int64)
    names = pd.DataFrame(
        {"id": np.arange(-1, clusters), "label": ["Unclustered"] + [f"topic {i}" for i in range(clusters)]}
    )
    return Result(
        config=config,
        corpus=corpus,
        embeddings=Embeddings(vectors=vectors, model=identity),
        projection=Projection(
            coords=rng.random((corpus.n_texts, 2)), layout=rng.random((corpus.n_texts, 2)), method="none"
        ),
        clustering=Clustering(ids, ids, np.ones(corpus.n_texts, np.float32), "random"),
        labels=Labels(clusters=names),
    )


def timed(call: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median seconds of ``repeat`` calls, and the last call's value."""
    seconds, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), value


def _bomb(rows: int) -> list[str]:
    """Distinct texts of a long run of a's that does not end the way the hostile patterns want."""
    return [f"{'a' * 40}b {i}" for i in range(rows)]


def _stopped(call: Callable[[], object]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        matches = call()
        outcome = f"answered ({len(matches):,} matches)"
    except InputError as exc:
        outcome = "stopped: " + exc.message
    return time.perf_counter() - started, outcome


def _torch_threads() -> str:
    try:
        import torch
    except ImportError:
        return "?"
    return str(torch.get_num_threads())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench_search", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--data",
        default=str(DEFAULT_DATA) if DEFAULT_DATA.exists() else None,
        help="CSV of short texts (default: ../shared/datasets/banking77.csv, else the sample)",
    )
    parser.add_argument("--rows", type=int, default=100_000, help="texts (default 100,000)")
    parser.add_argument("--repeat", type=int, default=7, help="timings per search (the median is shown)")
    parser.add_argument("--no-model", action="store_true", help="skip the real model (meaning search)")
    args = parser.parse_args(argv)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    source = args.data if args.data and Path(args.data).exists() else "the bundled sample (repeated)"
    print(
        f"data: {source}; {args.rows:,} texts; {os.cpu_count()} CPUs; load average {load}; repeat {args.repeat}"
    )

    embedder = None
    identity = "random"
    if not args.no_model:
        from .embedders import load as load_weights
        from .embedders import load_embedder

        embedder = load_embedder(EmbedParams())
        started = time.perf_counter()
        load_weights(embedder)
        identity = embedder.identity
        print(f"model load (once per process, not part of a search): {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    texts = load_texts(Path(args.data) if args.data else None, args.rows)
    result = synthetic_result(texts, identity)
    print(f"result built in {time.perf_counter() - started:.1f} s: {result.corpus.n_texts:,} distinct texts")

    def row(name: str, call: Callable[[], search.Matches], target: float | None = None) -> None:
        seconds, matches = timed(call, args.repeat)
        goal = f" (target < {target:g} s)" if target else ""
        print(f"  {name:<44} {seconds * 1000:8.1f} ms{goal}  {len(matches):,} rows")

    print("search (median):")
    row("words, plain 'card'", lambda: search.search_words(result, "card"), 0.3)
    row(
        "words, regex 'card.*(declin|refus)'",
        lambda: search.search_words(result, r"card.*(declin|refus)", regex=True),
    )
    row(
        "words, whole word + case 'Card'",
        lambda: search.search_words(result, "Card", whole_word=True, case=True),
    )
    row(
        "words, regex + whole word 'card\\w*'",
        lambda: search.search_words(result, r"card\w*", regex=True, whole_word=True),
    )
    row(
        "words, Python engine '(?<!my )card'",
        lambda: search.search_words(result, r"(?<!my )card", regex=True),
    )
    row("words, column 'score', '5.0'", lambda: search.search_words(result, "5.0", column="score"))
    if embedder is not None:
        queries = iter(f"{q} {i}" for i in range(10**6) for q in QUERIES)  # never the same twice
        row(
            "meaning, new query: encode + cosine + top 200",
            lambda: search.search_meaning(result, next(queries), embedder),
            1.0,
        )
        row(
            "meaning, same query again (vector kept)",
            lambda: search.search_meaning(result, QUERIES[0], embedder),
        )
        seconds, _ = timed(lambda: embedder.encode([next(queries)]), args.repeat)
        threads = _torch_threads()
        print(f"    of which the query's encode: {seconds * 1000:.1f} ms (torch threads: {threads})")
    row("similar to a text, top 50", lambda: search.similar_to(result, 12345 % result.corpus.n_texts))

    print(f"hostile patterns over {args.rows:,} texts of 40 a's then 'b':")
    hostile = synthetic_result(_bomb(args.rows), "random", dim=8)
    for pattern in (r"(a+)+$", r"(a|aa)+$", r"(?=a)(a|aa)+$", r"(a+)+\1$"):
        seconds, outcome = _stopped(lambda p=pattern: search.search_words(hostile, p, regex=True))
        print(f"  {pattern:<16} {seconds:5.2f} s  {outcome}")
    if embedder is not None and _torch_threads() not in ("?", "1"):
        # last: it changes the process's torch threads. One query is too small to share out, and
        # on a busy CPU torch's threads wait for each other
        import torch

        torch.set_num_threads(1)
        seconds, _ = timed(lambda: embedder.encode([next(queries)]), args.repeat)
        print(f"query encode with 1 torch thread instead: {seconds * 1000:.1f} ms")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average after: {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
