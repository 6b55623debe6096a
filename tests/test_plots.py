"""The figures the app and ``--plots`` show: valid for Plotly, user text escaped, and a map
selection read back as the texts the user dragged over."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from pipeline import Table, plots
from tests.conftest import config_for, run_collect, topic_texts

HOSTILE = "<img src=x onerror=alert(1)> %{customdata} **x**"


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from tests.conftest import FakeEmbedder

    texts, _ = topic_texts(20)
    texts[0] = HOSTILE
    frame = pd.DataFrame({"comment": texts})
    out, _ = run_collect(
        Table.from_frame(frame, name="t.csv"),
        config_for(),
        tmp_path_factory.mktemp("cache"),
        FakeEmbedder(),
    )
    return out


def test_the_map_passes_plotlys_own_validation_and_escapes_user_text(result):
    figure = plots.map_figure(result)
    checked = go.Figure(figure.to_dict())  # raises on anything Plotly's schema does not take
    assert [t.type for t in checked.data] == ["scattergl"] * len(checked.data)
    assert sum(len(t.x) for t in figure.data) == result.corpus.n_texts
    spec = json.dumps(figure.to_plotly_json(), default=str)
    assert "<img" not in spec and "&lt;img src=x onerror=alert(1)&gt;" in spec
    assert len(checked.data) == 1  # one trace, however many clusters: quick for a browser to draw
    assert (
        checked.data[0].hovertemplate == "%{text}<br>rows: %{customdata}<extra></extra>"
    )  # user text: data only


def test_a_selection_on_the_map_gives_back_the_texts_under_it(result):
    points, _ = plots.map_frame(result)
    figure = plots.map_figure(result, points=(points, len(points)))
    members = plots.trace_members(points)
    # what Streamlit reports for three points of the map's trace
    chosen = [(0, 0), (0, 2), (0, 5)]
    reported = [
        {"curve_number": c, "point_index": i, "x": figure.data[c].x[i], "y": figure.data[c].y[i]}
        for c, i in chosen
    ]
    texts = plots.selected_texts(reported, members)
    layout = result.projection.layout
    assert len(texts) == 3
    for c, i in chosen:  # each selected text sits where its point was drawn
        (hit,) = [t for t in texts if np.allclose(layout[t], (figure.data[c].x[i], figure.data[c].y[i]))]
        assert hit in members[c]
    # a stale selection (from a map with more traces or points) selects nothing, never crashes
    stale = [{"curve_number": 99, "point_index": 0}, {"curve_number": 0, "point_index": 10**6}, {"x": 1}]
    assert plots.selected_texts(stale, members).size == 0


def test_the_sweep_chart_shows_every_score_and_round_ticks():
    table = pd.DataFrame(
        {
            "min_cluster_size": [5, 10, 20],
            "min_samples": [5, 10, 20],
            "clusters": [12, 7, 3],
            "noise_share": [0.3, 0.2, 0.1],
            "stability": [0.5, 0.7, 0.9],
            "separation": [-0.62, -0.1, 0.2],
            "recommended": [False, True, False],
        }
    )
    layout = plots.sweep_figure(table).layout
    bottom, top = layout.yaxis2.range
    assert bottom <= -0.62 and top >= 0.9  # the lowest separation is drawn, not clipped
    assert layout.yaxis2.tickformat == ".1f" and layout.yaxis2.dtick in (0.2, 0.5)
    assert layout.legend.yanchor == "bottom" and layout.legend.y >= 1  # above the plot, off the axes


def test_cluster_names_sit_at_their_centres_largest_first_without_overlap(result):
    from pipeline.edits import edited_from_result, merge

    edited = edited_from_result(result, [])
    annotations = plots.map_figure(result, labels=edited.labels, names=edited.names).layout.annotations
    clusters = result.clusters().query("id >= 0").sort_values("size", ascending=False)
    assert 1 <= len(annotations) <= len(clusters)
    assert annotations[0].text == plots.as_plain_text(clusters["label"].iloc[0], plots.NAME_CHARS)
    layout = result.projection.layout
    for note in annotations:  # each name inside its cluster's spread of points
        cid = next(
            c for c, n in edited.names.items() if plots.as_plain_text(n, plots.NAME_CHARS) == note.text
        )
        points = layout[edited.labels == cid]
        assert points[:, 0].min() <= note.x <= points[:, 0].max()
    # a crowded map: many clusters at one spot get one name, not a pile of them
    frame = pd.DataFrame(
        {
            "x": np.r_[np.zeros(50), [10.0]],
            "y": np.r_[np.zeros(50), [10.0]],
            "cluster_id": range(51),
            "rows": 1,
        }
    )
    crowded = plots.name_annotations(frame, {c: f"cluster number {c}" for c in range(51)})
    assert len(crowded) == 2
    # the map follows a merge: one name for the merged cluster
    ids = clusters["id"].tolist()[:2]
    merged = edited_from_result(result, [merge(edited.labels, edited.names, ids, "<b>Both</b>")])
    texts = [
        a.text for a in plots.map_figure(result, labels=merged.labels, names=merged.names).layout.annotations
    ]
    assert "&lt;b&gt;Both&lt;/b&gt;" in texts and not any(t.startswith("<") for t in texts)


def test_a_search_fades_the_rest_of_the_map_and_a_selection_still_reads_the_right_texts(result):
    lit = np.zeros(result.corpus.n_texts, dtype=bool)
    lit[[3, 10, 11]] = True
    shown = np.ones(result.corpus.n_texts, dtype=bool)
    shown[[4, 5]] = False  # a filter keeps the others
    points = plots.map_frame(result, shown=shown, highlight=lit)
    figure = plots.map_figure(result, points=points)
    faded, matched = figure.data
    assert faded.name == plots.FADED_NAME and len(faded.x) == result.corpus.n_texts - 5
    assert len(matched.x) == 3
    members = plots.trace_members(points[0])
    picked = plots.selected_texts([{"curve_number": 1, "point_index": i} for i in range(3)], members)
    assert picked.tolist() == [3, 10, 11]
    layout = result.projection.layout
    for i, text in enumerate(members[1]):
        assert np.allclose(layout[text], (matched.x[i], matched.y[i]))


def test_a_sample_of_a_big_map_keeps_every_highlighted_text(result):
    lit = np.zeros(result.corpus.n_texts, dtype=bool)
    lit[-5:] = True
    frame, total = plots.map_frame(result, max_points=20, highlight=lit)
    assert total == result.corpus.n_texts and len(frame) == 20
    assert set(np.flatnonzero(lit)) <= set(frame.index)


def test_texts_in_an_area_are_those_inside_the_box_or_lasso_concave_corners_included():
    grid = np.array([(x, y) for x in range(10) for y in range(10)], dtype=np.float64) + 0.5
    every = np.arange(len(grid))
    # an L: the left column band and the bottom row band, not the square between their arms
    ell = np.array([[0, 0], [10, 0], [10, 3], [3, 3], [3, 10], [0, 10]], dtype=np.float64)
    inside = plots.texts_in_regions(grid, every, [("lasso", ell)])
    expected = every[(grid[:, 0] < 3) | (grid[:, 1] < 3)]
    np.testing.assert_array_equal(inside, expected)
    # a box given corner to corner either way round; only the candidates count; areas add up
    box = plots.texts_in_regions(grid, every[::2], [("box", np.array([5.0, 2.0, 9.0, 7.0]))])
    assert set(box) == {i for i in every[::2] if 2 <= grid[i, 0] <= 5 and 7 <= grid[i, 1] <= 9}
    both = plots.texts_in_regions(grid, every, [("lasso", ell), ("box", np.array([9.0, 10.0, 9.0, 10.0]))])
    assert set(both) == set(expected) | {99}
    assert (
        plots.selection_regions([{"box": [0, 1, 0, 1]}, {"lasso": [[0, 0], [1, 0], [0, 1]]}])[1][0] == "lasso"
    )
