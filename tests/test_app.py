"""What a user sees in the app, page by page, through Streamlit's AppTest.

The scripts run in-process, so the pipeline runs for real on tiny corpora with the fake
embedder patched into ``pages.ui.runbox.runtime``, in a workspace folder under tmp_path (the ``app``
fixture, in conftest).
"""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Iterator

import openpyxl
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import pipeline
from pages.ui import runbox
from pipeline import plots
from pipeline.store import Workspace
from tests.conftest import APP, STAGES, TOPICS, topic_texts

HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "**bold** [link](http://x)",
]
# left in Markdown after removing escaped characters, these would render as HTML or Markdown
RENDERED_MARKS = ["<script", "<img", "<b>", "**bold**", "**notes**", "[link", "]("]
MARKDOWN_ELEMENTS = {
    "markdown",
    "caption",
    "error",
    "warning",
    "info",
    "success",
    "title",
    "header",
    "subheader",
    "toast",
    "latex",
}
FORMULAS = ['=HYPERLINK("http://x","click")', "+1+2", "-2+3 billing", "@SUM(A1:A2)"]


# ---------------------------------------------------------------------------- helpers


def topic_csv(n_per_topic: int = 30, seed: int = 0, extra: list[str] | None = None) -> bytes:
    """id, a short code, a short note (40 distinct values) and the comment: the long texts."""
    texts, topics = topic_texts(n_per_topic, seed)
    texts = texts + list(extra or [])
    topics = topics + ["other"] * len(extra or [])
    frame = pd.DataFrame(
        {
            "id": range(1, len(texts) + 1),
            "code": [f"A{i}" for i in range(len(texts))],
            "note": [f"{t} {i % 10}" for i, t in enumerate(topics)],
            "comment": texts,
        }
    )
    return frame.to_csv(index=False).encode()


def upload(at: AppTest, name: str, data: bytes, mime: str = "text/csv") -> AppTest:
    return at.file_uploader(key="upload").set_value((name, data, mime)).run()


def walk(block) -> Iterator:
    for child in getattr(block, "children", {}).values():
        yield child
        yield from walk(child)


def nodes(at: AppTest) -> list:
    return [*walk(at.main), *walk(at.sidebar)]


def statuses(at: AppTest) -> list:
    return [n for n in nodes(at) if n.type == "status"]


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def unescape(markdown: str) -> str:
    """What a reader sees of escaped Markdown."""
    return re.sub(r"\\(.)", r"\1", markdown)


def errors(at: AppTest) -> list[str]:
    return [unescape(e.value) for e in at.error]


def warnings(at: AppTest) -> list[str]:
    return [unescape(w.value) for w in at.warning]


def markdown_on_screen(at: AppTest) -> list[str]:
    """Every string Streamlit renders as Markdown: alerts, headings, captions and labels."""
    out = []
    for node in nodes(at):
        if node.type in MARKDOWN_ELEMENTS:
            out.append(str(node.value))
        label = getattr(node, "label", None)  # widget, expander, status and tab labels are Markdown
        if isinstance(label, str):
            out.append(label)
    return out


def unescaped_marks(markdown: str) -> list[str]:
    bare = re.sub(r"\\.", "", markdown)  # an escaped character shows as itself
    return [mark for mark in RENDERED_MARKS if mark in bare]


def assert_healthy(at: AppTest) -> None:
    """No uncaught exception, and no error that shows a traceback."""
    assert not at.exception, [e.value for e in at.exception]
    for message in errors(at):
        assert "Traceback" not in message and 'File "' not in message, message


def sidebar_datasets(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button if (b.key or "").startswith("open:")]


def run_clustering(at: AppTest) -> AppTest:
    at.button(key="run").click().run()
    assert_healthy(at)
    return at


def rename(at: AppTest, row: int, label) -> AppTest:
    """Type a new label into the clusters table (AppTest edits a data_editor through its state)."""
    (editor,) = at.data_editor
    at.session_state[editor.key] = {
        "edited_rows": {row: {"label": label}},
        "added_rows": [],
        "deleted_rows": [],
    }
    return at.run()


def merge(at: AppTest, ids: list[int], name: str) -> AppTest:
    (picker,) = [m for m in at.multiselect if m.label == "Clusters to merge"]
    picker.set_value(ids)
    (field,) = [t for t in at.text_input if t.label == "Name of the merged cluster"]
    field.input(name)
    (submit,) = [b for b in at.button if b.label == "Merge"]
    return submit.click().run()


def cluster_table(at: AppTest) -> pd.DataFrame:
    (editor,) = at.data_editor
    return editor.value


def map_figure(at: AppTest) -> dict | None:
    """The Explore map's figure as the browser gets it (``pages/ui/scatter.py``: a component
    whose data is {revision, paint JSON, base_revision, base JSON}, composed as scatter.js does;
    ``st.plotly_chart`` where plotly.js cannot be served)."""
    for element in at.get("bidi_component"):
        if element.proto.id.endswith("-map"):
            data = json.loads(element.proto.json)
            # each part comes once per revision; later runs send only the revisions and the
            # browser draws the copies it keeps (scatter.js): kept here as the browser keeps them
            kept = at.__dict__.setdefault("_map_parts", {})
            for part, revision in (("paint", "revision"), ("base", "base_revision")):
                if data[part] is not None:
                    kept[part, data[revision]] = data[part]
            if ("base", data["base_revision"]) not in kept or ("paint", data["revision"]) not in kept:
                at.session_state["_map_sent"] = {}  # sent before this helper looked: send again
                return map_figure(at.run())
            base, paint = kept["base", data["base_revision"]], kept["paint", data["revision"]]
            return {"revision": data["revision"], **plots.compose(json.loads(base), json.loads(paint))}
    for chart in at.get("plotly_chart"):
        if chart.key == "map":
            return json.loads(chart.proto.spec)
    return None


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def expander(at: AppTest, label: str):
    (panel,) = [e for e in at.get("expander") if e.label == label]
    return panel


def reading(at: AppTest):
    """The "Read a cluster" choice: (its value, the name it shows for each option)."""
    (box,) = [b for b in at.selectbox if b.label == "Cluster"]
    return box


# ---------------------------------------------------------------------------- upload


def test_pages_without_a_dataset_say_what_to_do_first(app):
    at = app.open()
    assert_healthy(at)
    assert at.title[0].value == "Clusterlab"
    assert [c.value for c in at.sidebar.caption][0].startswith("None yet")
    assert not at.dataframe and not at.multiselect
    at.switch_page("pages/explore.py").run()
    assert [i.value for i in at.info] == ["Upload a file or try the sample first."]
    at.switch_page("pages/export.py").run()
    assert [i.value for i in at.info] == ["Run a clustering first (Upload, then Cluster the texts)."]
    assert_healthy(at)


