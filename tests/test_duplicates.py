"""Near-duplicate groups (pipeline/duplicates.py) on small synthetic vectors: what a group is,
the threshold, chains, the representative, the weights that count each group once, and the
hashed search agreeing with the exact one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import InputError, Table
from pipeline.duplicates import (
    BITS,
    MIN_THRESHOLD,
    cached_groups,
    group_weights,
    groups_key,
    near_duplicate_groups,
    tables_for,
)
from tests.conftest import FakeEmbedder, config_for, run_collect, topic_texts


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def at_cosine(base: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at exactly ``cosine`` from the unit vector ``base``."""
    other = rng.standard_normal(base.shape).astype(np.float64)
    other -= other @ base * base
    other /= np.linalg.norm(other)
    return (cosine * base + np.sqrt(1 - cosine**2) * other).astype(np.float32)


def spread(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    """``n`` random unit vectors: in 32 dimensions no two are near-duplicates."""
    return unit(np.random.default_rng(seed).standard_normal((n, dim)))


def test_texts_above_the_threshold_form_a_group_with_its_rows_and_representative():
    rng = np.random.default_rng(1)
    vectors = spread(10)
    vectors[3] = at_cosine(vectors[0].astype(np.float64), 0.97, rng)
    vectors[7] = at_cosine(vectors[0].astype(np.float64), 0.96, rng)
    counts = np.array([1, 1, 1, 4, 1, 1, 1, 1, 1, 1])
    groups = near_duplicate_groups(vectors, counts, threshold=0.95)
    assert groups.n_groups == 1 and groups.method == "exact"
    assert groups.members(0).tolist() == [0, 3, 7]
    assert groups.group.tolist() == [0, -1, -1, 0, -1, -1, -1, 0, -1, -1]
    assert groups.texts.tolist() == [3] and groups.rows.tolist() == [6]
    assert groups.representative.tolist() == [3]  # the text with most rows
    assert groups.owner().tolist() == [3, 1, 2, 3, 4, 5, 6, 3, 8, 9]
    table = groups.table(np.array([f"text {i}" for i in range(10)]))
    assert table.to_dict("records") == [
        {"group": 0, "representative": "text 3", "texts": 3, "rows": 6, "examples": "text 0 | text 7"}
    ]


def test_the_threshold_decides_and_a_chain_is_one_group():
    rng = np.random.default_rng(2)
    vectors = spread(6).astype(np.float64)
    vectors[1] = at_cosine(vectors[0], 0.96, rng)
    vectors[2] = at_cosine(vectors[1], 0.96, rng)  # b ~ c, and c further from a
    vectors = unit(vectors)
    assert float(vectors[0] @ vectors[2]) < 0.95
    chained = near_duplicate_groups(vectors, np.ones(6, dtype=np.int64), threshold=0.95)
    assert chained.n_groups == 1 and chained.members(0).tolist() == [0, 1, 2]
    strict = near_duplicate_groups(vectors, np.ones(6, dtype=np.int64), threshold=0.97)
    assert strict.n_groups == 0 and (strict.group == -1).all()
    assert strict.table(np.array(["x"] * 6)).empty


def test_exact_duplicates_are_one_text_already_and_no_group():
    """The preprocess stage collapsed exact duplicates: a text on many rows is one vector with a
    count, not a group; only different texts with close vectors are."""
    vectors = spread(5)
    groups = near_duplicate_groups(vectors, np.array([50, 1, 1, 1, 1]))
    assert groups.n_groups == 0
    assert group_weights(groups, np.array([50, 1, 1, 1, 1])).tolist() == [50, 1, 1, 1, 1]


def test_groups_are_numbered_by_rows_and_the_weights_count_each_once():
    rng = np.random.default_rng(3)
    vectors = spread(12).astype(np.float64)
    vectors[5] = at_cosine(vectors[4], 0.99, rng)  # group of texts 4, 5
    vectors[9] = at_cosine(vectors[8], 0.99, rng)  # group of texts 8, 9, 10
    vectors[10] = at_cosine(vectors[8], 0.98, rng)
    vectors = unit(vectors)
    counts = np.array([1, 2, 1, 1, 1, 1, 1, 3, 2, 1, 5, 1])
    groups = near_duplicate_groups(vectors, counts)
    assert groups.n_groups == 2
    assert groups.members(0).tolist() == [8, 9, 10] and groups.rows.tolist() == [8, 2]
    assert groups.representative.tolist() == [10, 4]  # most rows; a tie goes to the first text
    weights = group_weights(groups, counts)
    assert weights.sum() == counts.sum()  # shares and sizes stay in rows
    assert weights.tolist() == [1, 2, 1, 1, 2, 0, 1, 3, 0, 0, 8, 1]
    fitted = np.flatnonzero(weights > 0)
    assert len(fitted) == len(counts) - groups.texts.sum() + groups.n_groups  # one point per group
    assert set(groups.owner()[[4, 5, 8, 9, 10]].tolist()) == {4, 10}


def test_the_hashed_search_finds_the_groups_the_exact_one_finds():
    """Past ``exact_max`` texts the pairs come from random-hyperplane hashing, each checked
    exactly: the same groups here, a group of many copies (one big bucket) among them."""
    rng = np.random.default_rng(4)
    vectors = spread(3000, dim=48, seed=5).astype(np.float64)
    for leader in range(0, 200, 10):  # twenty groups of four
        for k in range(1, 4):
            vectors[leader + k] = at_cosine(vectors[leader], 0.97, rng)
    for k in range(1, 150):  # one text repeated with small changes 150 times: a template
        vectors[1000 + k] = at_cosine(vectors[1000], 0.985, rng)
    vectors = unit(vectors)
    counts = np.ones(len(vectors), dtype=np.int64)
    exact = near_duplicate_groups(vectors, counts, threshold=0.95)
    hashed = near_duplicate_groups(vectors, counts, threshold=0.95, exact_max=0)
    assert exact.method == "exact" and hashed.method == "hashing"
    assert exact.n_groups == 21 and exact.texts.tolist() == [150] + [4] * 20
    np.testing.assert_array_equal(hashed.group, exact.group)
    again = near_duplicate_groups(vectors, counts, threshold=0.95, exact_max=0)
    np.testing.assert_array_equal(again.group, hashed.group)  # seeded: the same every time


def test_the_tables_keep_a_pair_at_the_threshold_found_with_high_probability():
    for threshold in (0.8, 0.9, 0.95, 0.99):
        tables = tables_for(threshold)
        same = (1 - np.arccos(threshold) / np.pi) ** BITS
        assert (1 - same) ** tables <= 0.01 < (1 - same) ** (tables - 1)
    assert tables_for(1.0) == 1


def test_bad_requests_are_refused_plainly():
    vectors = spread(4)
    with pytest.raises(InputError, match=f"outside {MIN_THRESHOLD}..1"):
        near_duplicate_groups(vectors, np.ones(4), threshold=0.5)
    with pytest.raises(InputError, match="at most 3 distinct texts; these data have 4"):
        near_duplicate_groups(vectors, np.ones(4), max_texts=3)
    with pytest.raises(InputError, match="3 row counts for 4 vectors"):
        near_duplicate_groups(vectors, np.ones(3))


def test_a_runs_groups_are_kept_in_its_cache_and_shown_with_their_texts(tmp_path):
    """The fake embedder sums word vectors of the lower-cased words: three spellings of one text
    are three distinct texts with one vector, a near-duplicate group."""
    texts, _ = topic_texts()
    spellings = ["Card declined", "card declined", "CARD DECLINED", "card declined"]  # the last a repeat
    table = Table.from_frame(pd.DataFrame({"comment": [*spellings, *texts]}))
    result, _ = run_collect(table, config_for(), tmp_path / "cache", FakeEmbedder())
    groups, cached = cached_groups(result.corpus, result.embeddings, cache=tmp_path / "cache")
    assert not cached and groups.n_groups == 1
    assert [result.corpus.texts[i] for i in groups.members(0)] == spellings[:3]
    assert groups.rows.tolist() == [4] and groups.texts.tolist() == [3]
    assert result.corpus.texts[groups.representative[0]] == "card declined"  # two rows
    shown = groups.table(result.corpus.texts)
    assert shown.loc[0, "representative"] == "card declined" and shown.loc[0, "rows"] == 4
    again, cached = cached_groups(result.corpus, result.embeddings, cache=tmp_path / "cache")
    assert cached and np.array_equal(again.group, groups.group)
    assert groups_key(result.corpus, result.embeddings, 0.95) != groups_key(
        result.corpus, result.embeddings, 0.9
    )
