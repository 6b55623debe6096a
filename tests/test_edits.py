"""The analyst's edit log (pipeline/edits.py) on its own: rename, merge, re-application by members
after a re-run, stale edits, tree merges and parent ids. The app's pages only call these."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import InputError, Table
from pipeline.edits import (
    MAX_LABEL,
    Edit,
    apply_edits,
    clean_name,
    cluster_rows,
    clusters_with_parents,
    corpus_of,
    current_ids,
    edited_clusters,
    edited_from_result,
    edited_table,
    group_name,
    merge,
    rename,
    tree_level,
    tree_merges,
)
from pipeline.types import NOISE_LABEL
from tests.conftest import FakeEmbedder, config_for, run_collect, topic_texts


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    """Four topics of 30 texts (tests/conftest.py), two rows without text: four clusters."""
    texts, _ = topic_texts()
    frame = pd.DataFrame({"comment": [*texts, "", None]})
    run, _ = run_collect(
        Table.from_frame(frame), config_for(), tmp_path_factory.mktemp("cache"), FakeEmbedder()
    )
    assert run.n_clusters == 4
    return run


def names_of(result) -> dict[int, str]:
    return result.labels.label_of()


def relabelled(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    """The same clusters under other ids, as a re-run with other settings may number them."""
    return np.array([mapping.get(int(c), int(c)) for c in labels], dtype=np.int64)


# --- rename and merge ----------------------------------------------------------------------------


def test_a_rename_names_the_cluster_and_moves_no_text(result):
    labels, names = result.clustering.labels, names_of(result)
    edit = rename(labels, names, 0, "  Money\nmatters\t ", corpus_of(result))
    assert edit.op == "rename" and edit.label == "Money matters" and edit.was == (names[0],)
    assert edit.groups == (tuple(np.flatnonzero(labels == 0).tolist()),)
    edited = apply_edits(labels, names, [edit], corpus_of(result))
    assert edited.names[0] == "Money matters" and edited.names[-1] == NOISE_LABEL
    np.testing.assert_array_equal(edited.labels, labels)
    (outcome,) = edited.outcomes
    assert outcome.applied and outcome.message == f"applied: rename '{names[0]}' to 'Money matters'"
    assert edited.stale == []


def test_a_merge_joins_clusters_under_the_smaller_id_and_adds_up_their_rows(result):
    labels, names = result.clustering.labels, names_of(result)
    edit = merge(labels, names, [3, 1], "Accounts and apps", corpus_of(result))
    assert edit.op == "merge" and edit.was == (names[1], names[3])
    edited = apply_edits(labels, names, [edit], corpus_of(result))
    assert set(edited.labels.tolist()) - {-1} == {0, 1, 2}
    np.testing.assert_array_equal(edited.labels == 1, (labels == 1) | (labels == 3))
    assert 3 not in edited.names and edited.names[1] == "Accounts and apps"
    assert edited.outcomes[0].message == f"applied: merge {names[1]!r}, {names[3]!r} into 'Accounts and apps'"
    summary = edited_clusters(result, edited).set_index("id")
    before = result.clusters().set_index("id")
    assert summary.loc[1, "size"] == before.loc[1, "size"] + before.loc[3, "size"]
    assert summary.loc[1, "merged_from"] == "1, 3" and summary.loc[0, "merged_from"] == ""
    assert summary["size"].sum() == before["size"].sum()
    assert current_ids(result, edited) == {0: 0, 1: 1, 2: 2, 3: 1}
    assert cluster_rows(result, edited)[1] == before.loc[1, "size"] + before.loc[3, "size"]


def test_edits_apply_in_order_so_a_rename_can_follow_a_merge(result):
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    first = merge(labels, names, [0, 2], "Merged", corpus)
    after = apply_edits(labels, names, [first], corpus)
    second = rename(after.labels, after.names, 0, "Renamed after the merge", corpus)
    edited = apply_edits(labels, names, [first, second], corpus)
    assert [o.applied for o in edited.outcomes] == [True, True]
    assert edited.names[0] == "Renamed after the merge" and 2 not in edited.names


def test_names_are_cleaned_and_impossible_edits_are_refused_plainly(result):
    labels, names = result.clustering.labels, names_of(result)
    assert clean_name("a\x00b  \x1b c") == "a b c"
    assert len(clean_name("x" * 500)) == MAX_LABEL
    for bad in ("", "   ", "\n\t"):
        with pytest.raises(InputError, match="cannot be empty"):
            clean_name(bad)
    with pytest.raises(InputError, match="unclustered group cannot be renamed"):
        rename(labels, names, -1, "noise")
    with pytest.raises(InputError, match="two or more clusters"):
        merge(labels, names, [1, 1], "one")
    with pytest.raises(InputError, match="two or more clusters"):
        merge(labels, names, [-1, 1], "with noise")


def test_an_edit_log_round_trips_through_plain_dicts_and_reads_older_logs(result):
    labels, names = result.clustering.labels, names_of(result)
    edits = [rename(labels, names, 0, "A", "corpus-key"), merge(labels, names, [1, 2], "B", "corpus-key")]
    assert [Edit.from_dict(e.to_dict()) for e in edits] == edits
    old = Edit.from_dict({"op": "rename", "groups": [[1, 2]], "label": "Old"})  # before was/corpus
    assert old.was == () and old.corpus == "" and old.describe() == "rename '?' to 'Old'"


# --- after a re-run --------------------------------------------------------------------------------


def test_edits_follow_their_clusters_by_members_when_a_rerun_numbers_them_otherwise(result):
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    edits = [rename(labels, names, 0, "Billing", corpus), merge(labels, names, [1, 2], "Joined", corpus)]
    rerun = relabelled(labels, {0: 3, 1: 0, 2: 1, 3: 2})
    # and a few texts of the renamed cluster moved elsewhere: still mostly the same members
    moved = np.flatnonzero(rerun == 3)[:3]
    rerun[moved] = 2
    rerun_names = {c: f"new {c}" for c in range(4)}
    edited = apply_edits(rerun, rerun_names, edits, corpus)
    assert [o.applied for o in edited.outcomes] == [True, True]
    assert edited.names[3] == "Billing"
    np.testing.assert_array_equal(edited.labels == 0, (rerun == 0) | (rerun == 1))  # the smaller id
    assert edited.names[0] == "Joined" and 1 not in edited.names
    assert edited.names[2] == "new 2"  # untouched clusters keep the run's own label


def test_an_edit_whose_cluster_is_gone_is_reported_stale_and_the_rest_still_apply(result):
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    edits = [rename(labels, names, 0, "Gone", corpus), rename(labels, names, 1, "Kept", corpus)]
    split = labels.copy()
    members = np.flatnonzero(labels == 0)
    third = len(members) // 3
    split[members[:third]], split[members[third : 2 * third]] = 4, 5  # none is mostly cluster 0
    edited = apply_edits(split, {c: str(c) for c in range(6)}, edits, corpus)
    stale, kept = edited.outcomes
    assert not stale.applied and edited.stale == [stale]
    assert (
        stale.message == f"no longer applies: rename '{names[0]}' to 'Gone' (no cluster with those texts now)"
    )
    assert kept.applied and edited.names[1] == "Kept"
    assert "Gone" not in edited.names.values()


def test_an_edit_made_on_other_texts_never_applies_whatever_its_indices_match(result):
    labels, names = result.clustering.labels, names_of(result)
    edit = rename(labels, names, 0, "Elsewhere", "key-of-another-text-column")
    edited = apply_edits(labels, names, [edit], corpus_of(result))
    assert not edited.outcomes[0].applied
    assert "made on other texts" in edited.outcomes[0].message
    assert edited.names[0] == names[0]
    older = Edit("rename", edit.groups, "From an older log", edit.was, corpus="")
    assert apply_edits(labels, names, [older], corpus_of(result)).outcomes[0].applied


def test_the_edited_table_keeps_every_row_and_the_raw_cluster_ids(result):
    labels, names = result.clustering.labels, names_of(result)
    edited = edited_from_result(result, [merge(labels, names, [0, 1], "Zero and one", corpus_of(result))])
    table, plain = edited_table(result, edited), result.table()
    assert len(table) == len(plain) == 122
    pd.testing.assert_series_equal(table["raw_cluster_id"], plain["raw_cluster_id"])
    was_one = plain["cluster_id"] == 1
    assert (table.loc[was_one, "cluster_id"] == 0).all()
    assert (table.loc[was_one, "cluster_label"] == "Zero and one").all()
    assert table["cluster_id"].isna().sum() == 2 and table["cluster_label"].isna().sum() == 2


# --- the cluster tree ----------------------------------------------------------------------------


def test_a_tree_level_becomes_one_merge_per_group_that_applies_in_order(result):
    unedited = edited_from_result(result, [])
    groups = tree_level(result, unedited, 2)
    assert sorted(c for g in groups for c in g) == [0, 1, 2, 3]
    size = cluster_rows(result, unedited)
    totals = [sum(size[c] for c in g) for g in groups]
    assert totals == sorted(totals, reverse=True)  # largest group first
    cut = result.tree.cut(2)
    assert all(len({cut[c] for c in g}) == 1 for g in groups)  # the tree's own groups
    merges = tree_merges(result, unedited, groups)
    assert len(merges) == sum(len(g) > 1 for g in groups)
    edited = edited_from_result(result, merges)
    assert all(o.applied for o in edited.outcomes)
    assert len(set(edited.labels.tolist()) - {-1}) == 2
    for group, edit in zip([g for g in groups if len(g) > 1], merges, strict=True):
        assert edit.label == group_name(group, unedited, size)
        assert edited.names[min(group)] == edit.label


def test_a_group_name_joins_the_first_words_of_its_two_largest_clusters(result):
    edited = edited_from_result(result, [])
    edited.names.update({0: "refund, charged", 1: "crash, bug", 2: "login", 3: "love"})
    size = {0: 40, 1: 30, 2: 20, 3: 10}
    assert group_name([1, 0], edited, size) == "refund + crash"
    assert group_name([3, 2, 1], edited, size) == "crash + login + …"


def test_a_tree_level_joins_groups_that_an_earlier_merge_already_joined(result):
    cut = result.tree.cut(2)
    a = next(c for c in cut if cut[c] == 0)
    b = next(c for c in cut if cut[c] == 1)
    labels, names = result.clustering.labels, names_of(result)
    edited = edited_from_result(result, [merge(labels, names, [a, b], "Across", corpus_of(result))])
    (group,) = tree_level(result, edited, 2)  # a cluster cannot sit in two groups
    assert sorted(group) == sorted(set(current_ids(result, edited).values()))


def test_parent_ids_follow_the_tree_for_plain_and_merged_clusters(result):
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    unedited = edited_from_result(result, [])
    plain = clusters_with_parents(result, unedited, edited_clusters(result, unedited)).set_index("id")
    expected = result.clusters().set_index("id")["parent_id"]
    pd.testing.assert_series_equal(plain["parent_id"], expected.loc[plain.index], check_names=False)
    if -1 in plain.index:
        assert pd.isna(plain.loc[-1, "parent_id"])  # the unclustered sit outside the tree

    nodes = result.tree.nodes.set_index("id")
    root = int(nodes.index[nodes["parent_id"] == -1][0])
    # the first merge of the tree: merging exactly its two clusters gives that node's parent
    first = int(nodes.index[~nodes["is_cluster"].astype(bool)].min())
    x, y = sorted(nodes.loc[first, "clusters"])
    edited = edited_from_result(result, [merge(labels, names, [x, y], "A node", corpus)])
    table = clusters_with_parents(result, edited, edited_clusters(result, edited)).set_index("id")
    assert table.loc[x, "parent_id"] == nodes.loc[first, "parent_id"]

    # two clusters on either side of the root: the smallest node holding both is the root
    cut = result.tree.cut(2)
    a = next(c for c in cut if cut[c] == 0)
    b = next(c for c in cut if cut[c] == 1)
    edited = edited_from_result(result, [merge(labels, names, [a, b], "Across", corpus)])
    table = clusters_with_parents(result, edited, edited_clusters(result, edited)).set_index("id")
    assert table.loc[min(a, b), "parent_id"] == root
