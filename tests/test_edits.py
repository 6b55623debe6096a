"""The analyst's edit log (pipeline/edits.py) on its own: rename, merge, re-application by members
after a re-run, stale edits, tree merges and parent ids. The app's pages only call these."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline import InputError, Table
from pipeline import edits as edits_module
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
from pipeline.stages import label as label_stage
from pipeline.types import NOISE_LABEL
from tests.conftest import TOPICS, FakeEmbedder, config_for, count_calls, run_collect, topic_texts


@pytest.fixture(scope="module")
def run_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def result(run_cache):
    """Four topics of 30 texts (tests/conftest.py), two rows without text: four clusters."""
    texts, _ = topic_texts()
    frame = pd.DataFrame({"comment": [*texts, "", None]})
    run, _ = run_collect(Table.from_frame(frame), config_for(), run_cache, FakeEmbedder())
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
    best = (len(members) - 2 * third) / len(members)  # what is left of cluster 0
    assert stale.message == (
        f"no longer applies: rename '{names[0]}' to 'Gone' "
        f"(no cluster with those texts now: at best {int(best * 100)}% of texts in common)"
    )
    assert kept.applied and edited.names[1] == "Kept"
    assert "Gone" not in edited.names.values()


def test_a_rename_follows_a_cluster_that_kept_most_of_its_texts_and_says_it_matched_approximately(result):
    """A small slider change moves a few texts: the name follows, marked as an approximate match."""
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    edit = rename(labels, names, 0, "Billing", corpus)
    rerun = labels.copy()
    members = np.flatnonzero(labels == 0)
    rerun[members[:3]] = 1  # three of its texts went to a neighbour
    edited = apply_edits(rerun, {c: f"new {c}" for c in range(4)}, [edit], corpus)
    (outcome,) = edited.outcomes
    share = int(100 * (len(members) - 3) / len(members))
    assert outcome.applied and outcome.approximate and edited.names[0] == "Billing"
    assert outcome.message == (
        f"applied (matched approximately: {share}% of texts in common): rename '{names[0]}' to 'Billing'"
    )
    exact = apply_edits(labels, names, [edit], corpus).outcomes[0]
    assert exact.applied and not exact.approximate and exact.message.startswith("applied: ")


def test_a_name_does_not_follow_a_cluster_that_kept_only_part_of_its_texts(result):
    """Deliberately stricter than before (a Jaccard overlap of 0.5 used to be enough): a cluster that
    lost 40% of its texts is not silently given the old name; the message says how close it came."""
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    edit = rename(labels, names, 0, "Billing", corpus)
    rerun = labels.copy()
    members = np.flatnonzero(labels == 0)
    moved = int(len(members) * 0.4)
    rerun[members[:moved]] = 2
    edited = apply_edits(rerun, {c: f"new {c}" for c in range(4)}, [edit], corpus)
    (outcome,) = edited.stale
    share = int(100 * (len(members) - moved) / len(members))
    assert outcome.message == (
        f"no longer applies: rename '{names[0]}' to 'Billing' "
        f"(no cluster with those texts now: at best {share}% of texts in common)"
    )
    assert "Billing" not in edited.names.values()


def test_a_merge_applies_to_the_one_cluster_that_now_holds_its_texts(result):
    """Bug 7: k-means put the merged texts (and a few more) into one cluster: the merge names it."""
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    edit = merge(labels, names, [1, 3], "Accounts and apps", corpus)
    rerun = relabelled(labels, {0: 1, 1: 0, 2: 2, 3: 0})  # 1 and 3 are one cluster now
    extra = np.flatnonzero(labels == 0)[:5]
    rerun[extra] = 0  # with five texts of another one
    edited = apply_edits(rerun, {0: "k0", 1: "k1", 2: "k2"}, [edit], corpus)
    (outcome,) = edited.outcomes
    together = int((labels == 1).sum() + (labels == 3).sum())
    share = int(100 * together / (together + 5))
    assert outcome.applied and outcome.approximate
    assert outcome.message == (
        f"applied (the merged texts are already one cluster, matched approximately: {share}% of texts "
        f"in common): merge {names[1]!r}, {names[3]!r} into 'Accounts and apps'"
    )
    assert edited.names[0] == "Accounts and apps" and edited.names[1] == "k1"
    np.testing.assert_array_equal(edited.labels, rerun)  # nothing to move: already one cluster

    exactly = relabelled(labels, {3: 1})
    outcome = apply_edits(exactly, {0: "k0", 1: "k1", 2: "k2"}, [edit], corpus).outcomes[0]
    assert outcome.applied and not outcome.approximate
    assert outcome.message == (
        f"applied (the merged texts are already one cluster): merge {names[1]!r}, {names[3]!r} "
        "into 'Accounts and apps'"
    )


def test_a_merge_whose_texts_scattered_is_stale_and_says_how_close_it_came(result):
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    edit = merge(labels, names, [1, 3], "Accounts and apps", corpus)
    rerun = labels.copy()
    members = np.flatnonzero(labels == 3)
    half = len(members) // 2
    rerun[members[:half]] = 0  # half of cluster 3 went elsewhere: neither it nor the union matches
    edited = apply_edits(rerun, {c: str(c) for c in range(4)}, [edit], corpus)
    (outcome,) = edited.stale
    share = int(100 * (len(members) - half) / len(members))  # cluster 3 now, the closest to its old self
    assert outcome.message == (
        f"no longer applies: merge {names[1]!r}, {names[3]!r} into 'Accounts and apps' "
        f"(no cluster with those texts now: at best {share}% of texts in common)"
    )
    assert not outcome.approximate and "Accounts and apps" not in edited.names.values()


def test_an_edit_made_on_other_texts_never_applies_whatever_its_indices_match(result):
    labels, names = result.clustering.labels, names_of(result)
    edit = rename(labels, names, 0, "Elsewhere", "key-of-another-text-column")
    edited = apply_edits(labels, names, [edit], corpus_of(result))
    assert not edited.outcomes[0].applied
    assert "made on other texts" in edited.outcomes[0].message
    assert edited.names[0] == names[0]
    older = Edit("rename", edit.groups, "From an older log", edit.was, corpus="")
    assert apply_edits(labels, names, [older], corpus_of(result)).outcomes[0].applied


def topic_of(keywords: str) -> str:
    """The topic of tests/conftest.py whose words a cluster's keywords are."""
    (topic,) = {t for t, words in TOPICS.items() if keywords.split(", ")[0] in words}
    return topic


