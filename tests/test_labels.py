"""Keyword labels: words many of a cluster's texts share, whole words with apostrophes, no stray
letter-digit codes, distinct first keywords, and the label coverage that measures them."""

from __future__ import annotations

import dataclasses
import uuid

import numpy as np
import pandas as pd
import pytest

from pipeline import PipelineConfig, PreprocessParams, terms
from pipeline.label_quality import label_coverage
from pipeline.result import Result
from pipeline.stages.label import distinct_heads
from pipeline.stages.preprocess import preprocess
from pipeline.types import Clustering, Embeddings, Labels, Projection, Table
from tests.conftest import config_for, label_groups, run_collect


def _corpus(texts: list[str]):
    return preprocess(Table.from_frame(pd.DataFrame({"t": texts})), PreprocessParams(text_column="t"))


# --- words -------------------------------------------------------------------------------------


def test_words_with_apostrophes_stay_whole_typographic_ones_too():
    assert terms.tokens("Pudd’nhead Wilson's rock'n'roll") == ["pudd'nhead", "wilson's", "rock'n'roll"]
    assert terms.tokens("l'application, j’ouvre") == ["application", "ouvre"]  # elisions go
    analyzer = terms.Analyzer(terms.stop_words_of("en"), ["en"], 1)
    assert analyzer("don't you’re he'd it's can't won't Pudd'nhead") == ["pudd'nhead"]


def test_a_name_with_an_apostrophe_is_one_keyword():
    texts = [f"Pudd’nhead Wilson calendar entry {w}" for w in ("alpha", "beta", "gamma", "delta")]
    texts += [f"refund for my card {w}" for w in ("today", "again", "please", "now")]
    frame = label_groups(texts, [0] * 4 + [1] * 4)
    words = {w for k in frame.loc[0, "keywords"] for w in k.split()}
    assert "pudd'nhead" in words and not {"pudd", "nhead"} & words


def test_letter_digit_codes_are_dropped_unless_common_in_the_cluster():
    refunds = [f"refund request for order {w}" for w in "abcdefghijkl"]
    refunds[0] += " kaa24242 kaa24242 kaa24242"  # a code in 2 of 12 texts, repeated
    refunds[1] += " kaa24242 kaa24242 a1b2"
    covid = [f"covid19 vaccine appointment {w}" for w in "abcdef"] + [
        f"vaccine booking {w}" for w in "abcdef"
    ]
    frame = label_groups(refunds + covid, [0] * 12 + [1] * 12)
    assert not any(terms.mixes_letters_and_digits(k) for k in frame.loc[0, "keywords"])
    assert any("covid19" in k for k in frame.loc[1, "keywords"])  # in half its texts: kept


# --- which words head a label ------------------------------------------------------------------


def test_a_name_a_few_texts_repeat_does_not_head_the_label_over_a_word_most_share():
    subjects = [f"topic{chr(97 + i)}{chr(97 + j)}" for i in range(26) for j in range(26)]  # once each
    perl = [f"perl {subjects[i]} {subjects[i + 40]}" for i in range(30)]  # "perl" in 30 texts, once
    perl += [f"{subjects[i]} {subjects[i + 40]}" for i in range(30, 37)]
    quotes = [f"larry wall larry wall said {s}" for s in ("hubris", "laziness", "impatience")]
    other = [f"perl script for backups {w}" for w in "abcd"]  # "perl" elsewhere too: lower idf
    other += [f"python script for backups {w}" for w in "efghijkl"]
    texts = perl + quotes * 10 + other  # the name's 3 texts repeated as 30 rows
    frame = label_groups(texts, [0] * 37 + [0] * 30 + [1] * 12)
    keywords = frame.loc[0, "keywords"]
    assert keywords[0] == "perl"
    assert frame.loc[0, "label"].startswith("perl")


def test_two_clusters_are_not_headed_by_the_same_keyword_when_another_is_as_strong():
    scored = {
        -1: [("refund", 9.0)],
        0: [("refund", 1.0), ("card", 0.8)],
        1: [("refund", 1.0), ("bank", 0.4), ("transfer", 0.9)],
        2: [("refund", 1.0), ("late", 0.2)],  # nothing close: it needs "refund" most
        3: [("refund", 1.0), ("delay", 0.1)],  # nothing close either: shares "refund"
    }
    heads = distinct_heads(scored)
    assert heads[0] == ["card", "refund"]
    assert heads[1] == ["transfer", "refund", "bank"]
    assert heads[2] == ["refund", "late"]
    assert heads[3] == ["refund", "delay"]
    assert heads[-1] == ["refund"]  # the unclustered take no head from a cluster


def test_a_cluster_scored_alone_is_headed_apart_from_the_heads_the_others_show():
    scored = {4: [("refund", 1.0), ("card", 0.8), ("late", 0.1)]}
    assert distinct_heads(scored, ["Refund", "bank"])[4] == ["card", "refund", "late"]
    assert distinct_heads(scored, ["bank"])[4] == ["refund", "card", "late"]
    assert distinct_heads({4: [("refund", 1.0), ("late", 0.1)]}, ["refund"])[4] == ["refund", "late"]


def test_labels_of_two_clusters_about_one_word_start_differently():
    cards = [f"refund please, {w} {n}" for n, w in enumerate(["card"] * 5 + ["shop", "store", "cash"])]
    transfers = [f"refund please, {w} {n}" for n, w in enumerate(["transfer"] * 4 + ["bank", "wire"])]
    logins = [f"login password reset {n}" for n in range(30)]
    frame = label_groups(cards + transfers + logins, [0] * 8 + [1] * 6 + [2] * 30)  # "refund" leads 0 and 1
    assert frame.loc[0, "label"] == "refund, card, cash"
    assert frame.loc[1, "label"] == "transfer, refund, bank"  # "transfer" scores nearly as high


