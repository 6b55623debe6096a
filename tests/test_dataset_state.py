"""The typed dataset state: what a page reads once per rerun, and what survives a reload."""

from __future__ import annotations

import json

from pipeline.dataset_state import DatasetState
from pipeline.edits import Edit
from pipeline.store import Tokens, Workspace

RENAME = Edit("rename", ((1, 2, 3),), "Billing", ("refund, charged",), "c1")
MERGE = Edit("merge", ((4, 5), (6,)), "Login", ("a", "b"), "c1")


def test_one_click_is_one_undo_step_and_the_rest_of_the_log_stays():
    state = DatasetState().with_text_column("comment").with_edits([RENAME]).with_edits([MERGE, RENAME])
    assert state.text_column == "comment" and state.steps == (1, 2)
    undone = state.undo()
    assert undone.edits == (RENAME,) and undone.steps == (1,)
    assert undone.undo().undo() == DatasetState(text_columns=("comment",))
    assert state.cleared().edits == () and state.cleared().text_column == "comment"


def test_state_round_trips_through_the_workspace_and_reads_an_older_state_file(tmp_path):
    tokens = Tokens(b"s" * 32)
    ws = Workspace(tokens.new(), tmp_path, tokens=tokens)
    info, _ = ws.add(b"id,comment\n1,hello there\n2,good bye\n", "t.csv")
    assert ws.dataset_state(info.id) == DatasetState()  # nothing saved yet
    state = DatasetState(("comment", "title"), {"cluster.min_cluster_size": 7}).with_edits([RENAME, MERGE])
    ws.save_dataset_state(info.id, state)
    assert ws.dataset_state(info.id) == state
    # a state.json from before: one text column, edits as dicts, a damaged entry, no steps
    older = {"text_column": "comment", "settings": {"a": 1}, "edits": [RENAME.to_dict(), {"op": "merge"}]}
    (ws.path / "datasets" / info.id / "state.json").write_text(json.dumps(older))
    read = ws.dataset_state(info.id)
    assert read.text_columns == ("comment",) and read.settings == {"a": 1}
    assert read.edits == (RENAME,) and read.steps == (1,)


def test_choosing_another_text_column_keeps_the_others_after_it():
    state = DatasetState(("a", "b", "c")).with_text_column("c")
    assert state.text_columns == ("c", "a", "b")