def test_a_merged_cluster_gets_keywords_and_examples_as_if_the_run_had_found_it(result):
    """Bug 6: keywords scored on the merged texts (against the other clusters), examples chosen
    among all of them; the clusters no merge touched keep theirs."""
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    before = result.clusters().set_index("id")
    edited = apply_edits(labels, names, [merge(labels, names, [0, 2], "Money and praise", corpus)], corpus)
    summary = edited_clusters(result, edited).set_index("id")
    params = result.config.label

    keywords = summary.loc[0, "keywords"].split(", ")
    assert len(keywords) == params.n_keywords  # as many as any cluster shows
    topics = {topic_of(before.loc[0, "keywords"]), topic_of(before.loc[2, "keywords"])}
    assert {t for t, words in TOPICS.items() for k in keywords if k in words} == topics  # from both
    examples = summary.loc[0, "representative_texts"].split(" | ")
    members = set(result.corpus.texts[edited.labels == 0])
    assert len(examples) == len(set(examples)) == params.n_representatives and set(examples) <= members

    # the same as the label stage gives a clustering in which the two are one cluster
    one = label_stage.label(
        result.corpus, result.embeddings, dataclasses.replace(result.clustering, labels=edited.labels), params
    ).clusters.set_index("id")
    assert keywords == one.loc[0, "keywords"] and examples == one.loc[0, "representatives"]
    for untouched in (1, 3):
        assert summary.loc[untouched, "keywords"] == before.loc[untouched, "keywords"]
        assert summary.loc[untouched, "representative_texts"] == before.loc[untouched, "representative_texts"]


def test_merged_clusters_are_summarised_once_per_edit_log_with_the_runs_word_counts(
    result, run_cache, monkeypatch
):
    """The Explore page asks for the summary on every rerun: only a new edit log scores again, and
    with the run's cache the words are not counted again either."""
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    for memo in ("_SUMMARIES", "_PIECES"):  # as in a fresh process, whatever other tests showed
        monkeypatch.setattr(edits_module, memo, {})
    scorings = count_calls(monkeypatch, label_stage, "summarise")
    countings = count_calls(monkeypatch, label_stage, "_vectorize")
    renamed = apply_edits(labels, names, [rename(labels, names, 1, "Only a name", corpus)], corpus)
    edited_clusters(result, renamed)
    assert scorings == []  # no merge: nothing to score
    edited = apply_edits(labels, names, [merge(labels, names, [1, 3], "Logins and crashes", corpus)], corpus)
    first = edited_clusters(result, edited, cache_dir=run_cache)
    pd.testing.assert_frame_equal(edited_clusters(result, edited), first)
    assert len(scorings) == 1 and countings == []


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
