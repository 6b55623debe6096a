"""Plotly figures from a Result. Optional: no stage depends on them, and a failure here
never loses results (callers catch and warn)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from .result import Result

NOISE_COLOUR = "#b8b8b8"
# points the map draws, at most: past this a seeded sample (a selection still reads every text in
# its area, ``texts_in_regions``). Opening Explore at 100,000 texts in Chromium here: 1.2-1.7 s with
# 50,000 points, 1.1-1.2 s with 25,000, 0.96 s with 15,000 (plotly.js building its WebGL traces)
MAX_MAP_POINTS = 15_000
MAX_HOVER_CHARS = 160


def as_plain_text(text: str, limit: int = MAX_HOVER_CHARS) -> str:
    """Escape text for Plotly labels: Plotly renders a subset of HTML, user text must not be."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return html.escape(text, quote=False)


FADED = -2  # the map's trace of texts that do not match a search: drawn faint, under the others
FADED_NAME = "not matching the search"


def map_frame(
    result: Result,
    max_points: int | None = None,
    seed: int = 0,
    labels: np.ndarray | None = None,
    names: dict[int, str] | None = None,
    shown: np.ndarray | None = None,
    highlight: np.ndarray | None = None,
) -> tuple[pd.DataFrame, int]:
    """One point per distinct text (sampled past ``max_points``, by default ``MAX_MAP_POINTS``);
    returns (points, total), the points indexed by distinct-text index.

    ``labels``/``names`` override the result's (e.g. after the analyst's edits). ``shown`` (a
    mask over the distinct texts, e.g. those with a row a filter keeps) leaves the others off the
    map; ``highlight`` (a mask, e.g. a search's matches) puts the rest in one faint trace, and a
    sample keeps every highlighted point it can."""
    names = names if names is not None else result.labels.label_of()
    labels = np.asarray(labels if labels is not None else result.clustering.labels)
    lit = np.ones(len(labels), dtype=bool) if highlight is None else np.asarray(highlight, dtype=bool)
    # which points first, then their columns: at 100,000 texts building every column of every
    # text and sampling after was 0.2 s of each edit and slider step
    index = np.arange(len(labels)) if shown is None else np.flatnonzero(np.asarray(shown, dtype=bool))
    total = len(index)
    max_points = MAX_MAP_POINTS if max_points is None else max_points
    if total > max_points:
        rng = np.random.default_rng(seed)
        first = np.flatnonzero(lit[index])[:max_points]  # highlighted points first
        rest = np.ones(total, dtype=bool)
        rest[first] = False
        keep = np.concatenate(
            [first, rng.choice(np.flatnonzero(rest), size=max_points - len(first), replace=False)]
        )
        index = index[np.sort(keep)]
    ids = labels[index]
    found, inverse = np.unique(ids, return_inverse=True)
    points = pd.DataFrame(
        {
            "x": result.projection.layout[index, 0],
            "y": result.projection.layout[index, 1],
            "cluster_id": ids,
            "cluster_label": np.array([names.get(int(c), "") for c in found], dtype=object)[
                inverse.reshape(-1)
            ],
            "text": pd.Series(
                np.asarray(result.corpus.texts, dtype=object)[index], index=index, dtype=object
            ),
            "rows": np.asarray(result.corpus.counts)[index],
            "trace": np.where(lit[index], ids, FADED),
        },
        index=index,
    )
    return points, total


def trace_members(points: pd.DataFrame) -> list[np.ndarray]:
    """For each trace of ``map_figure(points=points)``, the distinct-text index of each of its
    points, in drawing order: a map selection's (curve_number, point_index) -> the text selected.

    Two traces at most, whatever the number of clusters (a browser draws one WebGL trace of
    10,000 points far faster than 100 traces): the texts a search did not match (faint, drawn
    first, so under the rest), then every other text, the unclustered first."""
    keys, ids = points["trace"].to_numpy(), points["cluster_id"].to_numpy()
    index = points.index.to_numpy()
    lit = np.flatnonzero(keys != FADED)
    lit = lit[np.argsort(ids[lit] >= 0, kind="stable")]
    faded = np.flatnonzero(keys == FADED)
    return [index[part] for part in (faded, lit) if len(part)]