# --- label coverage -----------------------------------------------------------------------------


def _result(texts: list[str], groups: list[int], rows: list[tuple]) -> Result:
    corpus = _corpus(texts)
    ids = np.asarray(groups, dtype=np.int64)
    assert corpus.n_texts == len(texts)
    frame = pd.DataFrame(rows, columns=["id", "label", "keywords", "source"])
    n = len(texts)
    return Result(
        config=PipelineConfig(),
        corpus=corpus,
        embeddings=Embeddings(np.eye(n, dtype=np.float32), "test"),
        projection=Projection(np.zeros((n, 2)), np.zeros((n, 2)), "none"),
        clustering=Clustering(ids, ids, np.ones(n, np.float32), "test"),
        labels=Labels(frame),
    )


def test_label_coverage_by_hand():
    texts = [
        "Refund for my card payment",  # cluster 0
        "card payment refund please",
        "refunds not received",
        "my card was charged twice",
        "App crashes on start",  # cluster 1
        "the app crashed",
        "so slow",
        "dark mode please",  # cluster 2 (named by a model)
        "add a dark theme",
        "random words here",  # unclustered
    ]
    result = _result(
        texts,
        [0, 0, 0, 0, 1, 1, 1, 2, 2, -1],
        [
            (0, "refund, card payment", ["refund", "card payment", "charged"], "keywords"),
            (1, "crash, app (2)", ["crash", "app"], "keywords"),
            (2, "Dark theme", ["dark", "mode", "theme", "add"], "llm"),
            (-1, "Unclustered", ["random"], "keywords"),
        ],
    )
    # cluster 0: refund 3/4, card payment (both words) 2/4 -> 0.625
    # cluster 1: crash 2/3, app 2/3 -> 0.667 (the number is no word of the label)
    # cluster 2, a model's label: its first 3 keywords, dark 2/2, mode 1/2, theme 1/2 -> 0.667
    # the unclustered are no cluster: the median of (0.625, 0.667, 0.667)
    assert label_coverage(result) == pytest.approx(2 / 3)


def test_label_coverage_of_a_run_is_a_share(topic_table, cache_dir, fake_embedder):
    result, _ = run_collect(topic_table, config_for(), cache_dir, fake_embedder)
    assert 0.0 < label_coverage(result) <= 1.0


def test_keyword_presence_counts_texts_inside_and_outside_a_cluster():
    from pipeline.label_quality import keyword_presence

    texts = [
        "Refund for my card payment",
        "card payment refund please",
        "refunds not received",
        "my card was charged twice",
        "App crashes on start",
        "the app crashed, no refund",
        "discard the old app",
    ]
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    result = _result(
        texts, labels.tolist(), [(0, "refund", ["refund"], "keywords"), (1, "app", ["app"], "keywords")]
    )
    presence = keyword_presence(result, labels, 0, ["refund", "card payment", "charge"]).set_index("keyword")
    assert presence.loc["refund"].tolist() == [pytest.approx(3 / 4), pytest.approx(1 / 3)]  # "refunds" counts
    assert presence.loc["card payment", "in_cluster"] == pytest.approx(2 / 4)  # both words, either order
    assert presence.loc["charge", "in_cluster"] == pytest.approx(1 / 4)  # "charged" starts with it
    # a word inside another word does not count: "discard" holds no "card"
    assert keyword_presence(result, labels, 1, ["card"]).loc[0, "in_cluster"] == 0.0


def test_keyword_presence_matches_each_word_once_per_corpus_and_samples_only_large_ones(monkeypatch):
    """Reading another cluster (or the same after an edit) matches only words not seen before;
    past MATCH_SAMPLE texts the other clusters are read on a sample, the cluster on its own texts."""
    from pipeline import label_quality

    texts = ["refund my card", "card refund", "refund please", "charged twice", "app crash", "app refund"]
    labels = np.array([0, 0, 0, 1, 2, 2])
    result = _result(texts, labels.tolist(), [(c, "x", ["x"], "keywords") for c in range(3)])
    result = dataclasses.replace(result, keys={"corpus": f"corpus-{uuid.uuid4()}"})  # kept by this key
    matched = []
    real = label_quality._starts_a_word
    monkeypatch.setattr(label_quality, "_starts_a_word", lambda v, w: matched.append(w) or real(v, w))
    first = label_quality.keyword_presence(result, labels, 0, ["refund", "card"])
    assert first.set_index("keyword").loc["refund"].tolist() == [1.0, pytest.approx(1 / 3)]
    merged = np.array([0, 0, 0, 0, 2, 2])  # cluster 1 merged into 0: the same words, nothing matched again
    again = label_quality.keyword_presence(result, merged, 0, ["refund", "card"]).set_index("keyword")
    assert matched == ["refund", "card"] and again.loc["refund"].tolist() == [0.75, 0.5]
    assert label_quality.keyword_presence(result, labels, 2, ["app"]).loc[0].tolist()[1:] == [1.0, 0.0]
    assert matched == ["refund", "card", "app"]

    monkeypatch.setattr(label_quality, "MATCH_SAMPLE", 4)  # a large corpus, in small
    label_quality._SAMPLES.clear()
    label_quality._MATCHES.clear()
    big = label_quality.keyword_presence(result, labels, 0, ["refund"]).set_index("keyword")
    assert big.loc["refund", "in_cluster"] == 1.0  # the cluster's own texts, all 3
    assert 0.0 <= big.loc["refund", "elsewhere"] <= 1.0
