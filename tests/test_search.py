"""Search by words and by meaning (pipeline/search.py): what a user sees, hostile input first."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from pipeline import InputError, Runtime, Table, search
from pipeline.bench_search import synthetic_result
from pipeline.edits import apply_edits, merge
from tests.conftest import FakeEmbedder, config_for, run_collect, topic_texts

DECLINED = "my card was declined"
HOSTILE_HTML = "<script>alert('card')</script> <b>bold</b>"
HOSTILE_FORMULA = '=HYPERLINK("http://x","card") +cmd|\' /C calc\'!A0'
EXTRA = [
    DECLINED,
    DECLINED,
    DECLINED,
    "Card declined at the shop",
    "new cards please",
    "discard the old one",
    "card_number is wrong",
    "the café card was refused",
    HOSTILE_HTML,
    HOSTILE_FORMULA,
    "",
    None,
]


@pytest.fixture(scope="module")
def embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture(scope="module")
def result(tmp_path_factory, embedder):
    """Four topics of 30 texts (tests/conftest.py) and the EXTRA rows at the end; an ``id``
    column, a ``score`` column of numbers with missing values and a ``note`` column."""
    texts, _ = topic_texts()
    comments = [*texts, *EXTRA]
    n = len(comments)
    frame = pd.DataFrame(
        {
            "id": range(1, n + 1),
            "comment": comments,
            "score": [np.nan if i % 10 == 0 else float(i % 5) for i in range(n)],
            "note": ["urgent" if i % 7 == 0 or i >= n - 2 else None for i in range(n)],
        }
    )
    config = config_for(**{"stages.reduce": False})  # no UMAP: search reads no layout
    run, _ = run_collect(Table.from_frame(frame), config, tmp_path_factory.mktemp("cache"), embedder)
    return run


def rows_of(result, text: str) -> list[int]:
    return [i for i, t in enumerate(result.corpus.table.frame["comment"]) if t == text]


def texts_of(result, matches) -> set[str]:
    return {str(result.corpus.texts[i]) for i in matches.texts}


# --- hostile input ------------------------------------------------------------------------------


def test_a_bad_regular_expression_is_a_clear_message_not_a_traceback(result):
    with pytest.raises(InputError) as info:
        search.search_words(result, "a(b", regex=True)
    error = info.value
    assert error.stage == "search"
    assert error.message == (
        "the pattern 'a(b' is not a valid regular expression: missing ), unterminated subpattern at position 1"
    )
    assert error.hint == "turn off 'Regular expression' to search for the text as typed, or fix the pattern"
    # the same text searched as typed finds nothing, and says nothing is wrong
    assert len(search.search_words(result, "a(b")) == 0


def test_an_unknown_column_names_the_columns(result):
    with pytest.raises(InputError) as info:
        search.search_words(result, "card", column="commment")
    assert "there is no column 'commment' to search" in info.value.message
    assert "'id', 'comment', 'score', 'note'" in info.value.message


@pytest.mark.parametrize("query", ["", "   ", "\u200b"])
def test_an_empty_search_is_refused(result, embedder, query):
    with pytest.raises(InputError, match="the search is empty"):
        search.search_words(result, query)
    with pytest.raises(InputError, match="the search is empty"):
        search.search_meaning(result, query, embedder)


def test_an_overlong_search_is_refused(result):
    with pytest.raises(InputError, match="at most 1,000"):
        search.search_words(result, "a" * 5000, regex=True)


@pytest.fixture(scope="module")
def bomb():
    """100,000 distinct texts of 40 a's then 'b': (a+)+$ and its kind backtrack for ever on them."""
    return synthetic_result([f"{'a' * 40}b {i}" for i in range(100_000)], "random", dim=4)


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(a|aa)+$", r"(?=a)(a|aa)+$", r"(a+)+\1$"])
def test_a_regex_bomb_answers_or_stops_within_seconds(bomb, pattern):
    started = time.monotonic()
    try:
        found = search.search_words(bomb, pattern, regex=True)
        assert len(found) == 0
    except InputError as exc:
        assert exc.message == f"the pattern {pattern!r} took too long and was stopped"
        assert "nested repeats such as (a+)+" in exc.hint
    assert time.monotonic() - started < 8  # generous: CPU time is what is capped, the machine is shared


def test_hostile_texts_come_back_as_data_unchanged(result):
    edited = apply_edits(result.clustering.labels, result.labels.label_of(), [])
    for query, text in (("<script>", HOSTILE_HTML), ("HYPERLINK", HOSTILE_FORMULA)):
        found = search.search_words(result, query)
        table = search.matches_table(result, found, edited.labels, edited.names)
        assert table["text"].tolist() == [text]
        assert table["row"].tolist() == rows_of(result, text)


# --- words --------------------------------------------------------------------------------------


