"""The Explore map (``pages/ui/scatter.py``): one element for the page's life whose figure changes
in place, a box selection that reads the texts it holds (never those of an older map), and
Streamlit's own chart where plotly.js cannot be served."""

from __future__ import annotations

import filecmp
import json
import re
from pathlib import Path

import plotly
import pytest

import pipeline
from pages.ui import scatter
from pipeline import plots
from tests.test_app import assert_healthy, explore_survey, map_figure, merge, metrics, texts, warnings


def map_element(at):
    (element,) = [e for e in at.get("bidi_component") if e.proto.id.endswith("-map")]
    return element


def select(at, revision: str, points: list[list[int]]):
    """What the browser sends after a box or lasso: the map's revision and [trace, index] pairs."""
    at.session_state["map"] = {"selection": {"revision": revision, "points": points}}
    return at.run()


def select_areas(at, revision: str, regions: list):
    """What the browser sends after a box or lasso drawn by scatter.js: the areas, no points."""
    at.session_state["map"] = {"selection": {"revision": revision, "regions": regions, "points": []}}
    return at.run()


def selection_lines(at) -> list[str]:
    return [t for t in texts(at) if " texts selected (" in t]


def test_the_map_keeps_its_element_and_reads_only_a_selection_made_on_what_it_shows(app):
    at = explore_survey(app)
    before, element = map_figure(at), map_element(at).proto.id
    trace = before["data"][0]
    assert trace["type"] == "scattergl" and len(trace["x"]) == len(trace["text"]) > 3

    select(at, before["revision"], [[0, 0], [0, 1], [0, 2]])
    assert_healthy(at)
    assert selection_lines(at) and selection_lines(at)[0].startswith("3 texts selected (3 rows)")

    # a new clustering recolours the same element; the old selection meant other points: dropped
    at.select_slider(key="set:cluster.min_cluster_size").set_value(10).run()
    assert_healthy(at)
    after = map_figure(at)
    assert map_element(at).proto.id == element and after["revision"] != before["revision"]
    assert selection_lines(at) == []

    # a selection that names points the map does not have selects nothing and breaks nothing
    for hostile in ([[7, 0], [0, 10**6]], [["a", 1]], [[1, 2, 3]], "all", [[10**30, 0]]):
        select(at, after["revision"], hostile)
        assert_healthy(at)
        assert selection_lines(at) == [] and not warnings(at), hostile
    at.session_state["map"] = {"selection": ["not", "a", "selection"]}
    assert_healthy(at.run())


def test_without_plotly_js_the_map_is_streamlits_own_chart(app, monkeypatch):
    monkeypatch.setattr(scatter, "serve_plotly_js", lambda: False)
    at = explore_survey(app)
    assert_healthy(at)
    assert [c.key for c in at.get("plotly_chart") if c.key == "map"] == ["map"]
    assert at.get("bidi_component") == []
    assert map_figure(at)["data"][0]["type"] == "scattergl"


def test_plotly_js_is_copied_from_the_plotly_package_or_the_page_is_told_it_cannot(tmp_path, monkeypatch):
    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    target = tmp_path / "static" / "plotly.min.js"
    monkeypatch.setattr(scatter, "STATIC_JS", target)
    scatter.serve_plotly_js.cache_clear()
    try:
        assert scatter.serve_plotly_js()
        assert filecmp.cmp(source, target, shallow=False)
        assert target.stat().st_mode & 0o777 == source.stat().st_mode & 0o777  # readable as installed
        target.write_text("half a file")  # an older or broken copy is replaced
        scatter.serve_plotly_js.cache_clear()
        assert scatter.serve_plotly_js() and filecmp.cmp(source, target, shallow=False)

        blocked = tmp_path / "a file"
        blocked.write_text("")
        monkeypatch.setattr(scatter, "STATIC_JS", blocked / "static" / "plotly.min.js")  # cannot be made
        scatter.serve_plotly_js.cache_clear()
        assert scatter.serve_plotly_js() is False
    finally:
        scatter.serve_plotly_js.cache_clear()