def test_upload_shows_preview_and_suggests_the_long_text_column_which_can_be_changed(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    assert_healthy(at)
    assert "topics.csv: 120 rows, 4 columns" in texts(at)
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["id", "code", "note", "comment"] and len(preview) == 50
    column = at.multiselect(key=f"text_column:{at.session_state['dataset_id']}")
    assert column.options == ["id", "code", "note", "comment"]
    assert column.value == ["comment"]  # the string column with the longest texts
    assert sidebar_datasets(at) == ["topics\\.csv · 120 rows"]  # a label is Markdown: escaped

    column.set_value(["note"]).run()
    at.switch_page("pages/explore.py").run()  # the choice counts without pressing Cluster
    assert_healthy(at)
    assert metrics(at)["Distinct texts"] == "40"  # the note column's, not the comment column's 120
    at.switch_page("pages/upload.py").run()
    assert at.multiselect(key=f"text_column:{at.session_state['dataset_id']}").value == ["note"]


def test_sample_button_loads_the_bundled_sample(app):
    at = app.open()
    at.button(key="sample").click().run()
    assert_healthy(at)
    assert any(t.startswith("sample_feedback.csv: 420 rows") for t in texts(at))
    assert at.multiselect[0].value == [pipeline.SAMPLE_TEXT_COLUMN]
    assert sidebar_datasets(at) == ["sample\\_feedback\\.csv · 420 rows"]


# ---------------------------------------------------------------------------- run and sliders


def test_a_clustering_slider_recomputes_only_cluster_and_label(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    assert [s.value for s in at.success][0].startswith("4 clusters in 120 rows")
    (box,) = statuses(at)
    assert box.state == "complete" and box.label.startswith("Done in") and "4 clusters" in box.label
    assert app.calls == STAGES
    embedded = app.embedder.texts_embedded
    assert embedded == 120

    at.switch_page("pages/explore.py").run()
    assert_healthy(at)
    shown = metrics(at)
    assert {k: shown[k] for k in ("Rows", "Distinct texts", "Clusters", "Unclustered")} == {
        "Rows": "120",
        "Distinct texts": "120",
        "Clusters": "4",
        "Unclustered": "0%",
    }
    assert float(shown["Separation"]) > 0.5 and float(shown["Stability"]) > 0.9  # four clear topics
    assert app.calls == STAGES  # the same settings: nothing computed again

    app.calls.clear()
    at.select_slider(key="set:cluster.min_cluster_size").set_value(10).run()
    assert_healthy(at)
    assert app.calls == ["cluster", "label"]
    assert app.embedder.texts_embedded == embedded  # embed was not called again
    assert at.session_state["last_events_cached"] == {
        "preprocess": True,
        "embed": True,
        "reduce": True,
        "cluster": False,
        "label": False,
    }
    (box,) = statuses(at)
    assert "(preprocess, embed, reduce from cache)" in box.label
    assert any(t.startswith("✓ Embedding texts: from cache") for t in texts(at))

    app.calls.clear()
    at.radio(key="set:cluster.algorithm").set_value("kmeans").run()
    at.slider(key="set:cluster.n_clusters").set_value(3).run()
    assert_healthy(at)
    assert app.calls == ["cluster", "label", "cluster", "label"]
    assert metrics(at)["Clusters"] == "3" and at.title[0].value == "3 clusters"


def test_a_reduction_slider_recomputes_reduce_cluster_and_label(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    app.calls.clear()
    at.slider(key="set:reduce.n_neighbors").set_value(8).run()
    assert_healthy(at)
    assert app.calls == ["reduce", "cluster", "label"]
    assert app.embedder.texts_embedded == 120
    assert at.session_state["last_events_cached"]["embed"] is True
    assert at.session_state["last_events_cached"]["reduce"] is False


def test_opening_another_dataset_on_explore_starts_from_its_own_settings(app):
    at = upload(app.open(), "a.csv", topic_csv(10, seed=1))
    first = at.session_state["dataset_id"]
    upload(at, "b.csv", topic_csv(10, seed=2))
    second = at.session_state["dataset_id"]
    at.sidebar.button(key=f"open:{first}").click().run()
    at.switch_page("pages/explore.py").run()
    at.select_slider(key="set:cluster.min_cluster_size").set_value(15).run()
    at.slider(key="set:reduce.n_neighbors").set_value(30).run()
    assert_healthy(at)

    at.sidebar.button(key=f"open:{second}").click().run()
    assert_healthy(at)
    assert at.select_slider(key="set:cluster.min_cluster_size").value == 0  # its own (automatic), not a.csv's
    assert at.slider(key="set:reduce.n_neighbors").value == 15
    at.sidebar.button(key=f"open:{first}").click().run()
    assert at.select_slider(key="set:cluster.min_cluster_size").value == 15  # a.csv's own, kept
    assert at.slider(key="set:reduce.n_neighbors").value == 30


def test_a_page_reads_the_dataset_state_once_per_rerun_and_saves_only_a_change(app, monkeypatch):
    """Settings, text column and edit log are one state, loaded at the top of a rerun (five
    reads of state.json per Explore rerun before) and saved as a new state after a change."""
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    reads, saves = [], []
    read, save = Workspace.state, Workspace.save_state  # the one reader and writer of state.json
    monkeypatch.setattr(Workspace, "state", lambda ws, d: reads.append(d) or read(ws, d))
    monkeypatch.setattr(Workspace, "save_state", lambda ws, d, s: saves.append(d) or save(ws, d, s))

    at.select_slider(key="set:cluster.min_cluster_size").set_value(10).run()
    assert_healthy(at)
    assert (len(reads), len(saves)) == (1, 1)  # the new settings, saved once
    reads.clear(), saves.clear()
    at.run()
    assert (len(reads), len(saves)) == (1, 0)
    reads.clear()
    rename(at, 0, "Money matters")  # the edit's run, then the rerun it asks for
    assert_healthy(at)
    assert (len(reads), len(saves)) == (2, 1)
    assert cluster_table(at)["label"].tolist()[0] == "Money matters"
    for page in ("pages/export.py", "pages/upload.py"):
        reads.clear()
        at.switch_page(page).run()
        assert_healthy(at)
        assert len(reads) == 1, page
    reads.clear(), saves.clear()
    run_clustering(at)  # "Cluster the texts" with the saved settings: nothing new to save
    assert (len(reads), len(saves)) == (1, 0)


def test_a_failing_stage_shows_a_plain_error_and_running_again_resumes(app):
    app.embedder.fail_on_call = 1
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    (box,) = statuses(at)
    assert box.state == "error" and box.label == "Embedding texts failed"
    (message,) = errors(at)
    assert "injected failure on call 1" in message and "What to do:" in message
    assert not at.success

    app.calls.clear()
    run_clustering(at)
    assert app.calls == ["embed", "reduce", "cluster", "label"]  # preprocess came from cache
    assert [s.value for s in at.success][0].startswith("4 clusters")


def test_a_file_without_a_text_column_says_so(app):
    at = upload(
        app.open(), "numbers.csv", b"id,score\n" + b"".join(b"%d,%d\n" % (i, i % 7) for i in range(30))
    )
    assert_healthy(at)
    (message,) = warnings(at)
    assert message.startswith("No column looks like text")
    assert at.multiselect[0].value == ["id"]


# ---------------------------------------------------------------------------- edits


def test_rename_and_merge_survive_a_rerun_and_say_when_they_no_longer_apply(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    before = cluster_table(at)
    assert before["id"].tolist() == [0, 1, 2, 3]

    rename(at, 0, "Money matters")
    assert_healthy(at)
    assert cluster_table(at)["label"].tolist()[0] == "Money matters"
    assert f"✓ applied: rename '{before['label'][0]}' to 'Money matters'" in texts(at)

    merge(at, [1, 2], "Accounts & praise")
    assert_healthy(at)
    table = cluster_table(at)
    assert table["id"].tolist() == [0, 1, 3]
    assert table["label"].tolist()[:2] == ["Money matters", "Accounts & praise"]
    assert table["size"].tolist()[:2] == [30, 60]
    assert any(t.startswith("✓ applied: merge") for t in texts(at))

    # other settings, same clusters: both edits still apply (matched by members, not ids)
    at.select_slider(key="set:cluster.min_cluster_size").set_value(10).run()
    assert_healthy(at)
    assert not at.warning
    assert cluster_table(at)["label"].tolist()[:2] == ["Money matters", "Accounts & praise"]

    # one k-means cluster: no cluster has those members any more
    at.radio(key="set:cluster.algorithm").set_value("kmeans").run()
    at.slider(key="set:cluster.n_clusters").set_value(1).run()
    assert_healthy(at)
    stale = warnings(at)
    assert len(stale) == 2
    assert stale[0] == (
        f"no longer applies: rename '{before['label'][0]}' to 'Money matters' (no cluster with those texts "
        "now: at best 25% of texts in common)"
    )
    assert stale[1].startswith("no longer applies: merge") and "'Accounts & praise'" in stale[1]
    assert "Money matters" not in cluster_table(at)["label"].tolist()
    assert sum(t.startswith("✗ no longer applies") for t in texts(at)) == 2

    # back to HDBSCAN: the clusters, and so the edits, come back
    at.radio(key="set:cluster.algorithm").set_value("hdbscan").run()
    assert_healthy(at)
    assert not at.warning
    assert cluster_table(at)["label"].tolist()[:2] == ["Money matters", "Accounts & praise"]

    at.button(key="undo").click().run()
    assert cluster_table(at)["id"].tolist() == [0, 1, 2, 3]
    assert cluster_table(at)["label"].tolist()[0] == "Money matters"


def test_bad_edits_are_refused_with_a_plain_message(app):
    at = app.open()
    at.button(key="sample").click().run()
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    at.selectbox(key="set:cluster.epsilon").set_value(0.0).run()  # HDBSCAN's own: some noise
    labels = cluster_table(at)["label"].tolist()

    merge(at, [1], "only one")
    assert errors(at) == ["pick two or more clusters to merge"]

    rename(at, 0, None)  # the cell emptied
    assert errors(at) == ["a cluster name cannot be empty"]
    rename(at, 0, "   ")
    assert errors(at) == ["a cluster name cannot be empty"]
    assert labels[-1] == "Unclustered"
    rename(at, len(labels) - 1, "Noise")
    assert errors(at) == ["the unclustered group cannot be renamed"]
    assert_healthy(at)
    assert cluster_table(at)["label"].tolist() == labels


def test_an_edit_made_on_one_text_column_never_applies_to_another(app):
    """Two columns whose texts group the same rows into different topics: a rename of the
    billing texts must not land on the crash texts just because they sit in the same rows."""
    rng = random.Random(3)
    texts_, topics = topic_texts()
    shifted = {"billing": "crash", "crash": "login", "login": "praise", "praise": "billing"}
    other = [" ".join(rng.sample(TOPICS[shifted[t]], 4)) + f" {i}" for i, t in enumerate(topics)]
    frame = pd.DataFrame({"comment": texts_, "other": other})
    at = upload(app.open(), "two.csv", frame.to_csv(index=False).encode())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    rename(at, 0, "Money matters")
    assert cluster_table(at)["label"].tolist()[0] == "Money matters"

    at.switch_page("pages/upload.py").run()
    at.multiselect(key=f"text_column:{at.session_state['dataset_id']}").set_value(["other"]).run()
    at.switch_page("pages/explore.py").run()
    assert_healthy(at)
    assert "Money matters" not in cluster_table(at)["label"].tolist()
    (message,) = warnings(at)
    assert message.startswith("no longer applies: rename") and "another text column" in message

    at.switch_page("pages/upload.py").run()
    at.multiselect(key=f"text_column:{at.session_state['dataset_id']}").set_value(["comment"]).run()
    at.switch_page("pages/explore.py").run()
    assert cluster_table(at)["label"].tolist()[0] == "Money matters" and not at.warning


# ---------------------------------------------------------------------------- downloads


def test_a_table_too_big_for_an_excel_download_offers_csv_and_parquet(app, monkeypatch):
    from pages import ui

    monkeypatch.setattr(ui, "EXCEL_IN_APP_ROWS", 50)
    at = upload(app.open(), "feedback.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/export.py").run()
    assert_healthy(at)
    labels = [b.label for b in at.get("download_button")]
    assert "Table as Excel" not in labels and {"Table as CSV", "Table as Parquet"} <= set(labels)
    (note,) = [i.value for i in at.info]
    assert note.startswith("Excel here is for tables up to 50 rows; this one has 1") and "CSV" in note


def test_downloads_hold_every_row_the_cluster_columns_and_the_edits(app):
    data = topic_csv(extra=FORMULAS + ["Café crème, très bien"])
    original = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    at = upload(app.open(), "feedback.csv", data)
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    rename(at, 0, "Money matters")
    at.switch_page("pages/export.py").run()
    assert_healthy(at)
    assert [b.label for b in at.get("download_button")] == [
        "Table as CSV",
        "Table as Excel",
        "Table as Parquet",
        "Cluster summary (CSV)",
        "Run manifest (JSON)",
    ]
    columns = list(original.columns) + list(pipeline.OUTPUT_COLUMNS) + ["tags"]  # tags: the app's edits
    assert {"cluster_id", "cluster_label", "cluster_probability", "raw_cluster_id", "x", "y"} <= set(columns)

    raw = app.downloaded(at, "dl_csv")
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the accents right
    table = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(table.columns) == columns and len(table) == len(original)
    assert table[list(original.columns)].iloc[:120].equals(original.iloc[:120])
    comments = table["comment"].tolist()
    assert comments[-5:] == ["'" + f for f in FORMULAS] + ["Café crème, très bien"]
    renamed = table["cluster_id"] == "0"
    assert renamed.sum() >= 30 and (table.loc[renamed, "cluster_label"] == "Money matters").all()
    assert (table["raw_cluster_id"] == table["cluster_id"]).all()  # a rename changes no id

    book = openpyxl.load_workbook(io.BytesIO(app.downloaded(at, "dl_xlsx")))
    sheet = book.active
    rows = list(sheet.values)
    assert list(rows[0]) == columns and len(rows) == len(original) + 1
    comment_at = columns.index("comment")
    assert [r[comment_at] for r in rows[-5:]] == ["'" + f for f in FORMULAS] + ["Café crème, très bien"]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)

    parquet = pd.read_parquet(io.BytesIO(app.downloaded(at, "dl_parquet")))
    assert list(parquet.columns) == columns and len(parquet) == len(original)
    assert parquet["comment"].tolist() == original["comment"].tolist()  # values kept exactly
    assert parquet["id"].astype(str).tolist() == original["id"].tolist()

    summary = pd.read_csv(io.BytesIO(app.downloaded(at, "dl_summary")), encoding="utf-8-sig")
    assert {"id", "label", "size", "share", "keywords", "representative_texts"} <= set(summary.columns)
    assert summary.loc[summary["id"] == 0, "label"].item() == "Money matters"
    assert summary["size"].sum() == len(original)
    clustered = summary["id"] >= 0  # each cluster's node in the cluster tree; none for the unclustered
    assert (
        summary.loc[clustered, "parent_id"].notna().all()
        and summary.loc[~clustered, "parent_id"].isna().all()
    )

    manifest = json.loads(app.downloaded(at, "dl_manifest"))
    assert manifest["input"]["rows"] == len(original) and manifest["input"]["text_column"] == "comment"
    (edit,) = manifest["edits"]
    assert edit["op"] == "rename" and edit["label"] == "Money matters" and edit["applied"] is True


def test_export_builds_a_file_only_when_its_button_is_clicked(app, monkeypatch):
    built = []
    for name in ("csv_bytes", "excel_bytes", "parquet_bytes", "manifest_bytes"):
        original = getattr(pipeline.io, name)
        monkeypatch.setattr(
            pipeline.io, name, lambda *a, _f=original, _n=name, **k: built.append(_n) or _f(*a, **k)
        )
    trees = []  # the cluster tree (1.3 s at 100,000 texts): for the summary's parents and the manifest
    original_tree = pipeline.result.cluster_tree
    monkeypatch.setattr(
        pipeline.result, "cluster_tree", lambda *a, **k: trees.append(1) or original_tree(*a, **k)
    )
    pipeline.result._TREES.clear()  # no tree kept from another test's run of the same texts
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/export.py").run()
    assert_healthy(at)
    assert len(at.get("download_button")) == 5 and built == []  # opening the page builds nothing
    assert trees == []
    workbook = openpyxl.load_workbook(io.BytesIO(app.downloaded(at, "dl_xlsx")))
    assert built == ["excel_bytes"] and workbook.active.max_row == 121
    summary = pd.read_csv(io.BytesIO(app.downloaded(at, "dl_summary")))
    manifest = json.loads(app.downloaded(at, "dl_manifest"))
    assert "parent_id" in summary.columns and manifest["tree"] and manifest["edits"] == []
    assert trees == [1]  # built once, when asked for, and kept for the second download


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("empty.csv", b"", "empty.csv is empty (0 rows, no header)"),
        ("header.csv", b"id,comment\n", "header.csv has a header (id, comment) but no rows"),
        ("image.csv", bytes(range(256)) * 8, "image.csv does not look like a text table"),
        ("blank.csv", b"\n\n  \n", "blank.csv is empty"),
    ],
    ids=["empty", "header-only", "binary", "blank"],
)
def test_a_bad_file_is_refused_plainly_and_nothing_is_kept(app, name, data, expected):
    at = upload(app.open(), name, data)
    assert_healthy(at)
    (message,) = errors(at)
    assert message.startswith(expected) and "What to do:" in message
    assert not at.dataframe and not at.multiselect
    assert sidebar_datasets(at) == []
    assert not (app.workspace_dir(at) / "datasets").exists()


def test_a_latin1_file_keeps_its_accents(app):
    rows = ["Café crème très bon", "Über naïve façade", "Señor Müller à Noël"]
    data = ("id,comment\n" + "".join(f"{i},{t}\n" for i, t in enumerate(rows))).encode("latin-1")
    at = upload(app.open(), "accents.csv", data)
    assert_healthy(at)
    assert at.dataframe[0].value["comment"].tolist() == rows


def test_a_semicolon_file_is_split_into_its_columns(app):
    data = b"id;comment;score\n1;great app, love it;5\n2;crashes, every time;1\n3;fine;3\n"
    at = upload(app.open(), "semi.csv", data)
    assert_healthy(at)
    assert "semi.csv: 3 rows, 3 columns" in texts(at)
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["id", "comment", "score"]
    assert preview["comment"].tolist() == ["great app, love it", "crashes, every time", "fine"]
    assert at.multiselect[0].value == ["comment"]


def test_hostile_texts_are_shown_as_text_and_never_rendered(app):
    hostile_name = "<img src=x onerror=alert(1)> **bold** [link](x).csv"
    texts_, topics = topic_texts()
    frame = pd.DataFrame({"**notes** <b>x</b>": ["x"] * 9 + topics, "comment": HOSTILE * 3 + texts_})
    at = upload(app.open(), hostile_name, frame.to_csv(index=False).encode())
    assert_healthy(at)
    assert at.dataframe[0].value["comment"].tolist()[:3] == HOSTILE  # shown as text
    assert any(t.startswith(hostile_name) for t in texts(at))
    seen = markdown_on_screen(at)

    run_clustering(at)
    seen += markdown_on_screen(at)
    at.switch_page("pages/explore.py").run()
    rename(at, 0, HOSTILE[0])
    merge(at, [1, 2], HOSTILE[2])
    assert_healthy(at)
    assert cluster_table(at)["label"].tolist()[:2] == [HOSTILE[0], HOSTILE[2]]
    seen += markdown_on_screen(at)
    at.radio(key="set:cluster.algorithm").set_value("kmeans").run()
    at.slider(key="set:cluster.n_clusters").set_value(1).run()
    assert len(warnings(at)) == 2 and HOSTILE[0] in warnings(at)[0]  # readable once rendered
    seen += markdown_on_screen(at)
    at.switch_page("pages/export.py").run()
    assert_healthy(at)
    seen += markdown_on_screen(at)

    assert [s for s in seen if unescaped_marks(s)] == []
    assert any("\\<img src=x" in s for s in seen)  # the file name, escaped, in the sidebar
    member_rows = pd.concat([d.value for d in at.dataframe])
    assert set(HOSTILE) <= set(member_rows["comment"])


# ---------------------------------------------------------------------------- workspaces


def test_workspaces_are_isolated_and_a_bookmark_returns_to_its_datasets(app):
    alice, bob = app.new_token(), app.new_token()
    at_alice = upload(app.open(alice), "alice.csv", topic_csv(seed=1))
    at_bob = upload(app.open(bob), "bob.csv", topic_csv(seed=2))
    assert sidebar_datasets(at_alice) == ["alice\\.csv · 120 rows"]
    assert sidebar_datasets(at_bob) == ["bob\\.csv · 120 rows"]
    assert at_alice.query_params["ws"] == alice and at_bob.query_params["ws"] == bob

    # Bob cannot open Alice's dataset even knowing its id
    at_bob.session_state["dataset_id"] = at_alice.session_state["dataset_id"]
    at_bob.run()
    assert not at_bob.dataframe and not at_bob.multiselect

    # the bookmark, tomorrow: a new session on Alice's link lists her dataset and opens it
    later = app.open(alice)
    assert_healthy(later)
    assert sidebar_datasets(later) == ["alice\\.csv · 120 rows"]
    (button,) = [b for b in later.sidebar.button if (b.key or "").startswith("open:")]
    button.click().run()
    assert "alice.csv: 120 rows, 4 columns" in texts(later)


def test_an_invalid_workspace_link_starts_a_new_workspace_with_a_warning(app):
    upload(app.open(app.new_token()), "mine.csv", topic_csv())
    at = app.open("../../etc")
    assert_healthy(at)
    assert warnings(at) == ["That workspace link is not valid; a new, empty workspace was started."]
    token = at.query_params["ws"]
    assert token != "../../etc" and re.fullmatch(r"[A-Za-z0-9_-]{22,64}", token)
    assert sidebar_datasets(at) == []
    at.run()
    assert not at.warning and at.query_params["ws"] == token


def test_deleting_a_dataset_removes_its_folder_and_cached_results(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    dataset_id = at.session_state["dataset_id"]
    folder = app.workspace_dir(at) / "datasets" / dataset_id
    assert (folder / "source").exists() and any((folder / "cache").iterdir())
    at.sidebar.button(key=f"delete:{dataset_id}").click().run()
    assert_healthy(at)
    assert not folder.exists()
    assert sidebar_datasets(at) == []
    assert not at.dataframe
    at.switch_page("pages/explore.py").run()
    assert [i.value for i in at.info] == ["Upload a file or try the sample first."]


# ---------------------------------------------------------------------------- reopen, LLM names


def test_a_bookmark_reopens_the_newest_dataset_and_export_loads_it_from_cache(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    token = at.query_params["ws"]
    app.calls.clear()
    later = app.open(ws=token)  # a new browser session on the bookmarked link
    (opened,) = [b for b in later.sidebar.button if (b.key or "").startswith("open:")]
    assert opened.proto.type == "primary"  # the reopened dataset is the highlighted one
    later.switch_page("pages/export.py").run()
    assert_healthy(later)
    assert {b.key for b in later.get("download_button")} >= {"dl_csv", "dl_xlsx", "dl_parquet"}
    assert app.calls == []  # every stage came from the cache: nothing computed
    rows = pd.read_csv(io.BytesIO(app.downloaded(later, "dl_csv")), encoding="utf-8-sig")
    assert len(rows) == 120 and rows["cluster_id"].notna().all()


def test_cluster_names_from_a_language_model_server_in_the_app(app, monkeypatch):
    from tests.test_llm_server import ChatServer

    secret = "sk-test-app-secret-123"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(
        runbox,
        "runtime",
        lambda: pipeline.Runtime(embedder=app.embedder, chunk_size=50, heartbeat_s=0.5),
    )
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    assert not [c for c in at.sidebar.caption if "Naming with the model" in c.value]  # the panel is shut
    with ChatServer() as server:
        monkeypatch.setattr(runbox, "served_on_loopback", lambda: True)  # a local server, as `make run`
        at.session_state["llm_panel"] = True  # the user opens "Names from a language model"
        at.text_input(key="set:label.llm.base_url").input(server.url)
        at.text_input(key="set:label.llm.model").input("test-model")
        at.text_input(key="llm_key").input(secret).run()
        assert_healthy(at)
        estimate = [c.value for c in at.sidebar.caption if "Naming with the model" in c.value]
        assert estimate and "4 API calls for 4 clusters" in unescape(estimate[0])
        assert server.attempts == 0  # nothing is sent before the user switches it on
        at.toggle(key="set:llm_on").set_value(True).run()
        assert_healthy(at)
        labels = cluster_table(at)["label"].tolist()
        assert sum(label.startswith("Topic ") for label in labels) == 4
        assert server.attempts == 4
        assert all(r.authorization == f"Bearer {secret}" for r in server.requests)
        at.slider(key="set:cluster.min_samples").set_value(3).run()  # same clusters: no new calls
        assert server.attempts == 4
    stored = b"".join(p.read_bytes() for p in app.workspace_dir(at).rglob("*") if p.is_file())
    assert secret.encode() not in stored
    assert all(secret not in text for text in markdown_on_screen(at))


def test_a_200k_row_file_uploads_and_previews_without_stalling(app):
    rng = random.Random(5)
    words = [w for topic in TOPICS.values() for w in topic]
    lines = ["id,comment"] + [f"{i},{' '.join(rng.sample(words, 5))}" for i in range(200_000)]
    at = app.open()
    at = upload(at, "big.csv", ("\n".join(lines) + "\n").encode())
    assert_healthy(at)
    assert "big.csv: 200,000 rows, 2 columns" in texts(at)
    assert len(at.dataframe[0].value) == 50  # the preview, not the whole table, goes to the browser
    assert at.multiselect(key=f"text_column:{at.session_state['dataset_id']}").value == ["comment"]


# ---------------------------------------------------------------------------- analyst features


def test_about_k_clusters_for_hdbscan_recomputes_only_cluster_and_label(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    about = at.number_input(key="set:about_k")
    assert about.label == "About this many clusters (0 = let HDBSCAN decide)" and about.value == 0
    assert metrics(at)["Clusters"] == "4"

    app.calls.clear()
    about.set_value(2).run()
    assert_healthy(at)
    assert app.calls == ["cluster", "label"]
    assert metrics(at)["Clusters"] == "2" and at.title[0].value == "2 clusters"
    (box,) = statuses(at)
    assert "(preprocess, embed, reduce from cache)" in box.label
    assert at.session_state["result"].config.cluster.n_clusters == 2

    # k-means keeps its own number: switching methods carries no K over
    at.radio(key="set:cluster.algorithm").set_value("kmeans").run()
    assert at.slider(key="set:cluster.n_clusters").value == 10
    at.radio(key="set:cluster.algorithm").set_value("hdbscan").run()
    assert_healthy(at)
    assert at.number_input(key="set:about_k").value == 2 and metrics(at)["Clusters"] == "2"

    # Upload's "Cluster the texts" runs the saved settings, the app's own switches translated
    at.switch_page("pages/upload.py").run()
    run_clustering(at)
    assert [s.value for s in at.success][0].startswith("2 clusters in 120 rows")


def test_min_cluster_size_offers_only_values_the_pipeline_takes_and_errors_name_controls(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    size = at.select_slider(key="set:cluster.min_cluster_size")
    assert size.options[:3] == ["0", "2", "3"]  # one step right of automatic is 2, never 1
    size.set_value(2).run()
    assert_healthy(at)
    assert not at.error
    # so large that HDBSCAN finds no cluster in 120 texts: the advice names the sidebar's control
    at.select_slider(key="set:cluster.min_cluster_size").set_value(60).run()
    assert_healthy(at)
    shown = " ".join(errors(at) + [t.value for t in at.text])
    assert "'Min cluster size'" in shown, shown
    assert "--set" not in shown and "cluster.min_cluster_size" not in shown


def test_one_cluster_holding_most_texts_is_flagged_and_fixed_in_one_click(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    assert "fix_blob" not in [b.key for b in at.button]  # the automatic clusters: none too large
    at.radio(key="set:cluster.algorithm").set_value("kmeans").run()
    at.slider(key="set:cluster.n_clusters").set_value(2).run()  # 4 topics in 2 clusters
    assert_healthy(at)
    flagged = [w for w in warnings(at) if w.startswith("One cluster holds")]
    assert flagged and "% of the texts" in flagged[0]
    at.button(key="fix_blob").click().run()
    assert_healthy(at)
    assert at.radio(key="set:cluster.algorithm").value == "hdbscan"
    assert [i.value for i in at.info if "Applied: min_cluster_size=" in unescape(i.value)]
    assert not [w for w in warnings(at) if w.startswith("One cluster holds")]
    assert metrics(at)["Clusters"] == "4"


def test_suggest_settings_shows_the_sweep_and_apply_sets_the_sliders(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    assert not [t for t in texts(at) if t.startswith("Recommended:")]
    assert not expander(at, "Suggest clustering settings").proto.expanded
    at.button(key="suggest").click().run()
    assert_healthy(at)
    assert expander(at, "Suggest clustering settings").proto.expanded  # its answer is in view
    (reason,) = [t for t in texts(at) if t.startswith("Recommended:")]
    assert re.search(
        r"min_cluster_size=\d+, min_samples=\d+: 4 clusters, the largest \d+%, 0% unclustered", reason
    )
    assert [c.key for c in at.get("plotly_chart") if c.key == "sweep"] == ["sweep"]
    size, samples = (int(x) for x in re.findall(r"=(\d+)", reason)[:2])
    (apply,) = [b for b in at.button if b.key == "apply_suggestion"]
    assert apply.label == f"Apply: min cluster size {size}, min samples {samples}"

    app.calls.clear()
    apply.click().run()
    assert_healthy(at)
    assert at.select_slider(key="set:cluster.min_cluster_size").value == size
    assert at.slider(key="set:cluster.min_samples").value == samples
    assert app.calls == ["cluster", "label"]
    assert metrics(at)["Clusters"] == "4"
    # the suggestion stays for this reduction, and says it is now in use
    assert any(t.startswith("Recommended:") for t in texts(at))
    assert "These are the current settings." in [c.value for c in at.caption]
    assert not [b for b in at.button if b.key == "apply_suggestion"]

    at.slider(key="set:reduce.n_neighbors").set_value(8).run()  # another reduction: old sweep gone
    assert not [t for t in texts(at) if t.startswith("Recommended:")]


def test_suggest_settings_on_a_tiny_file_says_so_plainly(app):
    data = b"id,comment\n" + b"".join(b"%d,%s\n" % (i, t.encode()) for i, t in enumerate(HOSTILE * 2))
    at = upload(app.open(), "tiny.csv", data)
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    at.button(key="suggest").click().run()
    assert_healthy(at)
    (message,) = warnings(at)
    assert "too few" in message
    assert not [b for b in at.button if b.key == "apply_suggestion"]
    assert [s for s in markdown_on_screen(at) if unescaped_marks(s)] == []


def test_cluster_tree_merges_a_level_in_one_step_that_undo_takes_back(app):
    at = app.open()
    at.button(key="sample").click().run()
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    at.selectbox(key="set:cluster.epsilon").set_value(0.0).run()  # HDBSCAN's own: many clusters
    assert_healthy(at)
    n = len(cluster_table(at)) - 1  # the unclustered row
    assert n >= 6
    assert [c.key for c in at.get("plotly_chart") if c.key == "tree"] == []  # only the open tab is drawn
    at.session_state["view_tab"] = "Cluster tree"
    at.run()
    views = [c.key for c in at.get("plotly_chart") if c.key in ("map", "sizes", "tree")]
    assert views == ["tree"] and map_figure(at) is None  # neither the map nor the sizes
    assert at.slider(key="tree_level").max == n

    # a merge by hand first: the tree merge must compose with it
    merge(at, [0, 1], "by hand")
    assert_healthy(at)
    assert len(cluster_table(at)) - 1 == n - 1

    at.slider(key="tree_level").set_value(4).run()
    (groups,) = [d.value for d in at.dataframe if list(d.value.columns) == ["group", "clusters", "rows"]]
    assert len(groups) <= 4 and groups["rows"].sum() == cluster_table(at).query("id >= 0")["size"].sum()
    (button,) = [b for b in at.button if b.key == "tree_merge"]
    assert button.label == f"Merge into these {len(groups)} groups"
    button.click().run()
    assert_healthy(at)
    table = cluster_table(at).query("id >= 0")
    assert at.title[0].value == f"{len(groups)} clusters"
    assert sorted(table["size"]) == sorted(groups["rows"])
    assert not at.warning  # every merge applied
    assert sum(t.startswith("✓ applied: merge") for t in texts(at)) == 1 + sum(
        ";" in c for c in groups["clusters"]
    )

    at.button(key="undo").click().run()  # the whole tree merge, not only its last merge
    assert_healthy(at)
    assert len(cluster_table(at)) - 1 == n - 1 and "by hand" in cluster_table(at)["label"].tolist()
    at.button(key="clear_edits").click().run()
    assert len(cluster_table(at)) - 1 == n


def test_names_in_lists_follow_edits_and_a_merge_leaves_an_empty_form(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    reading(at).set_value(1).run()
    rename(at, 1, "Logins")
    assert_healthy(at)
    box = reading(at)
    assert box.value == 1 and box.options[1] == "1: Logins"  # the name now, not the run's
    assert any(t.startswith("30 rows") for t in texts(at))

    merge(at, [1, 2], "Accounts & praise")
    assert_healthy(at)
    (picker,) = [m for m in at.multiselect if m.label == "Clusters to merge"]
    assert picker.value == [] and picker.options == [
        "0: " + cluster_table(at)["label"][0],
        "1: Accounts & praise",
        "3: " + cluster_table(at)["label"][2],
    ]
    assert reading(at).options[1] == "1: Accounts & praise"
    # the heading, the metric and the note agree on the count after a merge
    assert at.title[0].value == "3 clusters" and metrics(at)["Clusters"] == "3"
    assert "The run found 4; with your edits there are 3." in [c.value for c in at.caption]

    at.button(key="undo").click().run()  # the merge goes: nothing in the form names it
    (picker,) = [m for m in at.multiselect if m.label == "Clusters to merge"]
    assert picker.value == [] and not any("Accounts" in o for o in picker.options + reading(at).options)
    assert at.title[0].value == "4 clusters"


def test_a_clusters_keyword_check_is_kept_through_edits_elsewhere_and_redone_on_its_own(app, monkeypatch):
    """Reading cluster 3 while merging others: its keywords' presence (50-80 ms at 10,000 texts)
    is not computed again; a merge that takes it in is read afresh."""
    from pipeline import label_quality

    calls = []
    real = label_quality.keyword_presence
    monkeypatch.setattr(
        label_quality,
        "keyword_presence",
        lambda r, labels, cid, words: calls.append(cid) or real(r, labels, cid, words),
    )
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    reading(at).set_value(3).run()
    assert calls[-1:] == [3]
    shown = [d.value for d in at.dataframe if "in this cluster" in d.value.columns]
    calls.clear()
    merge(at, [0, 1], "Money and accounts")
    assert_healthy(at)
    assert reading(at).value == 3 and calls == []  # nothing about cluster 3 changed
    assert [d.value for d in at.dataframe if "in this cluster" in d.value.columns][0].equals(shown[0])
    merge(at, [2, 3], "Crashes and praise")
    reading(at).set_value(2).run()
    assert calls[-1:] == [2]  # cluster 3 went into 2: its texts changed


def test_an_undo_shows_what_the_page_showed_before_the_merge_without_building_it_again(app, monkeypatch):
    """The page keeps the figures and tables of the state before the last one (``ui.memo``): an
    undo right after a merge, and the redo after it, build no cluster summary, keyword check or
    map again, and show what was shown before the merge."""
    from pipeline import edits, label_quality, plots

    built = []
    for module, name in (
        (edits, "edited_clusters"),
        (label_quality, "keyword_presence"),
        (plots, "map_paint"),
    ):
        real = getattr(module, name)
        monkeypatch.setattr(
            module, name, lambda *a, _real=real, _name=name, **k: built.append(_name) or _real(*a, **k)
        )
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    reading(at).set_value(0).run()
    before, paint = cluster_table(at), map_figure(at)["layout"]["annotations"]
    merge(at, [0, 1], "Money and accounts")
    assert_healthy(at)
    assert {"edited_clusters", "keyword_presence", "map_paint"} <= set(built)  # cluster 0 took in 1
    merged = cluster_table(at)
    built.clear()
    at.button(key="undo").click().run()
    assert_healthy(at)
    assert built == [] and cluster_table(at).equals(before) and reading(at).value == 0
    assert map_figure(at)["layout"]["annotations"] == paint
    at.button(key="redo").click().run()
    assert built == [] and cluster_table(at).equals(merged)


def test_a_merged_cluster_is_described_by_its_own_keywords_and_examples(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    before = cluster_table(at).set_index("id")
    merge(at, [0, 1], "Money and accounts")
    table = cluster_table(at).set_index("id")
    words = table.loc[0, "keywords"].split(", ")
    first, second = (set(before.loc[c, "keywords"].split(", ")) for c in (0, 1))
    assert set(words) & first and set(words) & second  # scored on both members' texts
    assert table.loc[0, "keywords"] != before.loc[0, "keywords"] + ", " + before.loc[1, "keywords"]
    reading(at).set_value(0).run()
    (examples,) = [d.value for d in at.dataframe if list(d.value.columns) == ["text"]]
    assert 1 <= len(examples) <= 5 and examples["text"].is_unique


def test_the_edit_log_takes_back_any_one_edit_and_redoes_it_without_closing(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    rename(at, 0, "Money")
    merge(at, [1, 2], "Accounts")
    rename(at, 2, "Crashes")
    at.session_state["edit_log"] = True  # the user opens the log
    at.run()
    assert expander(at, "Edit log").proto.expanded
    removes = [b for b in at.button if (b.key or "").startswith("remove:")]
    assert len(removes) == 3
    removes[1].click().run()  # the merge only
    assert_healthy(at)
    labels = cluster_table(at)["label"].tolist()
    assert "Money" in labels and "Crashes" in labels and "Accounts" not in labels
    assert at.title[0].value == "4 clusters"
    assert expander(at, "Edit log").proto.expanded  # still open for the next step
    redo = at.button(key="redo")
    assert redo.label == "Redo (1)" and not redo.disabled
    redo.click().run()
    assert cluster_table(at)["label"].tolist()[:3] == ["Money", "Accounts", "Crashes"]
    assert sum(t.startswith("✓ applied") for t in texts(at)) == 3
    assert at.button(key="redo").disabled
    # a new edit ends redo, as in any editor
    at.button(key="undo").click().run()
    assert "Crashes" not in cluster_table(at)["label"].tolist()
    rename(at, 0, "Cash")
    assert at.button(key="redo").disabled


def test_the_embedding_backend_is_a_saved_setting_that_embeds_again(app):
    at = upload(app.open(), "topics.csv", topic_csv())
    run_clustering(at)
    at.switch_page("pages/explore.py").run()
    backend = at.selectbox(key="set:embed.backend")
    assert backend.value == "torch"
    assert backend.options == [
        "Accurate (PyTorch)",
        "Fast (ONNX int8, ~3x)",
        "Preview (static, ~90x, lower quality)",
    ]
    app.calls.clear()
    backend.set_value("onnx-int8").run()
    assert_healthy(at)
    assert app.calls == ["embed", "reduce", "cluster", "label"]  # a new embed key
    assert at.session_state["last_events_cached"]["embed"] is False
    at.switch_page("pages/export.py").run()
    manifest = json.loads(app.downloaded(at, "dl_manifest"))
    assert manifest["config"]["embed"]["backend"] == "onnx-int8"

    later = app.open(ws=at.query_params["ws"])  # a new session starts from the saved setting
    later.switch_page("pages/explore.py").run()
    assert later.selectbox(key="set:embed.backend").value == "onnx-int8"


# ---------------------------------------------------------------------------- find, filter, break down


def survey_csv() -> bytes:
    """The topic texts with a channel that leans by topic (billing by email) and a date that
    moves (crash reports in the last weeks)."""
    texts_, topics = topic_texts(30, seed=5)
    channel = ["email" if t == "billing" else ("app" if i % 2 else "web") for i, t in enumerate(topics)]
    start = pd.Timestamp("2024-01-01")
    dates = [
        (start + pd.Timedelta(days=70 + i % 14 if t == "crash" else i % 84)).strftime("%d/%m/%Y")
        for i, t in enumerate(topics)
    ]
    frame = pd.DataFrame({"comment": texts_, "channel": channel, "created": dates})
    return frame.to_csv(index=False).encode()


def explore_survey(app) -> AppTest:
    at = upload(app.open(), "survey.csv", survey_csv())
    run_clustering(at)
    return at.switch_page("pages/explore.py").run()


def cluster_of(at: AppTest, word: str) -> int:
    table = cluster_table(at)
    return int(table.loc[table["keywords"].str.contains(word), "id"].iloc[0])


def test_a_word_search_counts_matches_per_cluster_and_fades_the_rest_of_the_map(app):
    at = explore_survey(app)
    at.text_input(key="search_text").input("refund").run()
    assert_healthy(at)
    (line,) = [t for t in texts(at) if t.startswith("Search 'refund'")]
    total = int(re.search(r": ([\d,]+) match", line).group(1))
    billing = cluster_of(at, "refund|invoice|charged")
    assert total > 0 and f"all in '{cluster_table(at).set_index('id').loc[billing, 'label']}'" in line
    assert cluster_table(at).set_index("id").loc[billing, "matches"] == total
    traces = map_figure(at)["data"]
    assert [t["name"] for t in traces] == ["not matching the search", "texts"]  # the rest faded
    assert 0 < len(traces[1]["text"]) <= total and all("refund" in t.lower() for t in traces[1]["text"])

    at.text_input(key="search_text").input("refund(").run()  # a bad pattern, as a pattern
    at.checkbox(key="search_regex").check().run()
    assert_healthy(at)
    assert any("is not a valid regular expression" in w for w in warnings(at))


def test_a_meaning_search_uses_the_runs_own_model_and_finds_texts_like_a_row(app):
    at = explore_survey(app)
    at.segmented_control(key="search_mode").set_value("meaning").run()
    at.text_input(key="search_text").input("app crash freeze").run()
    assert_healthy(at)
    (line,) = [t for t in texts(at) if t.startswith("Search 'app crash freeze'")]
    crash = cluster_of(at, "crash|freeze|bug")
    counts = cluster_table(at).set_index("id")["matches"]
    assert counts.idxmax() == crash, line  # the nearest texts in meaning are the crash reports
    (listing,) = [d for d in at.dataframe if (d.key or "").startswith("matches:")]
    assert list(listing.value.columns)[:5] == ["row", "text", "cluster_id", "cluster_label", "score"]
    assert listing.value["score"].is_monotonic_decreasing


def test_filters_recount_the_clusters_and_come_off_with_one_click(app):
    at = explore_survey(app)
    before = cluster_table(at)
    at.selectbox(key="filter_column").set_value("channel").run()
    at.multiselect(key="filter_values:channel").set_value(["email"]).run()
    at.button(key="filter_apply").click().run()
    assert_healthy(at)
    assert any(t.startswith("Showing 30 of 120 rows") for t in texts(at))
    table = cluster_table(at)
    billing = cluster_of(at, "refund|invoice|charged")
    assert table.set_index("id").loc[billing, "size"] == 30 and table["size"].sum() == 30
    assert table["rows (all)"].tolist() == before["size"].tolist()
    (chip,) = [b for b in at.button if (b.key or "").startswith("unfilter:")]
    assert unescape(chip.label) == "channel: email"
    chip.click().run()
    assert not any(t.startswith("Showing") for t in texts(at))
    assert cluster_table(at)["size"].tolist() == before["size"].tolist()


def test_the_breakdown_and_over_time_tabs_say_what_stands_out(app):
    at = explore_survey(app)
    at.session_state["view_tab"] = "Breakdown"
    at.run()
    assert_healthy(at)
    at.selectbox(key="breakdown_column").set_value("channel").run()
    assert [c.key for c in at.get("plotly_chart") if c.key == "breakdown_chart"] == ["breakdown_chart"]
    billing = cluster_table(at).set_index("id").loc[cluster_of(at, "refund|invoice|charged"), "label"]
    assert any(t.startswith(f"email: '{billing}'") for t in "\n".join(texts(at)).splitlines())
    rows = pd.read_csv(io.BytesIO(app.downloaded(at, "dl_breakdown")), encoding="utf-8-sig")
    assert list(rows.columns) == [
        "value", "cluster_id", "cluster_label", "rows", "share_of_value", "share_overall", "lift", "residual"
    ]  # fmt: skip
    at.session_state["view_tab"] = "Over time"
    at.run()
    assert_healthy(at)
    movers = [d.value for d in at.dataframe if "last_rows" in d.value.columns]
    crash = cluster_of(at, "crash|freeze|bug")
    assert movers and movers[0]["cluster_id"].iloc[0] == crash  # the crash reports grew
    assert [c.key for c in at.get("plotly_chart") if c.key == "trends_chart"] == ["trends_chart"]


def test_reading_a_cluster_shows_its_keywords_nearest_clusters_and_rows(app):
    at = explore_survey(app)
    billing = cluster_of(at, "refund|invoice|charged")
    reading(at).set_value(billing).run()
    assert_healthy(at)
    (shares,) = [d.value for d in at.dataframe if "in this cluster" in d.value.columns]
    assert (shares["in this cluster"] > shares["in the other clusters"]).all()  # its keywords tell it apart
    (nearest,) = [
        d.value
        for d in at.dataframe
        if list(d.value.columns) == ["cluster_id", "cluster_label", "similarity"]
    ]
    assert len(nearest) == 3 and billing not in nearest["cluster_id"].tolist()
    (rows,) = [d.value for d in at.dataframe if (d.key or "").startswith("read_rows:")]
    assert len(rows) == 30 and set(rows["channel"]) == {"email"}


def test_export_offers_the_rows_the_filters_keep(app):
    at = explore_survey(app)
    at.selectbox(key="filter_column").set_value("channel").run()
    at.multiselect(key="filter_values:channel").set_value(["email"]).run()
    at.button(key="filter_apply").click().run()
    at.switch_page("pages/export.py").run()
    assert_healthy(at)
    assert len(pd.read_csv(io.BytesIO(app.downloaded(at, "dl_csv")), encoding="utf-8-sig")) == 120
    at.radio(key="export_rows").set_value("filtered").run()
    rows = pd.read_csv(io.BytesIO(app.downloaded(at, "dl_csv")), encoding="utf-8-sig")
    assert len(rows) == 30 and set(rows["channel"]) == {"email"}
    assert json.loads(app.downloaded(at, "dl_manifest"))["filters"] == ["channel: email"]


def test_every_icon_is_a_material_icon():
    """An emoji icon is an empty box in a browser without an emoji font (issue 13): the pages
    use Streamlit's Material icons only."""
    sources = [APP, *sorted(APP.parent.glob("pages/**/*.py"))]
    icons = [
        m for path in sources for m in re.findall(r"icon=\"([^\"]*)\"", path.read_text(encoding="utf-8"))
    ]
    assert icons and all(i.startswith(":material/") for i in icons), [
        i for i in icons if not i.startswith(":material/")
    ]