def test_case_is_ignored_unless_asked(result):
    assert {DECLINED, "Card declined at the shop"} <= texts_of(result, search.search_words(result, "CARD"))
    assert texts_of(result, search.search_words(result, "Card", case=True)) == {"Card declined at the shop"}


def test_a_whole_word_is_not_part_of_a_longer_word(result):
    whole = texts_of(result, search.search_words(result, "card", whole_word=True))
    assert {DECLINED, "Card declined at the shop", "the café card was refused"} <= whole
    assert not whole & {"new cards please", "discard the old one", "card_number is wrong"}
    assert {"new cards please", "discard the old one"} <= texts_of(
        result, search.search_words(result, "card")
    )
    # a letter outside ASCII is a letter: "café" is a word, "caf" is not one
    assert texts_of(result, search.search_words(result, "café", whole_word=True)) == {
        "the café card was refused"
    }
    assert len(search.search_words(result, "caf", whole_word=True)) == 0


def test_regular_expressions_mean_what_they_mean_in_python(result):
    # "card_number": no word boundary before the underscore
    assert texts_of(result, search.search_words(result, r"^card\b", regex=True)) == {
        "Card declined at the shop"
    }
    # a lookbehind (Python's engine) and a Unicode \w (café) give Python's answers
    assert DECLINED not in texts_of(result, search.search_words(result, r"(?<!my )card", regex=True))
    assert texts_of(result, search.search_words(result, r"caf\w\b", regex=True)) == {
        "the café card was refused"
    }
    assert texts_of(result, search.search_words(result, r"car[dt]s?", regex=True, whole_word=True)) >= {
        "new cards please",
        DECLINED,
    }


def test_rows_with_the_same_text_all_match(result):
    found = search.search_words(result, "was declined")
    assert found.rows.tolist() == rows_of(result, DECLINED)
    assert len(found.texts) == 1 and found.row_texts.tolist() == [found.texts[0]] * 3
    assert found.scores.tolist() == [1.0, 1.0, 1.0] and found.mode == "words"


def test_another_column_is_searched_as_text_and_missing_values_never_match(result):
    frame = result.corpus.table.frame
    found = search.search_words(result, "7", column="id", whole_word=True)
    assert found.rows.tolist() == [6]  # id 7, not 17 or 70
    assert search.search_words(result, "7", column="id").rows.tolist() == [
        i for i, v in enumerate(frame["id"]) if "7" in str(v)
    ]
    assert len(search.search_words(result, "nan", column="score")) == 0
    assert len(search.search_words(result, "None", column="note")) == 0
    urgent = search.search_words(result, "URGENT", column="note")
    assert urgent.rows.tolist() == [i for i in range(len(frame)) if i % 7 == 0 or i >= len(frame) - 2]
    # the empty and missing comments match there too: they have no text (and no cluster)
    table = search.matches_table(result, urgent, result.clustering.labels, result.labels.label_of())
    assert set(table["value"]) == {"urgent"} and urgent.column == "note"
    no_text = urgent.row_texts < 0
    assert no_text.any() and table["cluster_id"].isna().tolist() == no_text.tolist()


# --- meaning ------------------------------------------------------------------------------------


def test_meaning_search_ranks_the_nearest_text_first(result, embedder):
    found = search.search_meaning(result, "refund charged invoice price", embedder, top_k=10)
    best = str(result.corpus.texts[found.texts[0]])
    assert len(set(best.split()) & {"refund", "charged", "invoice", "price"}) >= 3
    assert found.mode == "meaning" and len(found.texts) == 10 and found.truncated
    assert np.all(np.diff(found.text_scores) <= 0) and found.text_scores[0] > 0.5
    assert found.scores[0] == found.text_scores[0]
    # every row of the three declined ones, with one score
    declined = search.search_meaning(result, DECLINED, embedder, top_k=1)
    assert declined.rows.tolist() == rows_of(result, DECLINED)
    assert np.allclose(declined.scores, 1.0, atol=1e-5)
    assert len(search.search_meaning(result, DECLINED, embedder, min_score=0.99)) == 3


def test_a_repeated_query_is_not_embedded_again(result):
    embedder = FakeEmbedder()
    first = search.search_meaning(result, "locked account  email", embedder)
    again = search.search_meaning(result, "locked account email", embedder, top_k=5)  # the same, cleaned
    assert embedder.calls == [1]
    assert again.texts.tolist() == first.texts[:5].tolist()


def test_a_query_from_another_model_is_refused(result):
    with pytest.raises(InputError) as info:
        search.search_meaning(result, "card", FakeEmbedder(name="other"))
    message = info.value.message
    assert "embedded by fake:fake-words:32, but the query would be embedded by fake:other:32" in message
    assert search.run_embedder(result, Runtime(embedder=FakeEmbedder())).identity == "fake:fake-words:32"
    with pytest.raises(InputError, match="but the query would be embedded by torch:"):
        search.run_embedder(result)  # the run's settings name the default model; this result was faked


