"""The typed dataset state: what a page reads once per rerun, and what survives a reload."""

from __future__ import annotations

import json

from pipeline.dataset_state import DatasetState
from pipeline.edits import Edit
from pipeline.store import Tokens, Workspace

RENAME = Edit("rename", ((1, 2, 3),), "Billing", ("refund, charged",), "c1")
MERGE = Edit("merge", ((4, 5), (6,)), "Login", ("a", "b"), "c1")
TREE = (  # a tree level: one click, two merges
    Edit("merge", ((7,), (8,)), "Crash + bug", ("crash", "bug"), "c1"),
    Edit("merge", ((9,), (10,)), "Love + easy", ("love", "easy"), "c1"),
)
LAST = Edit("rename", ((11, 12),), "Praise", ("love",), "c1")


def three_steps() -> DatasetState:
    return DatasetState(("comment",)).with_edits([RENAME]).with_edits(TREE).with_edits([LAST])


def test_one_click_is_one_undo_step_and_the_rest_of_the_log_stays():
    state = DatasetState().with_text_column("comment").with_edits([RENAME]).with_edits([MERGE, RENAME])
    assert state.text_column == "comment" and state.steps == (1, 2)
    undone = state.undo()
    assert undone.edits == (RENAME,) and undone.steps == (1,)
    emptied = undone.undo().undo()  # nothing left to undo: the second is a no-op
    assert emptied.edits == () and emptied.steps == () and emptied.text_column == "comment"
    assert state.cleared().edits == () and state.cleared().text_column == "comment"


def test_the_log_lists_its_steps_with_their_edits_for_the_page():
    assert three_steps().steps_with_edits() == [(0, (RENAME,)), (1, TREE), (2, (LAST,))]
    assert DatasetState().steps_with_edits() == []


def test_one_step_can_be_removed_alone_and_redo_puts_it_back_where_it_was():
    state = three_steps()
    removed = state.remove_step(1)  # the tree level, both its merges; later edits stay
    assert removed.edits == (RENAME, LAST) and removed.steps == (1, 1)
    assert removed.can_redo and removed.redoable == TREE
    back = removed.redo()  # at its old position: edits apply in order, as they did when made
    assert back.edits == state.edits and back.steps == state.steps and not back.can_redo
    assert state.remove_step(3) == state and state.remove_step(-1) == state  # no such step


def test_redo_takes_back_the_latest_undo_first_and_a_new_edit_ends_redo():
    state = three_steps()
    twice = state.undo().remove_step(0)
    assert twice.edits == TREE
    once = twice.redo()
    assert once.edits == (RENAME, *TREE) and once.redoable == (LAST,)
    assert once.redo().edits == state.edits and once.redo().redo() == once.redo()  # nothing left
    after_new = twice.with_edits([MERGE])  # as in any editor: a new edit drops what could be redone
    assert not after_new.can_redo and after_new.redo() == after_new


def test_clearing_the_log_can_be_redone_in_one_click():
    state = three_steps()
    cleared = state.cleared()
    assert cleared.edits == () and cleared.redoable == state.edits
    assert cleared.redo().edits == state.edits and cleared.redo().steps == state.steps
    assert DatasetState().cleared() == DatasetState()


def test_state_round_trips_through_the_workspace_and_reads_an_older_state_file(tmp_path):
    tokens = Tokens(b"s" * 32)
    ws = Workspace(tokens.new(), tmp_path, tokens=tokens)
    info, _ = ws.add(b"id,comment\n1,hello there\n2,good bye\n", "t.csv")
    assert ws.dataset_state(info.id) == DatasetState()  # nothing saved yet
    state = DatasetState(("comment", "title"), {"cluster.min_cluster_size": 7}).with_edits([RENAME, MERGE])
    ws.save_dataset_state(info.id, state)
    assert ws.dataset_state(info.id) == state
    # what can be redone survives a reload too (a removed step and a cleared log)
    state = three_steps().remove_step(1).cleared()
    ws.save_dataset_state(info.id, state)
    read = ws.dataset_state(info.id)
    assert read == state and read.redo().redo().edits == three_steps().edits
    # a state.json from before: one text column, edits as dicts, a damaged entry, no steps
    older = {"text_column": "comment", "settings": {"a": 1}, "edits": [RENAME.to_dict(), {"op": "merge"}]}
    (ws.path / "datasets" / info.id / "state.json").write_text(json.dumps(older))
    read = ws.dataset_state(info.id)
    assert read.text_columns == ("comment",) and read.settings == {"a": 1}
    assert read.edits == (RENAME,) and read.steps == (1,) and not read.can_redo
    # a damaged redo entry is dropped, the rest still redoes
    state = three_steps().undo()
    data = state.to_dict()
    data["redo"] = [{"steps": "junk"}, *data["redo"], [1, 2]]
    assert DatasetState.from_dict(data) == state


def test_the_text_columns_chosen_are_all_joined_and_a_new_choice_replaces_them():
    state = DatasetState(("a", "b", "c"))
    assert state.text_column == ("a", "b", "c")  # preprocess.text_column: all of them, joined
    assert state.with_text_column("c").text_columns == ("c",)
    assert state.with_text_column(["b", "a", "b"]).text_columns == ("b", "a")


# moves, tags and splits are edits like the others: one click is one step, undone, removed and
# redone alone, and they survive a reload
MOVE = Edit("move", ((1, 2, 3),), "Billing", ("login",), "c1", texts=(20, 21), target="cluster", rows=5)
TAG = Edit("tag", (), "urgent", (), "c1", texts=(20,), rows=3)
SPLIT = Edit(
    "split", ((4, 5, 6, 7),), "Login", ("Login",), "c1", pieces=((4, 5), (6, 7)), names=("reset", "locked")
)


def test_moves_tags_and_splits_are_steps_like_any_edit_and_survive_a_reload(tmp_path):
    state = DatasetState(("comment",)).with_edits([MOVE]).with_edits([TAG]).with_edits([SPLIT])
    assert state.steps_with_edits() == [(0, (MOVE,)), (1, (TAG,)), (2, (SPLIT,))]
    assert state.undo().edits == (MOVE, TAG) and state.undo().redoable == (SPLIT,)
    assert (
        state.remove_step(1).edits == (MOVE, SPLIT)
        and state.remove_step(1).redo() == state.remove_step(1).redo()
    )
    assert state.remove_step(1).redo().edits == state.edits
    tokens = Tokens(b"s" * 32)
    ws = Workspace(tokens.new(), tmp_path, tokens=tokens)
    info, _ = ws.add(b"id,comment\n1,hello there\n2,good bye\n", "t.csv")
    ws.save_dataset_state(info.id, state.remove_step(0))
    read = ws.dataset_state(info.id)
    assert read == state.remove_step(0) and read.redo().edits == state.edits
    # a damaged entry of a new kind is dropped alone; the rest of the log still reads
    data = state.to_dict()
    data["edits"].insert(1, {"op": "move", "groups": [], "label": "x", "texts": "not numbers"})
    data["edit_steps"] = [1, 1, 1, 1]
    assert DatasetState.from_dict(data).edits == state.edits
