"""Plotly figures from a Result. Optional: no stage depends on them, and a failure here
never loses results (callers catch and warn)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .result import Result

NOISE_COLOUR = "#b8b8b8"
MAX_MAP_POINTS = 50_000
MAX_HOVER_CHARS = 160


def as_plain_text(text: str, limit: int = MAX_HOVER_CHARS) -> str:
    """Escape text for Plotly labels: Plotly renders a subset of HTML, user text must not be."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=False)


def trace_order(labels: np.ndarray) -> list[int]:
    """Cluster ids in the order of the map's traces (clusters by id, unclustered last)."""
    return sorted({int(c) for c in labels}, key=lambda c: (c == -1, c))


def map_frame(
    result: Result,
    max_points: int = MAX_MAP_POINTS,
    seed: int = 0,
    labels: np.ndarray | None = None,
    names: dict[int, str] | None = None,
) -> tuple[pd.DataFrame, int]:
    """One point per distinct text (sampled past ``max_points``); returns (points, total).

    ``labels``/``names`` override the result's (e.g. after the analyst's edits)."""
    names = names if names is not None else result.labels.label_of()
    labels = labels if labels is not None else result.clustering.labels
    points = pd.DataFrame(
        {
            "x": result.projection.layout[:, 0],
            "y": result.projection.layout[:, 1],
            "cluster_id": labels,
            "cluster_label": [names.get(int(c), "") for c in labels],
            "text": result.corpus.texts,
            "rows": result.corpus.counts,
        }
    )
    total = len(points)
    if total > max_points:
        keep = np.random.default_rng(seed).choice(total, size=max_points, replace=False)
        points = points.iloc[np.sort(keep)]
    return points, total


def map_figure(
    result: Result,
    max_points: int = MAX_MAP_POINTS,
    height: int = 600,
    labels: np.ndarray | None = None,
    names: dict[int, str] | None = None,
):
    """A WebGL scatter of the 2-D layout, one trace per cluster; unclustered points grey."""
    import plotly.graph_objects as go

    points, total = map_frame(result, max_points, labels=labels, names=names)
    figure = go.Figure()
    palette = _palette()
    order = trace_order(points["cluster_id"].to_numpy())
    for position, cid in enumerate(order):
        part = points[points["cluster_id"] == cid]
        name = as_plain_text(part["cluster_label"].iloc[0], 40)
        figure.add_trace(
            go.Scattergl(
                x=part["x"],
                y=part["y"],
                mode="markers",
                name=f"{cid}: {name}" if cid != -1 else name,
                marker={
                    "size": 5 if len(points) > 5000 else 7,
                    "color": NOISE_COLOUR if cid == -1 else palette[position % len(palette)],
                    "opacity": 0.5 if cid == -1 else 0.8,
                },
                # user text only ever enters through customdata, escaped; never the template
                customdata=np.stack(
                    [part["text"].map(as_plain_text), part["rows"], np.full(len(part), name, dtype=object)],
                    axis=1,
                ),
                hovertemplate="<b>%{customdata[2]}</b><br>%{customdata[0]}<br>rows: %{customdata[1]}<extra></extra>",
            )
        )
    title = "Map of texts (closer = more similar)"
    if total > len(points):
        title += f": showing a sample of {len(points):,} of {total:,} points"
    figure.update_layout(
        title=title,
        height=height,
        xaxis={"visible": False},
        yaxis={"visible": False},
        legend={"itemsizing": "constant"},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def sizes_figure(result: Result, clusters: pd.DataFrame | None = None):
    """Horizontal bars: rows per cluster, largest on top; unclustered in grey."""
    import plotly.graph_objects as go

    clusters = result.labels.clusters if clusters is None else clusters
    names = [
        as_plain_text(f"{c}: {name}" if c != -1 else name, 50)
        for c, name in zip(clusters["id"], clusters["label"], strict=True)
    ]
    colours = [NOISE_COLOUR if c == -1 else "#4c78a8" for c in clusters["id"]]
    figure = go.Figure(
        go.Bar(
            x=clusters["size"],
            y=names,
            orientation="h",
            marker_color=colours,
            hovertemplate="%{y}<br>%{x} rows<extra></extra>",
        )
    )
    figure.update_layout(
        title="Rows per cluster",
        height=max(300, 22 * len(names) + 80),
        yaxis={"autorange": "reversed"},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def _palette() -> list[str]:
    import plotly.express as px

    return px.colors.qualitative.Dark24 + px.colors.qualitative.Light24