def test_texts_like_this_one_leave_the_text_itself_out(result):
    index = int(result.corpus.row_to_unique[rows_of(result, DECLINED)[0]])
    found = search.similar_to(result, index, top_k=5)
    assert index not in found.texts.tolist() and len(found.texts) == 5
    assert not set(found.rows.tolist()) & set(rows_of(result, DECLINED))
    assert found.query == DECLINED and found.mode == "similar"
    by_row = search.similar_to_row(result, rows_of(result, DECLINED)[1], top_k=5)
    assert by_row.texts.tolist() == found.texts.tolist()
    with pytest.raises(InputError, match=r"row \d+ has no text to compare \(missing\)"):
        search.similar_to_row(result, len(result.corpus.table.frame) - 1)


# --- per cluster --------------------------------------------------------------------------------


def test_per_cluster_counts_rows_and_follows_a_merge(result):
    labels, names = result.clustering.labels, result.labels.label_of()
    found = search.search_words(result, "card")
    before = search.per_cluster(found, labels, names, result.corpus.counts)
    assert before["matches"].sum() == len(found)
    assert list(before["matches"]) == sorted(before["matches"], reverse=True)
    # merge the two clusters with most matches (or the one with matches and another)
    found_in = [int(c) for c in before["cluster_id"].dropna() if c >= 0]
    pair = (found_in + [c for c in sorted(set(labels.tolist())) if c >= 0 and c not in found_in])[:2]
    edited = apply_edits(labels, names, [merge(labels, names, pair, "card trouble")])
    after = search.per_cluster(found, edited.labels, edited.names, result.corpus.counts)
    row = after[after["cluster_label"] == "card trouble"].iloc[0]
    merged_rows = int(before.loc[before["cluster_id"].isin(pair), "matches"].sum())
    assert merged_rows > 0 and row["matches"] == merged_rows
    assert after["matches"].sum() == len(found) and len(after) == len(before) - (len(found_in) > 1)
    size = int(result.corpus.counts[np.isin(labels, pair)].sum())
    assert row["share_of_cluster"] == pytest.approx(merged_rows / size)


def summary(*groups: tuple[int | None, str, int]) -> str:
    frame = pd.DataFrame(groups, columns=["cluster_id", "cluster_label", "matches"])
    frame["cluster_id"] = frame["cluster_id"].astype("Int64")
    return search.summary_line(frame)


def test_the_summary_sentence():
    assert summary() == "No matches"
    assert summary((3, "card declined", 1)) == "1 match, all in 'card declined'"
    assert summary((3, "card declined", 5)) == "5 matches, all in 'card declined'"
    assert summary((3, "card declined", 30), (1, "lost card", 8)) == (
        "38 matches: 30 in 'card declined' and 8 in 'lost card'"
    )
    assert summary((3, "a", 3), (1, "b", 2), (-1, "Unclustered", 1)) == (
        "6 matches: 3 in 'a', 2 in 'b' and 1 in 'Unclustered'"
    )
    assert summary((3, "card declined", 30), (1, "lost card", 8), (0, "x", 3), (5, "y", 1)) == (
        "42 matches: 30 in 'card declined', 8 in 'lost card' and 4 in 2 other clusters"
    )
    assert summary((3, "card declined", 1200), (None, "rows without text", 2)) == (
        "1,202 matches: 1,200 in 'card declined' and 2 in rows without text"
    )


def test_the_summary_of_a_real_search(result):
    found = search.search_words(result, "was declined")
    frame = search.per_cluster(
        found, result.clustering.labels, result.labels.label_of(), result.corpus.counts
    )
    label = result.labels.label_of()[int(result.clustering.labels[found.texts[0]])]
    assert search.summary_line(frame) == f"3 matches, all in '{label}'"
    mask = found.text_mask(result.corpus.n_texts)
    assert mask.sum() == 1 and mask[found.texts[0]]


def test_cluster_centres_are_the_row_weighted_mean_directions_and_rank_neighbours(result):
    labels = result.clustering.labels
    ids, centres = search.cluster_centroids(result, labels)
    vectors, counts = np.asarray(result.embeddings.vectors, dtype=np.float64), result.corpus.counts
    assert ids.tolist() == sorted(set(labels.tolist()) - {-1})
    for cid, centre in zip(ids, centres, strict=True):  # as written out by hand
        members = labels == cid
        mean = (vectors[members] * counts[members, None]).sum(axis=0)
        np.testing.assert_allclose(centre, mean / np.linalg.norm(mean), atol=1e-6)
    names = {int(c): f"c{c}" for c in ids}
    near = search.nearest_clusters((ids, centres), int(ids[0]), names)
    assert int(ids[0]) not in near["cluster_id"].tolist() and near["similarity"].is_monotonic_decreasing