def test_sessions_copying_plotly_js_at_once_leave_one_whole_file(tmp_path, monkeypatch):
    import threading

    source = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    target = tmp_path / "static" / "plotly.min.js"
    monkeypatch.setattr(scatter, "STATIC_JS", target)
    answers = []
    threads = [
        threading.Thread(target=lambda: answers.append(scatter.serve_plotly_js.__wrapped__()))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [True] * 6 and filecmp.cmp(source, target, shallow=False)
    assert [p.name for p in target.parent.iterdir()] == ["plotly.min.js"]  # no half copies left


@pytest.mark.parametrize("setting", ["true", "false", "not-a-bool"])
def test_a_server_warms_up_once_in_the_background_as_the_operator_says(setting, monkeypatch, caplog):
    """A server's first clustering must not wait for the model's load and UMAP's code, nor a
    first slider step for hdbscan's import; ``preload_model = false`` keeps the model's memory
    free until a run needs it, and a wrong setting costs nobody the page. One warm-up per
    process, whoever asks first (the server as it starts, or the app's first page view)."""
    from pages.ui import runbox
    from pipeline import warmup

    asked = []

    def warm_server(params, runtime, modules, model):
        asked.append((params, runtime.batch_size, modules, model))
        return ["the embedding model: loaded in 0.1 s"]

    monkeypatch.setenv("CLUSTERLAB_PRELOAD_MODEL", setting)
    monkeypatch.setattr(runbox, "runtime", lambda: pipeline.Runtime(batch_size=7))
    monkeypatch.setattr(warmup, "warm_server", warm_server)
    monkeypatch.setattr(warmup, "_server_warm_up", None)  # a new process
    with caplog.at_level("INFO", logger="pipeline.warmup"):
        thread = runbox.warm_up.__wrapped__()  # the app's own is once per process (functools.cache)
        thread.join(timeout=30)
        assert runbox.warm_up.__wrapped__() is thread  # asked again: the same one, not a second
    assert not thread.is_alive() and thread.daemon
    assert asked == [(pipeline.EmbedParams(), 7, warmup.SLIDER_IMPORTS, setting == "true")]  # the runs' key
    assert re.search(r"server warmed in \d+\.\d s: the embedding model: loaded", caplog.text)


def test_the_servers_own_warm_up_freezes_what_it_loaded_out_of_the_collectors_walks(monkeypatch, caplog):
    """After the model's load, a full collection walked 620,000 objects (0.28 s) in the middle of
    some script run; frozen, they are never walked again."""
    import gc

    from pipeline import warmup

    monkeypatch.setattr(warmup, "warm_server", lambda params, runtime, modules, model: [])
    monkeypatch.setattr(warmup, "_server_warm_up", None)
    try:
        with caplog.at_level("INFO", logger="pipeline.warmup"):
            warmup.warm_in_background(pipeline.EmbedParams(), pipeline.Runtime(), freeze=True).join(
                timeout=30
            )
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # everything this test process had imported and made
        said = re.search(
            r"server warmed in \d+\.\d s: ([\d,]+) objects frozen out of the collector's walks", caplog.text
        )
        assert said and int(said.group(1).replace(",", "")) >= frozen  # some were freed since
    finally:
        gc.unfreeze()  # this is a test process, not a server
    assert gc.get_freeze_count() == 0


def test_each_part_of_the_map_goes_to_the_browser_once_and_again_only_when_asked(app):
    """The base (the points' texts and positions: 5 MB of JSON at 100,000 texts) goes once per set
    of points, the paint once per clustering and edit state; a rerun that leaves the map as it is
    (a selection, a pick) sends only the revisions, and so does an undo or a redo, whose map the
    browser keeps; a browser that lost its copies asks once."""

    def sent(at):
        data = json.loads(map_element(at).proto.json)
        return data, (data["base"] is not None, data["paint"] is not None)

    at = explore_survey(app)
    first, parts = sent(at)
    assert parts == (True, True) and map_figure(at)["data"]  # (the helper keeps what came)
    select(at, first["revision"], [[0, 0]])  # reruns the map's section: same map
    again, parts = sent(at)
    assert again["revision"] == first["revision"] and parts == (False, False)
    assert selection_lines(at)  # the selection still reads the map it was made on

    at.session_state["map"] = {"need": first["revision"]}  # the browser asks for it
    at.run()
    assert_healthy(at)
    resent, parts = sent(at)
    assert parts == (True, True) and (resent["base"], resent["paint"]) == (first["base"], first["paint"])
    at.run()  # asking again for the same revision (a stuck client) starts no loop
    assert_healthy(at)
    assert sent(at)[1] == (False, False)

    merge(at, [0, 1], "Both")  # the same points, painted anew: only the paint goes
    merged, parts = sent(at)
    assert parts == (False, True) and merged["base_revision"] == first["base_revision"]
    assert "Both" in json.dumps(map_figure(at)["layout"]["annotations"])
    at.button(key="undo").click().run()  # back to the map before the merge: the browser keeps it
    undone, parts = sent(at)
    assert undone["revision"] == first["revision"] and parts == (False, False)
    at.button(key="redo").click().run()  # and the merged one: the last two drawn are kept
    redone, parts = sent(at)
    assert redone["revision"] == merged["revision"] and parts == (False, False)
    at.select_slider(key="set:cluster.min_cluster_size").set_value(10).run()  # a new clustering
    stepped, parts = sent(at)
    assert stepped["revision"] not in (first["revision"], merged["revision"]) and parts == (False, True)


def map_place(at) -> tuple[int, ...]:
    """Where the map sits in the page: its position at each level, as Streamlit places it."""

    def find(block, path):
        for index, child in getattr(block, "children", {}).items():
            if getattr(child, "type", "") == "bidi_component" and child.proto.id.endswith("-map"):
                return (*path, index)
            found = find(child, (*path, index))
            if found:
                return found
        return None

    return find(at.main, ())


def test_the_map_keeps_its_place_whether_a_rerun_clustered_or_only_edited(app):
    """Streamlit places elements by position: a status box there only when the pipeline ran, or a
    note there only after an edit, moved the map (and every table) down one place, and the browser
    built them again, with new WebGL contexts, on each slider step after an edit and back."""
    at = explore_survey(app)
    place = map_place(at)
    assert place is not None
    merge(at, [0, 1], "Both")  # no pipeline run; a note on the count appears
    assert_healthy(at)
    assert any("with your edits there are" in c.value for c in at.caption)
    assert map_place(at) == place
    at.select_slider(key="set:cluster.min_cluster_size").set_value(10).run()  # the pipeline runs
    assert_healthy(at)
    assert map_place(at) == place


def test_a_box_or_lasso_on_a_sampled_map_selects_every_text_inside_drawn_or_not(app, monkeypatch):
    """A map of many texts draws a sample (``plots.MAX_MAP_POINTS``); an area selected on it reads
    every text inside, not only the drawn ones."""
    monkeypatch.setattr(plots, "MAX_MAP_POINTS", 20)
    at = explore_survey(app)
    figure = map_figure(at)
    drawn_x = [x for trace in figure["data"] for x in trace["x"]]
    n_texts = int(metrics(at)["Distinct texts"])
    assert len(drawn_x) == 20 < n_texts
    captions = [c.value for c in at.caption]
    assert any(f"with the {n_texts - 20} the map leaves out of its sample" in c for c in captions), captions

    select_areas(at, figure["revision"], [{"box": [-1e9, 1e9, -1e9, 1e9]}])
    assert_healthy(at)
    assert selection_lines(at)[0].startswith(f"{n_texts} texts selected")

    # the left half as a box and as a lasso around the same rectangle: the same texts, more than drawn
    middle = sum(sorted(drawn_x)[10:12]) / 2  # between two drawn points: none on the edge
    drawn_left = sum(x <= middle for x in drawn_x)
    select_areas(at, figure["revision"], [{"box": [-1e9, middle, -1e9, 1e9]}])
    (box_line,) = selection_lines(at)
    lasso = [[-1e9, -1e9], [middle, -1e9], [middle, 1e9], [-1e9, 1e9]]
    select_areas(at, figure["revision"], [{"lasso": lasso}])
    assert selection_lines(at) == [box_line]
    assert drawn_left < int(box_line.split()[0]) < n_texts

    # areas come from the browser: any that is not finite numbers in these shapes selects nothing
    for hostile in (
        [{"box": [0, 1, 2]}],
        [{"box": ["a", 1, 2, 3]}],
        [{"box": [float("nan"), 1, 2, 3]}],
        [{"lasso": [[0, 0], [1, 1]]}],
        [{"lasso": [[0, 0, 0]] * 5}],
        [{"circle": [0, 0, 1]}],
        [{"box": [-1e9, 1e9, -1e9, 1e9], "lasso": lasso}],
        [{"box": [-1e9, 1e9, -1e9, 1e9]}] * (plots.MAX_REGIONS + 1),
        "everything",
    ):
        select_areas(at, figure["revision"], hostile)
        assert_healthy(at)
        assert selection_lines(at) == [] and not warnings(at), hostile