def selected_texts(points: list[dict], members: list[np.ndarray]) -> np.ndarray:
    """The distinct texts (sorted, unique) of a map selection's points, as Streamlit reports them
    ({"curve_number": trace, "point_index": position in the trace, ...}); points that do not
    belong to this map (a stale selection after the map changed) are left out."""
    picked = []
    for point in points:
        trace, position = point.get("curve_number"), point.get("point_index")
        if isinstance(trace, int) and isinstance(position, int) and 0 <= trace < len(members):
            if 0 <= position < len(members[trace]):
                picked.append(int(members[trace][position]))
    return np.unique(np.asarray(picked, dtype=np.int64))


# a map selection's areas come from the browser: at most this many, a lasso of at most this many corners
MAX_REGIONS, MAX_CORNERS = 32, 10_000


def selection_regions(raw: object) -> list[tuple[str, np.ndarray]]:
    """The areas of a map selection, as the browser reports them ([{"box": [x0, x1, y0, y1]} or
    {"lasso": [[x, y], ...]}, ...] in the map's coordinates), as ("box", [x0, x1, y0, y1]) and
    ("lasso", corners) pairs. They come from the browser: anything but finite numbers in these
    shapes, or more than ``MAX_REGIONS`` areas or ``MAX_CORNERS`` corners, is no region at all
    (the selection then falls back to its drawn points)."""
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_REGIONS:
        return []
    regions = []
    for item in raw:
        if not isinstance(item, dict) or len(item) != 1:
            return []
        kind, value = next(iter(item.items()))
        try:
            xy = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return []
        if not np.isfinite(xy).all():
            return []
        if kind == "box" and xy.shape == (4,):
            regions.append(("box", xy))
        elif kind == "lasso" and xy.ndim == 2 and xy.shape[1] == 2 and 3 <= len(xy) <= MAX_CORNERS:
            regions.append(("lasso", xy))
        else:
            return []
    return regions


