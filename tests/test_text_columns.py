"""Several text columns: ``preprocess.text_column`` as a list, joined with a newline into each
row's text; validation, the cache key of one column kept, the command line and the Upload page."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import pipeline.__main__ as cli
from pipeline import InputError, PipelineConfig, PreprocessParams, Runtime, Table
from pipeline.cache import chain_key
from pipeline.dataset_state import DatasetState
from pipeline.runner import stage_keys
from pipeline.stages import preprocess as preprocess_stage
from pipeline.stages.preprocess import preprocess
from tests.conftest import FakeEmbedder, topic_texts

FRAME = pd.DataFrame(
    {
        "id": [1, 2, 3, 4, 5],
        "title": ["Refund", None, "  ", "Crash", None],
        "body": ["charged  twice", "app freezes", "", None, None],
    }
)


def prepared(columns, frame: pd.DataFrame = FRAME):
    return preprocess(Table.from_frame(frame, name="t.csv"), PreprocessParams(text_column=columns))


def refused(columns, frame: pd.DataFrame = FRAME) -> str:
    with pytest.raises(InputError) as info:
        prepared(columns, frame)
    assert info.value.stage == "preprocess"
    return info.value.user_message()


# --- the join ----------------------------------------------------------------------------------


def test_columns_are_joined_with_a_newline_leaving_out_empty_and_missing_cells():
    corpus = prepared(["title", "body"])
    assert corpus.clean.tolist() == ["Refund\ncharged twice", "app freezes", "", "Crash", ""]
    assert corpus.issues.tolist() == ["", "", "empty", "", "missing"]  # all empty; all missing
    assert corpus.original.tolist() == ["Refund\ncharged  twice", "app freezes", "", "Crash", None]
    assert corpus.texts.tolist() == ["Refund\ncharged twice", "app freezes", "Crash"]
    assert corpus.text_column == ("title", "body")
    pd.testing.assert_frame_equal(corpus.table.frame, FRAME)  # the columns stay as they were


def test_the_order_given_is_the_order_joined():
    assert prepared(["body", "title"]).clean[0] == "charged twice\nRefund"


def test_one_column_in_a_list_is_that_column():
    assert PreprocessParams(text_column=["body"]) == PreprocessParams(text_column="body")
    assert prepared(["body"]).clean.tolist() == prepared("body").clean.tolist()


# --- validation --------------------------------------------------------------------------------


def test_every_missing_column_is_named_with_what_to_do():
    message = refused(["title", "Body", "summary"])
    assert (
        "expected text columns 'title', 'Body', 'summary'; 'Body', 'summary' are not in the table" in message
    )
    assert "found columns: 'id', 'title', 'body'" in message
    assert "--text-column once per column" in message and "case-sensitive" in message


def test_a_column_named_twice_is_refused():
    message = refused(["title", "body", "title"])
    assert "the text columns 'title', 'body', 'title' name 'title' more than once" in message
    assert "give each column once" in message


def test_a_name_with_a_comma_split_by_set_gets_a_hint():
    frame = pd.DataFrame({"What went wrong, if anything?": ["late"], "id": [1]})
    config = PipelineConfig().with_overrides(["preprocess.text_column=What went wrong, if anything?"])
    assert config.preprocess.text_column == ("What went wrong", "if anything?")
    message = refused(config.preprocess.text_column, frame)
    assert "has a comma in its name" in message and '--text-column "What went wrong, if anything?"' in message


def test_columns_that_are_all_empty_say_so():
    frame = pd.DataFrame({"a": ["", None], "b": [None, " "]})
    assert "columns 'a' + 'b' have no usable text: 2 rows" in refused(["a", "b"], frame)


# --- settings and the cache key ------------------------------------------------------------------


def test_toml_list_set_with_commas_and_round_trip(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('[preprocess]\ntext_column = ["title", "body"]\n', encoding="utf-8")
    from_file = PipelineConfig.from_toml(path)
    from_set = PipelineConfig().with_overrides(["preprocess.text_column=title, body"])
    assert from_file.preprocess.text_column == from_set.preprocess.text_column == ("title", "body")
    path.write_text(from_file.to_toml(), encoding="utf-8")
    assert PipelineConfig.from_toml(path) == from_file


def test_one_column_keeps_the_cache_key_it_always_had():
    table = Table.from_frame(FRAME, name="t.csv")
    runtime = Runtime()
    one = stage_keys(table, PipelineConfig().with_values({"preprocess.text_column": "body"}), runtime)
    listed = stage_keys(table, PipelineConfig().with_values({"preprocess.text_column": ["body"]}), runtime)
    before = chain_key(  # how the key was built when text_column could only be a name
        "preprocess",
        preprocess_stage.VERSION,
        {"__type__": "PreprocessParams", "text_column": "body", "max_chars": 2000, "min_chars": 1},
        [one["table"]],
    )
    assert one == listed and one["corpus"] == before
    two = stage_keys(
        table, PipelineConfig().with_values({"preprocess.text_column": ["title", "body"]}), runtime
    )
    swapped = stage_keys(
        table, PipelineConfig().with_values({"preprocess.text_column": ["body", "title"]}), runtime
    )
    assert len({one["corpus"], two["corpus"], swapped["corpus"]}) == 3


def test_the_app_state_keeps_the_columns_and_reads_an_older_file_as_its_first_column():
    state = DatasetState().with_text_column(("title", "body"))
    assert state.text_column == ("title", "body")
    assert DatasetState.from_dict(state.to_dict()) == state
    assert state.with_text_column("body").text_column == "body"
    # before columns could be joined, text_columns listed earlier choices after the clustered one
    older = DatasetState.from_dict({"text_columns": ["comment", "other"], "text_column": "comment"})
    assert older.text_columns == ("comment",)


# --- the command line ------------------------------------------------------------------------------


def test_the_command_line_joins_two_text_columns(tmp_path, monkeypatch, capsys):
    embedder = FakeEmbedder()
    monkeypatch.setattr(cli, "Runtime", lambda **kw: Runtime(embedder=embedder, heartbeat_s=0.5, **kw))
    texts, _ = topic_texts()
    frame = pd.DataFrame({"title": [t.split()[0] for t in texts], "body": texts, "n": range(len(texts))})
    source = tmp_path / "in.csv"
    frame.to_csv(source, index=False)
    out = tmp_path / "out.csv"
    args = ["run", source, "--text-column", "title", "--text-column", "body", "--out", out]
    code = cli.main([str(a) for a in [*args, "--cache-dir", tmp_path / "cache", "--quiet"]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    written = pd.read_csv(out)
    assert written[["title", "body", "n"]].equals(frame)  # the original columns, as they were
    manifest = json.loads((tmp_path / "out.manifest.json").read_text())
    assert manifest["input"]["text_column"] == ["title", "body"]
    assert manifest["config"]["preprocess"]["text_column"] == ["title", "body"]
    args = ["run", source, "--text-column", "title", "--text-column", "nope", "--out", tmp_path / "x.csv"]
    code = cli.main([str(a) for a in args])
    assert code == 2
    assert "'nope' is not in the table" in capsys.readouterr().err


# --- the app -------------------------------------------------------------------------------------


def test_upload_joins_the_columns_picked_and_runs(app):
    texts, _ = topic_texts()
    frame = pd.DataFrame({"id": range(len(texts)), "title": [t.split()[0] for t in texts], "body": texts})
    at = app.open()
    at.file_uploader(key="upload").set_value(
        ("two.csv", frame.to_csv(index=False).encode(), "text/csv")
    ).run()
    dataset = at.session_state["dataset_id"]
    picker = at.multiselect(key=f"text_column:{dataset}")
    assert picker.value == ["body"]  # the suggested column
    picker.set_value(["title", "body"]).run()
    assert not at.exception
    shown = [c.value.replace("\\", "") for c in at.caption]  # Markdown-escaped
    assert "Each row's text: title + body, a line between them." in shown
    at.button(key="run").click().run()
    assert not at.exception and not at.error
    result = at.session_state["result"]
    assert result.config.preprocess.text_column == ("title", "body")
    assert result.corpus.texts[0] == f"{frame['title'][0]}\n{frame['body'][0]}"
    assert [s.value for s in at.success][0].endswith("Open Explore to see and edit them.")
    at.switch_page("pages/explore.py").run()  # Explore clusters the same columns, from the cache
    assert not at.exception
    at.switch_page("pages/upload.py").run()
    assert at.multiselect(key=f"text_column:{dataset}").value == ["title", "body"]
    at.multiselect(key=f"text_column:{dataset}").set_value([]).run()
    assert "Pick at least one column with the texts." in [w.value for w in at.warning]
    assert not [b for b in at.button if b.key == "run"]  # nothing to run until a column is picked
