"""The analyst's edit log (pipeline/edits.py) on its own: rename, merge, re-application by members
after a re-run, stale edits, tree merges and parent ids. The app's pages only call these."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pandas as pd
import pytest

from pipeline import InputError, Table
from pipeline import edits as edits_module
from pipeline.dataset_state import DatasetState
from pipeline.edits import (
    MAX_LABEL,
    MAX_TAG,
    UNCLUSTERED,
    Edit,
    apply_edits,
    clean_name,
    clean_tag,
    cluster_rows,
    clusters_with_parents,
    corpus_of,
    current_ids,
    edited_clusters,
    edited_from_result,
    edited_table,
    group_name,
    merge,
    move,
    rename,
    rows_of,
    split,
    split_cluster,
    tag,
    texts_of_rows,
    tree_level,
    tree_merges,
    untag,
)
from pipeline.io import csv_bytes
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


def test_a_merge_scores_the_merged_cluster_alone_and_the_others_keep_the_runs_summary(result, monkeypatch):
    """Choosing keywords and examples for every cluster cost 0.2 s of each merge at 100,000 texts;
    the merged one is the only one shown from a new summary."""
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    monkeypatch.setattr(edits_module, "_SUMMARIES", {})
    picked = count_calls(monkeypatch, label_stage, "_pick_keywords")
    examples = count_calls(monkeypatch, label_stage, "representatives")
    edited = apply_edits(labels, names, [merge(labels, names, [0, 2], "Money and praise", corpus)], corpus)
    summary = edited_clusters(result, edited).set_index("id")
    assert len(picked) == len(examples) == 1  # the merged cluster's
    before = result.clusters().set_index("id")
    heads = {before.loc[c, "keywords"].split(", ")[0] for c in summary.index if c not in (-1, 0)}
    assert summary.loc[0, "keywords"].split(", ")[0] not in heads or len(heads) == 0


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


def test_the_edited_cluster_table_does_not_build_the_cluster_tree(result, monkeypatch):
    """The page's cluster table needs keywords and examples, not parent ids: building the tree
    (Ward over every embedding) for it cost 0.3-1.3 s of every slider step at 100,000 texts."""
    import pipeline.result as result_module

    def no_tree(*args, **kwargs):
        raise AssertionError("the cluster tree was built")

    fresh = dataclasses.replace(result, keys={})  # no tree kept for it in this process
    monkeypatch.setattr(result_module, "cluster_tree", no_tree)
    labels, names, corpus = result.clustering.labels, names_of(result), corpus_of(result)
    edited = edited_from_result(fresh, [merge(labels, names, [0, 1], "Both", corpus)])
    summary = edited_clusters(fresh, edited)
    assert "Both" in summary["label"].tolist() and "parent_id" not in summary.columns
    assert "parent_id" not in fresh.clusters(parents=False).columns
    with pytest.raises(AssertionError, match="tree was built"):
        fresh.clusters()  # the full table (the CLI's clusters file) still carries parent ids


# --- moves, tags and splits ----------------------------------------------------------------------
# A table with repeated texts (text 0 on three rows, text 1 on two) and an input column named
# "tags", clustered twice: with the default settings, and again with k-means (a re-run with other
# settings on the same corpus).


@pytest.fixture(scope="module")
def rows_table():
    texts, _ = topic_texts()
    comments = [*texts, texts[0], texts[0], texts[1], "", None]
    return Table.from_frame(pd.DataFrame({"comment": comments, "tags": ["from the input"] * len(comments)}))


@pytest.fixture(scope="module")
def rows_result(rows_table, run_cache):
    run, _ = run_collect(rows_table, config_for(), run_cache, FakeEmbedder())
    assert run.n_clusters == 4 and run.corpus.n_texts == 120 and run.corpus.n_rows == 125
    assert run.corpus.counts[0] == 3 and run.corpus.counts[1] == 2
    return run


@pytest.fixture(scope="module")
def kmeans_rerun(rows_table, run_cache, rows_result):
    settings = {"cluster.algorithm": "kmeans", "cluster.n_clusters": 4, "cluster.seed": 7}
    run, _ = run_collect(rows_table, config_for(**settings), run_cache, FakeEmbedder())
    assert corpus_of(run) == corpus_of(rows_result)  # the same texts, clustered otherwise
    return run


def unedited(result):
    return edited_from_result(result, [])


def some_of(labels: np.ndarray, cluster: int, n: int) -> list[int]:
    return np.flatnonzero(labels == cluster)[:n].tolist()


def matching_cluster(result_a, cluster: int, result_b) -> int:
    """The cluster of ``result_b`` holding most texts of ``cluster`` of ``result_a``."""
    labels = result_b.clustering.labels[result_a.clustering.labels == cluster]
    return int(np.bincount(labels[labels >= 0]).argmax())


def test_the_rows_of_a_selection_become_its_distinct_texts_and_their_rows_are_counted(rows_result):
    picked = texts_of_rows(rows_result, [0, 120, 121, 122, 123, 124])  # text 0 three times, text 1, none
    assert picked.tolist() == [0, 1]
    assert rows_of(rows_result.corpus.counts, picked) == 5  # every row with those texts


def test_a_move_takes_every_row_of_its_texts_to_the_target_cluster(rows_result):
    start = unedited(rows_result)
    labels, names, corpus = start.labels, start.names, corpus_of(rows_result)
    source = int(labels[0])
    target = next(c for c in range(4) if c != source)
    moved = [0, *[i for i in some_of(labels, source, 5) if i > 1][:2]]  # text 0 (three rows), two more
    edit = move(labels, names, moved, target, corpus, rows_result.corpus.counts)
    assert edit.op == "move" and edit.target == "cluster" and edit.texts == tuple(sorted(moved))
    assert edit.groups == (tuple(np.flatnonzero(labels == target).tolist()),) and edit.was == (names[source],)
    assert edit.describe() == f"move 3 texts (5 rows) to '{names[target]}'"
    edited = edited_from_result(rows_result, [edit])
    (outcome,) = edited.outcomes
    assert outcome.applied and outcome.message == f"applied: move 3 texts (5 rows) to '{names[target]}'"
    assert (edited.labels[moved] == target).all() and edited.names[target] == names[target]
    table = edited_table(rows_result, edited)
    assert (table.loc[[0, 120, 121], "cluster_id"] == target).all()  # every row of text 0
    assert (table.loc[[0, 120, 121], "cluster_label"] == names[target]).all()
    summary = edited_clusters(rows_result, edited).set_index("id")
    before = rows_result.clusters().set_index("id")
    assert summary.loc[target, "size"] == before.loc[target, "size"] + 5
    assert summary.loc[source, "size"] == before.loc[source, "size"] - 5
    assert summary.loc[target, "merged_from"] == "" and summary["size"].sum() == before["size"].sum()
    assert current_ids(rows_result, edited) == {c: c for c in range(4)}  # most texts stayed


def test_a_move_to_a_new_cluster_creates_it_under_an_id_no_cluster_had(rows_result):
    start = unedited(rows_result)
    labels, names, corpus, counts = (
        start.labels,
        start.names,
        corpus_of(rows_result),
        rows_result.corpus.counts,
    )
    texts = some_of(labels, 2, 4)
    first = move(labels, names, texts, "  Escalations\n", corpus, counts)
    assert first.target == "new" and first.label == "Escalations" and first.groups == ()
    assert first.describe() == "move 4 texts (4 rows) to a new cluster 'Escalations'"
    merged = merge(labels, names, [1, 3], "One and three", corpus)  # id 3 is free after it
    second = move(labels, names, some_of(labels, 0, 2), "Later", corpus, counts)
    edited = edited_from_result(rows_result, [first, merged, second])
    assert [o.applied for o in edited.outcomes] == [True, True, True]
    assert edited.names[4] == "Escalations" and edited.names[5] == "Later" and 3 not in edited.names
    assert (edited.labels[texts] == 4).all()
    assert edited_from_result(rows_result, [first, merged, second]).names == edited.names  # deterministic
    summary = clusters_with_parents(rows_result, edited, edited_clusters(rows_result, edited)).set_index("id")
    assert summary.loc[4, "label"] == "Escalations" and summary.loc[4, "size"] == 4
    assert summary.loc[4, "keywords"]  # scored as the label stage scores any cluster
    parents = rows_result.clusters().set_index("id")["parent_id"]
    assert summary.loc[4, "parent_id"] == parents.loc[2]  # beside the cluster its texts came from
    groups = tree_level(rows_result, edited, 1)
    assert sorted(c for g in groups for c in g) == sorted(set(edited.labels.tolist()) - {-1})


def test_texts_moved_to_the_unclustered_and_back_out_of_it(rows_result):
    start = unedited(rows_result)
    labels, names, corpus, counts = (
        start.labels,
        start.names,
        corpus_of(rows_result),
        rows_result.corpus.counts,
    )
    texts = some_of(labels, 1, 3)
    out = move(labels, names, texts, UNCLUSTERED, corpus, counts)
    assert out.target == "unclustered" and out.describe() == f"move 3 texts (3 rows) to '{NOISE_LABEL}'"
    after = apply_edits(labels, names, [out], corpus)
    assert (after.labels[texts] == -1).all()
    back = move(after.labels, after.names, texts[:2], 2, corpus, counts)  # texts of the unclustered group
    assert back.was == (NOISE_LABEL,)
    edited = apply_edits(labels, names, [out, back], corpus)
    assert edited.labels[texts].tolist() == [2, 2, -1]
    summary = edited_clusters(rows_result, edited).set_index("id")
    assert summary.loc[-1, "size"] == 1 and summary.loc[-1, "label"] == NOISE_LABEL
    with pytest.raises(InputError, match="all in 'Unclustered' already"):
        move(after.labels, after.names, texts, UNCLUSTERED, corpus, counts)


def test_moving_every_text_out_of_a_cluster_removes_it_and_a_later_rename_of_it_is_stale(rows_result):
    start = unedited(rows_result)
    labels, names, corpus, counts = (
        start.labels,
        start.names,
        corpus_of(rows_result),
        rows_result.corpus.counts,
    )
    renamed = rename(labels, names, 3, "Renamed", corpus)  # made when cluster 3 was there
    emptied = move(labels, names, np.flatnonzero(labels == 3), 0, corpus, counts)
    edited = apply_edits(labels, names, [emptied, renamed], corpus)
    assert 3 not in edited.labels and 3 not in edited.names
    assert 3 not in edited_clusters(rows_result, edited)["id"].tolist()
    ok, stale = edited.outcomes
    assert ok.applied and not stale.applied
    assert stale.message.startswith(f"no longer applies: rename '{names[3]}' to 'Renamed' (no cluster")
    with pytest.raises(InputError, match="there is no cluster 3 to rename now"):
        rename(edited.labels, edited.names, 3, "Again")
    with pytest.raises(InputError, match="there is no cluster 3 to move texts to now"):
        move(edited.labels, edited.names, [0], 3, corpus, counts)  # a move into a cluster now gone


def test_impossible_moves_are_refused_with_a_clear_message(rows_result):
    start = unedited(rows_result)
    labels, names, counts = start.labels, start.names, rows_result.corpus.counts
    with pytest.raises(InputError, match="the selection is empty"):
        move(labels, names, [], 1, counts=counts)
    with pytest.raises(InputError, match="text 999 is not one of the 120 distinct texts"):
        move(labels, names, [1, 999], 1, counts=counts)
    with pytest.raises(InputError, match="there is no cluster 9"):
        move(labels, names, [1], 9, counts=counts)
    inside = some_of(labels, 2, 2)
    with pytest.raises(InputError, match=f"all in '{names[2]}' already"):
        move(labels, names, inside, 2, counts=counts)
    with pytest.raises(InputError, match="cannot be empty"):
        move(labels, names, inside, "  ", counts=counts)


def test_a_move_follows_its_target_into_a_rerun_with_other_settings(rows_result, kmeans_rerun):
    start = unedited(rows_result)
    labels, names, corpus, counts = (
        start.labels,
        start.names,
        corpus_of(rows_result),
        rows_result.corpus.counts,
    )
    texts = some_of(labels, 1, 3)
    to_zero = move(labels, names, texts, 0, corpus, counts)
    to_new = move(labels, names, some_of(labels, 2, 2), "Fresh", corpus, counts)
    edited = edited_from_result(kmeans_rerun, [to_zero, to_new])
    assert all(o.applied for o in edited.outcomes)
    target = matching_cluster(rows_result, 0, kmeans_rerun)
    assert (edited.labels[texts] == target).all()
    assert edited.names[target] == kmeans_rerun.labels.label_of()[target]  # a move renames nothing
    fresh = _next_id_of(kmeans_rerun)
    assert edited.names[fresh] == "Fresh" and (edited.labels[list(to_new.texts)] == fresh).all()


def _next_id_of(result) -> int:
    return max(result.labels.label_of()) + 1


def test_a_move_whose_target_is_gone_is_stale_and_moves_nothing(rows_result):
    start = unedited(rows_result)
    labels, names, corpus, counts = (
        start.labels,
        start.names,
        corpus_of(rows_result),
        rows_result.corpus.counts,
    )
    texts = some_of(labels, 1, 12)
    edit = move(labels, names, texts, 0, corpus, counts)
    rerun = labels.copy()
    members = np.flatnonzero(labels == 0)
    rerun[members[: int(len(members) * 0.6)]] = 2  # most of the target went elsewhere
    edited = apply_edits(rerun, {c: f"new {c}" for c in range(4)}, [edit], corpus)
    (outcome,) = edited.stale
    share = int(100 * (len(members) - int(len(members) * 0.6)) / len(members))
    assert outcome.message == (
        f"no longer applies: move 12 texts (12 rows) to '{names[0]}' "
        f"(that cluster is gone: at best {share}% of its texts in common)"
    )
    np.testing.assert_array_equal(edited.labels, rerun)  # not applied in part


def test_a_move_matches_its_target_without_the_moved_texts_and_says_when_approximately(rows_result):
    start = unedited(rows_result)
    labels, names, corpus, counts = (
        start.labels,
        start.names,
        corpus_of(rows_result),
        rows_result.corpus.counts,
    )
    texts = some_of(labels, 1, 20)  # as many as a third of the target's own texts
    edit = move(labels, names, texts, 0, corpus, counts)
    already = labels.copy()
    already[texts] = 0  # a re-run put them there itself: still exactly the same target
    assert apply_edits(already, names, [edit], corpus).outcomes[0].message.startswith("applied: ")
    fewer = labels.copy()
    members = np.flatnonzero(labels == 0)
    fewer[members[:2]] = 3  # the target lost two of its texts
    (outcome,) = apply_edits(fewer, names, [edit], corpus).outcomes
    share = int(100 * (len(members) - 2) / len(members))
    assert outcome.applied and outcome.approximate
    assert outcome.message == (
        f"applied (matched approximately: {share}% of texts in common): {edit.describe()}"
    )


def test_tags_go_to_every_row_of_their_texts_and_are_exported_and_counted(rows_result):
    start = unedited(rows_result)
    labels, corpus, counts = start.labels, corpus_of(rows_result), rows_result.corpus.counts
    urgent = tag([0, 5], "  urgent ", corpus, counts)
    assert (
        urgent.op == "tag"
        and urgent.label == "urgent"
        and urgent.describe() == "tag 2 texts (4 rows) 'urgent'"
    )
    refund = tag([0], "refund, late", corpus, counts)  # a comma is fine: CSV quotes it
    again = tag([5], "urgent", corpus, counts)
    edited = edited_from_result(rows_result, [urgent, refund, again])
    assert [o.message for o in edited.outcomes][0] == "applied: tag 2 texts (4 rows) 'urgent'"
    assert edited.tags == {0: ("urgent", "refund, late"), 5: ("urgent",)}  # no tag twice
    assert edited.tag_names() == ["refund, late", "urgent"] and edited.tagged("urgent").tolist() == [0, 5]
    np.testing.assert_array_equal(edited.labels, labels)  # tags move nothing
    table = edited_table(rows_result, edited)
    assert (table.loc[[0, 120, 121], "tags"] == "urgent; refund, late").all()
    assert table.loc[5, "tags"] == "urgent" and table.loc[[1, 123, 124], "tags"].tolist() == ["", "", ""]
    assert (table["tags_input"] == "from the input").all()  # the input's own column is kept
    read = pd.read_csv(io.BytesIO(csv_bytes(table)), keep_default_na=False)
    assert read.loc[0, "tags"] == "urgent; refund, late"
    summary = edited_clusters(rows_result, edited).set_index("id")
    both = labels[0] == labels[5]
    expected = "urgent: 4; refund, late: 3" if both else "refund, late: 3; urgent: 3"
    assert summary.loc[labels[0], "tags"] == expected
    assert (summary.drop(index=list({int(labels[0]), int(labels[5])}))["tags"] == "").all()


def test_untag_takes_a_tag_off_and_is_stale_when_no_text_carries_it(rows_result):
    corpus, counts = corpus_of(rows_result), rows_result.corpus.counts
    added = tag([0, 5], "urgent", corpus, counts)
    removed = untag([0], "urgent", corpus, counts)
    assert removed.describe() == "remove the tag 'urgent' from 1 text (3 rows)"
    edited = edited_from_result(rows_result, [added, removed])
    assert edited.tags == {5: ("urgent",)} and all(o.applied for o in edited.outcomes)
    (outcome,) = edited_from_result(rows_result, [removed]).outcomes
    assert outcome.message == (
        "no longer applies: remove the tag 'urgent' from 1 text (3 rows) (none of its texts carries that tag now)"
    )


def test_tags_apply_after_a_rerun_to_the_texts_that_still_exist(rows_result, kmeans_rerun):
    corpus, counts = corpus_of(rows_result), rows_result.corpus.counts
    edits = [tag([0, 5], "urgent", corpus, counts)]
    edited = edited_from_result(kmeans_rerun, edits)
    assert edited.outcomes[0].message == "applied: tag 2 texts (4 rows) 'urgent'"
    assert edited.tags == {0: ("urgent",), 5: ("urgent",)}
    # a log of unknown corpus (older) with an index past this corpus: the rest still applies
    beyond = Edit("tag", (), "urgent", texts=(5, 500), rows=2)
    (outcome,) = apply_edits(kmeans_rerun.clustering.labels, {}, [beyond]).outcomes
    assert outcome.message == "applied (1 text of it not in the data now): tag 2 texts (2 rows) 'urgent'"
    elsewhere = Edit("tag", (), "urgent", corpus="another text column", texts=(5,))
    assert "made on other texts" in edited_from_result(kmeans_rerun, [elsewhere]).outcomes[0].message


def test_bad_tags_are_refused_and_a_formula_is_neutralised_in_the_export(rows_result):
    corpus, counts = corpus_of(rows_result), rows_result.corpus.counts
    for bad in ("", "  ", "\n\t"):
        with pytest.raises(InputError, match="a tag cannot be empty"):
            tag([0], bad, corpus, counts)
    with pytest.raises(InputError, match="cannot contain ';'") as refused:
        tag([0], "refund; urgent", corpus, counts)
    assert "add two tags" in refused.value.hint
    assert clean_tag("a\nb") == "a b" and len(clean_tag("x" * 500)) == MAX_TAG
    with pytest.raises(InputError, match="the selection is empty"):
        tag([], "x", corpus, counts)
    formula = '=HYPERLINK("http://evil.example","click")'
    edited = edited_from_result(
        rows_result, [tag([0], formula, corpus, counts), tag([5], "+1 urgent", corpus, counts)]
    )
    table = edited_table(rows_result, edited)
    assert table.loc[0, "tags"] == formula  # kept as typed in the table itself
    exported = pd.read_csv(io.BytesIO(csv_bytes(table)), keep_default_na=False)
    assert exported.loc[0, "tags"] == "'" + formula and exported.loc[5, "tags"] == "'+1 urgent"
    summary = edited_clusters(rows_result, edited)
    exported = pd.read_csv(io.BytesIO(csv_bytes(summary)), keep_default_na=False)
    assert (exported["tags"].str.startswith("=")).sum() == 0


def test_a_split_undoes_a_merge_and_its_pieces_get_keyword_labels(rows_result, monkeypatch):
    start = unedited(rows_result)
    labels, names, corpus = start.labels, start.names, corpus_of(rows_result)
    merged = edited_from_result(rows_result, [merge(labels, names, [1, 3], "One and three", corpus)])
    pieces = split_cluster(rows_result, merged, 1, n=2)
    assert len(pieces) == 2 and sorted(map(len, pieces), reverse=True) == [len(p) for p in pieces]
    found = sorted(tuple(p.tolist()) for p in pieces)
    assert found == sorted(tuple(np.flatnonzero(labels == c).tolist()) for c in (1, 3))  # the two topics
    edit = split(rows_result, merged, 1, pieces)
    assert (
        edit.op == "split"
        and edit.was == ("One and three",)
        and edit.describe() == "split 'One and three' into 2"
    )
    assert len(set(edit.names)) == 2 and all(edit.names)
    log = [merge(labels, names, [1, 3], "One and three", corpus), edit]
    edited = edited_from_result(rows_result, log)
    assert edited.outcomes[1].message == "applied: split 'One and three' into 2"
    new = _next_id_of(rows_result)
    np.testing.assert_array_equal(edited.labels == 1, np.isin(np.arange(len(labels)), pieces[0]))
    np.testing.assert_array_equal(edited.labels == new, np.isin(np.arange(len(labels)), pieces[1]))
    assert edited.names[1] == edit.names[0] and edited.names[new] == edit.names[1]
    # the labels are the label stage's own for a clustering with these pieces
    own = label_stage.label(
        rows_result.corpus,
        rows_result.embeddings,
        dataclasses.replace(rows_result.clustering, labels=edited.labels),
        rows_result.config.label,
    ).clusters.set_index("id")
    assert own.loc[1, "label"] == edit.names[0] and own.loc[new, "label"] == edit.names[1]
    scorings = count_calls(monkeypatch, label_stage, "summarise")
    summary = edited_clusters(rows_result, edited).set_index("id")
    assert scorings == []  # scored once, when the pieces were named
    assert summary.loc[new, "keywords"] == ", ".join(own.loc[new, "keywords"])
    assert summary.loc[1, "merged_from"] == ""


def test_a_split_with_the_runs_algorithm_finds_the_pieces_itself(rows_result):
    start = unedited(rows_result)
    labels, names, corpus = start.labels, start.names, corpus_of(rows_result)
    merged = edited_from_result(rows_result, [merge(labels, names, [0, 2], "Zero and two", corpus)])
    for pieces in (
        split_cluster(rows_result, merged, 0),
        split_cluster(rows_result, merged, 0, min_cluster_size=5),
    ):
        assert len(pieces) >= 2
        members = np.flatnonzero(merged.labels == 0)
        assert sorted(np.concatenate(pieces).tolist()) == members.tolist()  # every text in one piece
        purity = [np.bincount(labels[p]).max() / len(p) for p in pieces]
        assert min(purity) >= 0.9  # each piece is (mostly) one of the merged topics


def test_impossible_splits_are_refused_with_a_clear_message(rows_result, kmeans_rerun):
    edited = unedited(rows_result)
    name = edited.names[0]
    size = int((edited.labels == 0).sum())
    with pytest.raises(InputError, match="the unclustered group cannot be split"):
        split_cluster(rows_result, edited, -1, n=2)
    with pytest.raises(InputError, match=f"'{name}' cannot be split into 1: it has {size} distinct texts"):
        split_cluster(rows_result, edited, 0, n=1)
    with pytest.raises(InputError, match=f"cannot be split into {size + 1}"):
        split_cluster(rows_result, edited, 0, n=size + 1)
    with pytest.raises(InputError, match="not both"):
        split_cluster(rows_result, edited, 0, n=2, min_cluster_size=5)
    with pytest.raises(InputError, match="min cluster size of 1 cannot split"):
        split_cluster(rows_result, edited, 0, min_cluster_size=1)
    with pytest.raises(InputError, match="there is no cluster 9 to split"):
        split_cluster(rows_result, edited, 9, n=2)
    with pytest.raises(InputError, match=f"'{name}' (did not split|cannot be split this way)"):
        split_cluster(rows_result, edited, 0, min_cluster_size=size)
    kmeans = unedited(kmeans_rerun)
    with pytest.raises(InputError, match="k-means needs to be told into how many pieces"):
        split_cluster(kmeans_rerun, kmeans, 0)
    with pytest.raises(InputError, match="two or more pieces"):
        split(rows_result, edited, 0, [np.flatnonzero(edited.labels == 0)])
    with pytest.raises(InputError, match="the unclustered group cannot be split"):
        split(rows_result, edited, -1, [np.array([0]), np.array([1])])


def test_a_split_reapplies_to_its_cluster_after_a_rerun_and_is_stale_when_it_is_gone(
    rows_result, kmeans_rerun
):
    edited = unedited(rows_result)
    pieces = split_cluster(rows_result, edited, 2, n=2)
    edit = split(rows_result, edited, 2, pieces)
    again = edited_from_result(kmeans_rerun, [edit])
    (outcome,) = again.outcomes
    assert outcome.applied
    target = matching_cluster(rows_result, 2, kmeans_rerun)
    assert again.names[target] == edit.names[0] and again.names[_next_id_of(kmeans_rerun)] == edit.names[1]
    # a re-run that put three texts of another cluster into it: they stay in the first piece
    labels = rows_result.clustering.labels.copy()
    newcomers = some_of(labels, 0, 3)
    labels[newcomers] = 2
    (outcome,) = apply_edits(labels, edited.names, [edit], corpus_of(rows_result)).outcomes
    share = int(100 * int((edited.labels == 2).sum()) / int((labels == 2).sum()))
    assert outcome.message == (
        f"applied (matched approximately: {share}% of texts in common, 3 texts new to it stay in "
        f"'{edit.names[0]}'): split '{edited.names[2]}' into 2"
    )
    # a re-run that scattered it: stale, nothing split
    scattered = rows_result.clustering.labels.copy()
    members = np.flatnonzero(scattered == 2)
    scattered[members[: len(members) // 2]] = 1
    after = apply_edits(scattered, edited.names, [edit], corpus_of(rows_result))
    (stale,) = after.stale
    assert stale.message.startswith(
        f"no longer applies: split '{edited.names[2]}' into 2 (no cluster with those texts now"
    )
    np.testing.assert_array_equal(after.labels, scattered)


def test_every_edit_kind_round_trips_and_undoes_one_step_at_a_time(rows_result):
    start = unedited(rows_result)
    labels, names, corpus, counts = (
        start.labels,
        start.names,
        corpus_of(rows_result),
        rows_result.corpus.counts,
    )
    moved = move(labels, names, some_of(labels, 1, 2), 0, corpus, counts)
    tagged = tag([0], "urgent", corpus, counts)
    pieces = split_cluster(rows_result, start, 2, n=2)
    split_edit = split(rows_result, start, 2, pieces)
    for edit in (moved, tagged, untag([0], "urgent", corpus, counts), split_edit):
        assert Edit.from_dict(edit.to_dict()) == edit
    assert set(rename(labels, names, 0, "A", corpus).to_dict()) == {"op", "groups", "label", "was", "corpus"}
    state = DatasetState(("comment",)).with_edits([moved]).with_edits([tagged]).with_edits([split_edit])
    state = DatasetState.from_dict(state.to_dict())
    full = edited_from_result(rows_result, list(state.edits))
    assert all(o.applied for o in full.outcomes) and full.tags == {0: ("urgent",)}
    undone = edited_from_result(rows_result, list(state.undo().edits))  # the split is taken back
    assert len(set(undone.labels.tolist())) == len(set(full.labels.tolist())) - 1
    without_tag = edited_from_result(rows_result, list(state.remove_step(1).edits))
    assert without_tag.tags == {} and np.array_equal(without_tag.labels, full.labels)
    without_move = edited_from_result(rows_result, list(state.remove_step(0).edits))
    assert (without_move.labels[list(moved.texts)] == 1).all()
    back = state.remove_step(0).redo()
    assert back.edits == state.edits


def test_an_edit_of_a_kind_this_version_does_not_know_is_reported_not_applied(rows_result):
    newer = Edit.from_dict({"op": "recolour", "groups": [], "label": "blue", "texts": [1, 2]})
    edited = edited_from_result(rows_result, [newer])
    assert edited.outcomes[0].message == (
        "no longer applies: recolour 'blue' (an edit this version of Clusterlab does not know)"
    )


def test_id_pairs_are_counted_as_numpys_unique_over_stacked_rows_counts_them():
    """edits._pairs replaces np.unique(np.stack([a, b]), axis=1, return_counts=True) (0.1 s on
    100,000 texts, twice on every edit): same pairs, same order, same counts, unclustered included."""
    from pipeline.edits import _pairs

    rng = np.random.default_rng(4)
    for n in (1, 7, 5_000):
        first, second = rng.integers(-1, 40, n), rng.integers(-1, 9, n)
        pairs, counts = _pairs(first, second)
        expected, expected_counts = np.unique(np.stack([first, second]), axis=1, return_counts=True)
        np.testing.assert_array_equal(pairs, expected)
        np.testing.assert_array_equal(counts, expected_counts)
    empty, none = _pairs(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    assert empty.shape == (2, 0) and len(none) == 0
