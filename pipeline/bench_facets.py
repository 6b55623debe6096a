"""``python -m pipeline.bench_facets``: filters, breakdowns and trends on a 100,000-row table.

The table is made up (no model, no pipeline run): a 12-value category, a 10,000-value category
(text, as a CSV is read), a number, a date column (ISO, a year of days) and a timestamp column
(31/01/2023 14:05, a distinct value per row: the slow case), and about 100 clusters with
unclustered rows and rows without a text, shaped like ``Result.table()``. Each step runs
``--repeats`` times; the median (an update in the app: parsed dates are remembered per column) is
printed beside the goal (under ``GOAL_S`` seconds, the issue's "a filter or breakdown at 100,000
rows updates in under 1 s"), with the first run (nothing remembered: opening the page).
``--json FILE`` writes the rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from . import facets

GOAL_S = 1.0
CHANNELS = (
    "email",
    "app",
    "phone",
    "chat",
    "web",
    "store",
    "partner",
    "sms",
    "fax",
    "social",
    "kiosk",
    "other",
)


def bench_table(rows: int = 100_000, clusters: int = 100, seed: int = 0) -> pd.DataFrame:
    """A labeled table of ``rows`` rows, text columns typed as ``read_table`` types a CSV's."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(-1, clusters, rows)
    has_text = rng.random(rows) > 0.01
    channel = np.array(CHANNELS)[rng.integers(0, len(CHANNELS), rows)]
    customer = np.char.add("C", rng.integers(0, 10_000, rows).astype(str))
    days = np.datetime64("2023-01-01") + rng.integers(0, 365, rows).astype("timedelta64[D]")
    stamps = pd.date_range("2023-01-01", periods=rows, freq="1min").strftime("%d/%m/%Y %H:%M")
    frame = pd.DataFrame(
        {
            "comment": pd.Series([f"text {i}" for i in range(rows)], dtype="str"),
            "channel": pd.Series(channel, dtype="str"),
            "customer": pd.Series(customer, dtype="str"),
            "score": pd.Series(rng.integers(1, 6, rows).astype(str), dtype="str"),
            "created": pd.Series(np.datetime_as_string(days), dtype="str"),
            "stamp": pd.Series(rng.permutation(np.asarray(stamps)), dtype="str"),
        }
    )
    frame.loc[rng.random(rows) < 0.02, "created"] = ""
    frame["cluster_id"] = pd.arrays.IntegerArray(ids.astype(np.int64), ~has_text)
    names = {c: f"cluster {c}" for c in range(clusters)} | {-1: "Unclustered"}
    frame["cluster_label"] = pd.array(
        [names[int(c)] if ok else None for c, ok in zip(ids, has_text, strict=True)], dtype="string"
    )
    return frame


def steps(table: pd.DataFrame) -> list[tuple[str, Callable[[], Any]]]:
    """(name, what the app does on one interaction) for each step timed."""
    channel = facets.CategoryFilter("channel", ("email", "app"))
    score = facets.NumberFilter("score", 3, 5)
    created = facets.DateFilter("created", "2023-03-01", "2023-06-30")
    stamped = facets.DateFilter("stamp", "2023-01-15", "2023-01-31")

    def category_filter() -> Any:
        return facets.filtered_clusters(table, facets.filter_mask(table, [channel]))

    def all_filters() -> Any:
        mask = facets.filter_mask(table, [channel, score, created])
        return facets.filtered_clusters(table, mask), facets.breakdown(table, "channel", top=30, mask=mask)

    return [
        ("describe columns (kinds, ranges)", lambda: facets.describe_columns(table, exclude=["comment"])),
        ("category filter + cluster table", category_filter),
        ("number range filter", lambda: facets.filter_mask(table, [score])),
        ("date range filter", lambda: facets.filter_mask(table, [created])),
        ("date range filter, distinct timestamps", lambda: facets.filter_mask(table, [stamped])),
        ("breakdown, 12 values", lambda: facets.breakdown(table, "channel", top=30)),
        ("breakdown, 10,000 values, top 30", lambda: facets.breakdown(table, "customer", top=30)),
        ("breakdown, 10,000 values, all (CLI)", lambda: facets.breakdown(table, "customer")),
        ("three filters + cluster table + breakdown", all_filters),
        ("trends by week", lambda: facets.trends(table, "created", period="week")),
        ("trends + movers", lambda: facets.movers(facets.trends(table, "created").frame)),
    ]


def bench_facets(rows: int = 100_000, repeats: int = 5, seed: int = 0) -> list[dict[str, Any]]:
    """The median and the first seconds of each step over ``repeats`` runs, and whether the
    median meets ``GOAL_S``."""
    table = bench_table(rows, seed=seed)
    out = []
    for name, step in steps(table):
        facets._DATES.clear()  # the first run parses every date column it reads
        times = []
        for _ in range(max(repeats, 1)):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        out.append(
            {
                "step": name,
                "rows": rows,
                "median_s": round(median, 4),
                "first_s": round(times[0], 4),
                "goal_met": median < GOAL_S,
            }
        )
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"| step ({rows[0]['rows']:,} rows) | median s | first s | median under {GOAL_S:g} s |"
        if rows
        else "| step |",
        "|---|---:|---:|:---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['step']} | {row['median_s']:.3f} | {row['first_s']:.3f} | {'yes' if row['goal_met'] else 'NO'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench_facets", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the made-up table")
    parser.add_argument("--repeats", type=int, default=5, help="runs per step (the median is reported)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    rows = bench_facets(args.rows, args.repeats)
    print(markdown(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
        print(f"rows written to {args.json}")
    return 0 if all(row["goal_met"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