def texts_in_regions(
    layout: np.ndarray, candidates: np.ndarray, regions: list[tuple[str, np.ndarray]]
) -> np.ndarray:
    """The distinct texts among ``candidates`` (indices into ``layout``, the map's coordinates)
    inside any of ``regions`` (``selection_regions``), sorted: every text in the area, drawn or
    not, where a map of many texts draws a sample (``MAX_MAP_POINTS``)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    x, y = layout[candidates, 0], layout[candidates, 1]
    inside = np.zeros(len(candidates), dtype=bool)
    for kind, xy in regions:
        if kind == "box":
            (x0, x1), (y0, y1) = sorted(xy[:2]), sorted(xy[2:])
            inside |= (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
            continue
        low, high = xy.min(axis=0), xy.max(axis=0)
        near = np.flatnonzero((x >= low[0]) & (x <= high[0]) & (y >= low[1]) & (y <= high[1]) & ~inside)
        inside[near] |= _in_polygon(x[near], y[near], xy)
    return candidates[inside]


def _in_polygon(x: np.ndarray, y: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """Which points lie inside the polygon (even-odd rule: a ray to the right crosses its edges
    an odd number of times), the lasso's closing edge included. The points are sorted by y once,
    so each edge tests only the points in its band of y: a lasso of hundreds of corners over
    100,000 points is a few passes over them, not one per corner."""
    order = np.argsort(y, kind="stable")
    ys, xs = y[order], x[order]
    flips = np.zeros(len(x), dtype=bool)  # in y order
    for (xa, ya), (xb, yb) in zip(corners, np.roll(corners, 1, axis=0), strict=True):
        if ya == yb:
            continue  # a level edge: a ray along it crosses nothing
        # the edge crosses the ray of a point when min(ya, yb) <= y < max(ya, yb)
        start, stop = np.searchsorted(ys, sorted((ya, yb)), side="left")
        band = slice(start, stop)
        flips[band] ^= xs[band] < xa + (ys[band] - ya) * (xb - xa) / (yb - ya)
    inside = np.empty(len(x), dtype=bool)
    inside[order] = flips
    return inside


MAX_NAMES = 40  # names written on the map, largest clusters first
NAME_CHARS = 28
# the map's size in pixels as the app draws it (width of a wide layout's main column), to keep
# names from overlapping; a narrower window makes boxes relatively larger, so a margin is kept
MAP_PIXELS = (1000, 600)
CHAR_PIXELS, LINE_PIXELS = 7.5, 18


def name_annotations(frame: pd.DataFrame, label_of: dict[int, str], limit: int = MAX_NAMES) -> list[dict]:
    """Plotly annotations naming clusters at their centres (the median of their points): the
    largest clusters first, a name left out when its box would overlap one already placed."""
    clustered = frame[frame["cluster_id"] >= 0]
    if clustered.empty:
        return []
    x_span = max(float(np.ptp(frame["x"])), 1e-9)
    y_span = max(float(np.ptp(frame["y"])), 1e-9)
    per_x, per_y = x_span / MAP_PIXELS[0], y_span / MAP_PIXELS[1]  # data units per pixel
    centres = clustered.groupby("cluster_id").agg(x=("x", "median"), y=("y", "median"), rows=("rows", "sum"))
    placed: list[tuple[float, float, float, float]] = []
    out = []
    order = centres.sort_values("rows", ascending=False, kind="stable")
    # plain lists, not iterrows: a Series per cluster was 0.09 s of each map paint at 300 clusters
    for cid, x, y in zip(order.index.tolist(), order["x"].tolist(), order["y"].tolist(), strict=True):
        name = str(label_of.get(int(cid), cid))
        half_w = (min(len(name), NAME_CHARS) * CHAR_PIXELS + 8) / 2 * per_x
        half_h = LINE_PIXELS / 2 * per_y
        box = (x - half_w, x + half_w, y - half_h, y + half_h)
        if any(box[0] < b[1] and b[0] < box[1] and box[2] < b[3] and b[2] < box[3] for b in placed):
            continue
        placed.append(box)
        out.append(
            {
                "x": float(x),
                "y": float(y),
                "text": as_plain_text(name, NAME_CHARS),
                "showarrow": False,
                "font": {"size": 12, "color": "#1f1f1f"},
                "bgcolor": "rgba(255,255,255,0.75)",
                "borderpad": 2,
            }
        )
        if len(out) == limit:
            break
    return out


def map_figure(result: Result, **options):
    """``map_spec`` as a Plotly figure (the command line's ``--plots``, the app's fallback)."""
    import plotly.graph_objects as go

    return go.Figure(map_spec(result, **options), _validate=False)


def map_spec(
    result: Result,
    max_points: int | None = None,
    height: int = 600,
    labels: np.ndarray | None = None,
    names: dict[int, str] | None = None,
    points: tuple[pd.DataFrame, int] | None = None,
    names_on_map: bool = True,
) -> dict:
    """A WebGL scatter of the 2-D layout coloured by cluster, unclustered points grey, in one
    trace (two with a search: ``trace_members``); the clusters' names written at their centres
    (``name_annotations``).

    ``points`` is ``map_frame(...)``'s answer when the caller has it already. The traces are
    built as plain dicts and checked once by Plotly's own schema in a test, not on every call
    (Plotly's validation was most of the time at 10,000 points). A plain dict {"data", "layout"}
    (numpy arrays inside), for a figure or for the app's map component: ``compose`` of
    ``map_layers``."""
    points = points if points is not None else map_frame(result, max_points, labels=labels, names=names)
    return compose(*map_layers(points, height=height, names_on_map=names_on_map))


def map_layers(
    points: tuple[pd.DataFrame, int], height: int = 600, names_on_map: bool = True
) -> tuple[dict, dict]:
    """The map in two parts: ``base``, what the points are (positions, escaped texts, rows: the
    bulk, 1.0 MB of JSON at 10,000 texts, 5.1 MB at 100,000), and ``paint``, what the clustering makes of them (the
    traces' members as positions in the base, each point's cluster, the clusters' names and
    colours, the names on the map). An edit or a new clustering of the same points changes only
    the paint, so the app sends the base once (``pages/ui/scatter.js`` composes them as
    ``compose`` does)."""
    return map_base(points[0]), map_paint(points, height, names_on_map)


def map_base(frame: pd.DataFrame) -> dict:
    """``map_layers``' base: the same for every clustering and edit of these points."""
    return {
        "x": frame["x"].to_numpy(),
        "y": frame["y"].to_numpy(),
        "text": [as_plain_text(t) for t in frame["text"].to_numpy()],  # user text, escaped
        "rows": frame["rows"].to_numpy(),
    }


def map_paint(points: tuple[pd.DataFrame, int], height: int = 600, names_on_map: bool = True) -> dict:
    """``map_layers``' paint: the traces, clusters, names and colours over the base's points."""
    frame, total = points
    ids, keys = frame["cluster_id"].to_numpy(), frame["trace"].to_numpy()
    found, first = np.unique(ids, return_index=True)  # one name per cluster, not per point
    label_of = dict(zip(found.tolist(), frame["cluster_label"].iloc[first].tolist(), strict=True))
    palette = _palette()
    traces = []
    for members in trace_members(frame):
        at = frame.index.get_indexer(members)
        traces.append({"at": at, "ids": ids[at], "faded": bool(keys[at[0]] == FADED)})
    title = "Map of texts (closer = more similar)"
    if total > len(frame):
        title += f": showing a sample of {len(frame):,} of {total:,} points"
    lit = frame[frame["trace"] != FADED]
    return {
        "traces": traces,
        # keys as strings: the JSON the browser gets has no other kind
        "names": {str(c): as_plain_text(n if c < 0 else f"{c}: {n}", 40) for c, n in label_of.items()},
        "colours": {str(c): NOISE_COLOUR if c < 0 else palette[c % len(palette)] for c in label_of},
        "small": len(frame) > 5000,
        "layout": {
            "title": {"text": title},
            "height": height,
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "showlegend": False,  # the clusters' names are on the map, at their centres
            "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
            "dragmode": "select",  # a drag selects texts to read; zoom and pan stay in the toolbar
            "annotations": name_annotations(lit, label_of) if names_on_map else [],
        },
    }


def compose(base: dict, paint: dict) -> dict:
    """``map_layers``' two parts as the figure {"data", "layout"}; scatter.js's ``compose`` does
    the same in the browser (a test holds them equal)."""
    text = np.asarray(base["text"], dtype=object)
    small = paint["small"]
    traces = []
    for trace in paint["traces"]:
        at, faded = np.asarray(trace["at"], dtype=np.int64), trace["faded"]
        ids = [str(c) for c in np.asarray(trace["ids"]).tolist()]
        traces.append(
            {
                "type": "scattergl",
                "x": np.asarray(base["x"])[at],
                "y": np.asarray(base["y"])[at],
                "mode": "markers",
                "name": FADED_NAME if faded else "texts",
                "marker": {
                    "size": (3 if faded else 5) if small else (5 if faded else 7),
                    "color": NOISE_COLOUR if faded else [paint["colours"][c] for c in ids],
                    "opacity": 0.2 if faded else 0.8,
                },
                # user text only ever enters through text, escaped; never the template
                "text": [f"<b>{paint['names'][c]}</b><br>{t}" for c, t in zip(ids, text[at], strict=True)],
                "customdata": np.asarray(base["rows"])[at],
                "hovertemplate": "%{text}<br>rows: %{customdata}<extra></extra>",
            }
        )
    return {"data": traces, "layout": paint["layout"]}


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


def tree_frame(result: Result, names: dict[int, str] | None = None) -> pd.DataFrame:
    """The cluster tree as rows a Plotly icicle or sunburst takes: id, parent ("" for the root),
    label, rows, is_cluster. Internal nodes are named after their two largest clusters."""
    names = names if names is not None else result.labels.label_of()
    nodes = result.tree.nodes
    size_of = dict(zip(nodes["id"], nodes["size"], strict=True))
    rows = []
    for node in nodes.itertuples():
        if node.is_cluster:
            label = f"{node.id}: {names.get(int(node.id), '')}"
        else:
            top = sorted(node.clusters, key=lambda c: -size_of.get(c, 0))[:2]
            label = " + ".join(str(names.get(c, c)).split(",")[0] for c in top) + (
                " + …" if len(node.clusters) > 2 else ""
            )
        rows.append(
            {
                "id": str(node.id) if node.is_cluster else f"n{node.id}",
                "parent": "" if node.parent_id < 0 else f"n{node.parent_id}",
                "label": as_plain_text(label, 60),
                "rows": int(node.size),
                "is_cluster": bool(node.is_cluster),
            }
        )
    return pd.DataFrame(rows, columns=["id", "parent", "label", "rows", "is_cluster"])


def tree_figure(result: Result, kind: str = "icicle", names: dict[int, str] | None = None, height: int = 600):
    """The hierarchy above the clusters (``result.tree``) as a Plotly icicle (or ``kind =
    "sunburst"``): click a node to zoom into that coarser group. Unclustered texts are not in it."""
    import plotly.graph_objects as go

    frame = tree_frame(result, names)
    trace = go.Icicle if kind == "icicle" else go.Sunburst
    figure = go.Figure(
        trace(
            ids=frame["id"],
            parents=frame["parent"],
            labels=frame["label"],
            values=frame["rows"],
            branchvalues="total",
            hovertemplate="%{label}<br>%{value} rows<extra></extra>",
            maxdepth=4,
        )
    )
    figure.update_layout(
        title="Cluster tree (closest clusters join first)",
        height=height,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
    )
    return figure


def sweep_figure(table: pd.DataFrame):
    """``clustering.sweep.suggest_settings(...).table`` as a chart: clusters (bars) and noise share and
    stability (lines) per min_cluster_size; the recommended setting is marked."""
    import plotly.graph_objects as go

    x = [f"{int(r.min_cluster_size)}/{int(r.min_samples)}" for r in table.itertuples()]
    figure = go.Figure()
    figure.add_trace(go.Bar(x=x, y=table["clusters"], name="clusters", marker_color="#4c78a8", yaxis="y"))
    for column, colour in (
        ("noise_share", NOISE_COLOUR),
        ("stability", "#f58518"),
        ("separation", "#54a24b"),
    ):
        figure.add_trace(
            go.Scatter(
                x=x,
                y=table[column],
                name=column.replace("_", " "),
                mode="lines+markers",
                yaxis="y2",
                line={"color": colour},
            )
        )
    best = table.index[table["recommended"]]
    if len(best):
        figure.add_vline(x=list(table.index).index(best[0]), line_dash="dot", annotation_text="recommended")
    # the right axis holds shares (0..1) and scores (separation runs from -1): its range covers
    # every value drawn, and its ticks fall on round numbers of their own, not on the left axis'
    lowest = float(
        np.nanmin(table[["noise_share", "stability", "separation"]].to_numpy(dtype=float), initial=0.0)
    )
    bottom = min(0.0, np.floor(lowest * 10) / 10 - 0.05)
    figure.update_layout(
        title="Settings sweep (min_cluster_size / min_samples)",
        xaxis={"title": "min_cluster_size / min_samples", "type": "category"},
        yaxis={"title": "clusters", "rangemode": "tozero"},
        yaxis2={
            "title": "share / score",
            "overlaying": "y",
            "side": "right",
            "range": [bottom, 1.05],
            "tickmode": "linear",
            "tick0": 0.0,
            "dtick": 0.2 if bottom > -0.45 else 0.5,
            "tickformat": ".1f",
            "showgrid": False,
            "zeroline": True,
        },
        # the legend sits above the plot, under the title, clear of both axis titles
        legend={"orientation": "h", "x": 0, "y": 1.02, "xanchor": "left", "yanchor": "bottom"},
        margin={"l": 10, "r": 10, "t": 80, "b": 10},
    )
    return figure


def breakdown_figure(frame: pd.DataFrame, values: list[str], clusters: list[int], column: str):
    """A heatmap of ``facets.breakdown``'s frame: for each value of ``column`` (rows, in the order
    given), the share of its rows in each cluster (columns, in the order given); the hover gives
    rows, lift and residual. Cells with no rows are blank."""
    import plotly.graph_objects as go

    cells = frame.set_index(["value", "cluster_id"])
    labels = dict(zip(frame["cluster_id"], frame["cluster_label"], strict=False))
    x = [as_plain_text(f"{c}: {labels.get(c, c)}" if c != -1 else labels.get(c, c), 30) for c in clusters]
    y = [as_plain_text(v, 30) for v in values]
    z, hover = [], []
    for value in values:
        z_row, hover_row = [], []
        for cid in clusters:
            if (value, cid) in cells.index:
                cell = cells.loc[(value, cid)]
                z_row.append(float(cell["share_of_value"]))
                hover_row.append(
                    f"{int(cell['rows']):,} rows ({float(cell['share_of_value']):.0%} of the value's), "
                    f"lift {float(cell['lift']):.2f}, residual {float(cell['residual']):+.1f}"
                )
            else:
                z_row.append(None)
                hover_row.append("no rows")
        z.append(z_row)
        hover.append(hover_row)
    figure = go.Figure(
        {
            "data": [
                {
                    "type": "heatmap",
                    "x": x,
                    "y": y,
                    "z": z,
                    "text": hover,
                    "colorscale": "Blues",
                    "reversescale": True,  # Plotly's Blues runs dark to light: more rows, darker
                    "zmin": 0,
                    "hovertemplate": "%{y} · %{x}<br>%{text}<extra></extra>",
                    "colorbar": {"title": {"text": "share of the value's rows"}, "tickformat": ".0%"},
                }
            ],
            "layout": {
                "title": {"text": f"Clusters by {as_plain_text(column, 40)}"},
                "height": max(320, 26 * len(values) + 160),
                "xaxis": {"tickangle": -40, "type": "category"},
                "yaxis": {"autorange": "reversed", "type": "category"},
                "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
            },
        },
        _validate=False,
    )
    return figure


def trends_figure(frame: pd.DataFrame, clusters: list[int], period: str):
    """Rows per period (``facets.trends``' frame) of the chosen clusters, one line each."""
    import plotly.graph_objects as go

    palette = _palette()
    traces = []
    for cid in clusters:
        part = frame[frame["cluster_id"] == cid]
        if part.empty:
            continue
        name = as_plain_text(part["cluster_label"].iloc[0], 40)
        traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": part["period"].tolist(),
                "y": part["rows"].to_numpy(),
                "name": name if cid < 0 else f"{cid}: {name}",
                "line": {"color": NOISE_COLOUR if cid < 0 else palette[cid % len(palette)]},
                "meta": name,
                "hovertemplate": "<b>%{meta}</b><br>%{x}: %{y} rows<extra></extra>",
            }
        )
    return go.Figure(
        {
            "data": traces,
            "layout": {
                "title": {"text": f"Rows per {period}"},
                "height": 420,
                "xaxis": {"type": "date"},
                "yaxis": {"title": {"text": "rows"}, "rangemode": "tozero"},
                "legend": {"orientation": "h", "y": -0.2},
                "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
            },
        },
        _validate=False,
    )
