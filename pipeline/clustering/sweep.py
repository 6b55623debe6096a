"""Suggest clustering settings: a sweep of HDBSCAN's ``min_cluster_size`` (and ``min_samples``) on
a cached projection (one neighbour tree per ``min_samples``, every ``min_cluster_size`` applied
to it), each setting measured as the cluster stage would, and a recommended point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import hdbscan as hd
from . import readouts
from .readouts import LARGEST_SHARE, MIN_STABILITY_POINTS, STABILITY_FRACTION, STABILITY_RUNS

SUGGEST_SAMPLE = 50_000  # texts "suggest settings" sweeps on, at most (sizes scaled to the sample)


@dataclass(frozen=True)
class Suggestion:
    """A sweep over HDBSCAN settings: one row per setting and the recommended one.

    ``table`` columns: min_cluster_size, min_samples, clusters, noise_share, separation,
    stability, score, recommended. ``settings`` is the recommended point as
    ``{"cluster.min_cluster_size": ..., "cluster.min_samples": ...}`` for ``with_values``."""

    table: pd.DataFrame
    settings: dict[str, int]
    reason: str
    algorithm: str = hd.CLUSTERER.name  # the cluster.algorithm whose settings these are


def suggest_settings(
    projection: Any,
    weights: np.ndarray | None = None,
    min_cluster_sizes: list[int] | None = None,
    min_samples: list[int] | None = None,
    method: str = "eom",
    epsilon: float = -1.0,
    seed: int = 0,
    vectors: np.ndarray | None = None,
) -> Suggestion:
    """Sweep ``min_cluster_size`` (and ``min_samples``) on a cached ``Projection`` and recommend
    the setting with the best ``score`` = stability x (1 - noise share) x max(separation, 0),
    among settings with at least two clusters and, when any has one, none holding more than
    ``LARGEST_SHARE`` of the texts (ties: the automatic size, then larger sizes). Each setting is
    clustered as the cluster stage would (``hdbscan.select``, with ``vectors`` the embeddings).

    By default: seven sizes from half to four times the automatic one, with the automatic
    ``min_samples`` of the automatic size; give ``min_samples`` (0 = half of each size) to sweep
    it too. The expensive part of HDBSCAN (the neighbour tree) is built once per ``min_samples``
    and per stability subsample; every ``min_cluster_size`` is then applied to it, so a sweep of a
    20,000-text projection takes a few seconds. Past ``SUGGEST_SAMPLE`` texts the sweep runs on
    a seeded sample of that many, with the sizes scaled to it; the table still gives the sizes
    for the whole set. Separation favours fewer, rounder clusters: the
    recommendation is a starting point, not ground truth."""
    coords = np.asarray(projection.coords, dtype=np.float64)
    n = len(coords)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    auto = hd.auto_min_cluster_size(n)
    if min_cluster_sizes is None:
        grid = {max(2, int(round(auto * f))) for f in (0.5, 0.75, 1, 1.5, 2, 3, 4)}
        min_cluster_sizes = sorted(s for s in grid if s <= max(2, n // 2))
    if min_samples is None:
        # one value shared by every size: one neighbour tree serves the whole sweep
        min_samples = [hd.auto_min_samples(auto)]
    automatic_level = epsilon < 0
    eps = hd.auto_epsilon(projection) if automatic_level else float(epsilon)
    umap = getattr(projection, "method", "") == "umap"
    rng = np.random.default_rng(seed)
    share = 1.0
    if vectors is not None and len(vectors) != n:
        vectors = None
    if n > SUGGEST_SAMPLE:  # a seeded sample, sizes scaled to it (as cluster.fit_sample does)
        sample = np.sort(rng.choice(n, SUGGEST_SAMPLE, replace=False))
        coords, weights, share = coords[sample], weights[sample], SUGGEST_SAMPLE / n
        vectors = None if vectors is None else np.asarray(vectors[sample])
    points = len(coords)

    def sized(value: int, least: int) -> int:
        return max(least, int(round(value * share)))

    subsets = [
        np.sort(rng.choice(points, int(round(points * STABILITY_FRACTION)), replace=False))
        for _ in range(STABILITY_RUNS if points >= MIN_STABILITY_POINTS else 0)
    ]
    rows = []
    from sklearn.metrics import adjusted_rand_score

    for given_ms in min_samples:
        by_ms: dict[int, list[int]] = {}
        for mcs in min_cluster_sizes:
            ms = min(given_ms or hd.auto_min_samples(mcs), n - 1)
            by_ms.setdefault(ms, []).append(mcs)
        for ms, sizes in by_ms.items():
            full = hd.HdbscanTree(coords, sized(ms, 1))
            subs = [hd.HdbscanTree(coords[s], sized(ms, 1)) for s in subsets]
            for mcs in sizes:
                settings = hd.Settings(sized(mcs, 2), sized(ms, 1), method, eps, automatic_level)
                labels, _, info = hd.select(full, vectors, weights, settings, umap, seed)
                aris = [
                    adjusted_rand_score(
                        labels[s],
                        hd.select(
                            t,
                            None if vectors is None else vectors[s],
                            weights[s],
                            settings,
                            umap,
                            seed,
                            info.get("level", 0),
                        )[0],
                    )
                    for s, t in zip(subsets, subs, strict=True)
                ]
                total = max(weights.sum(), 1)
                noise = float(weights[labels == -1].sum() / total)
                clustered = labels >= 0
                largest = (
                    np.bincount(labels[clustered], weights=weights[clustered]).max() if clustered.any() else 0
                )
                sep = readouts.separation(coords, labels, seed)
                rows.append(
                    {
                        "min_cluster_size": mcs,
                        "min_samples": ms,
                        "clusters": int(len(set(labels.tolist()) - {-1})),
                        "noise_share": round(noise, 4),
                        "largest_share": round(float(largest / total), 4),
                        "separation": np.nan if sep is None else round(sep, 4),
                        "stability": round(float(np.mean(aris)), 4) if aris else np.nan,
                    }
                )
    table = pd.DataFrame(rows).drop_duplicates(["min_cluster_size", "min_samples"])
    stab = table["stability"].fillna(1.0)
    table["score"] = (stab * (1 - table["noise_share"]) * table["separation"].fillna(0).clip(lower=0)).round(
        4
    )
    table.loc[table["clusters"] < 2, "score"] = 0.0
    # a setting whose largest cluster holds most of the texts is never recommended over one without
    blob = table["largest_share"] > LARGEST_SHARE
    order = table.assign(
        is_auto=table["min_cluster_size"] == auto,
        fits=~blob if (~blob & (table["clusters"] >= 2)).any() else True,
    ).sort_values(["fits", "score", "is_auto", "min_cluster_size"], ascending=[False, False, False, False])
    best = order.index[0]
    table["recommended"] = table.index == best
    pick = table.loc[best]
    reason = (
        f"min_cluster_size={int(pick.min_cluster_size)}, min_samples={int(pick.min_samples)}: "
        f"{int(pick.clusters)} clusters, the largest {pick.largest_share:.0%}, {pick.noise_share:.0%} unclustered, "
        f"stability {pick.stability:.2f}, separation {pick.separation:.2f} (best score of {len(table)} settings)"
    )
    return Suggestion(
        table=table.sort_values(["min_samples", "min_cluster_size"]).reset_index(drop=True),
        settings={
            "cluster.min_cluster_size": int(pick.min_cluster_size),
            "cluster.min_samples": int(pick.min_samples),
        },
        reason=reason,
    )
