"""preprocess: one column becomes clean, distinct texts; every row keeps its place."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pipeline
from pipeline import InputError, PreprocessParams, Table
from pipeline.context import detached
from pipeline.stages.preprocess import preprocess


def run(texts, column: str = "text", ctx=None, **params):
    frame = (
        texts if isinstance(texts, pd.DataFrame) else pd.DataFrame({"id": range(len(texts)), column: texts})
    )
    return preprocess(
        Table.from_frame(frame, name="t.csv"), PreprocessParams(text_column=column, **params), ctx
    )


def input_error(texts, column: str = "text", **params) -> str:
    with pytest.raises(InputError) as info:
        run(texts, column, **params)
    assert info.value.stage == "preprocess"
    return info.value.user_message()


def test_whitespace_and_unicode_are_normalised():
    corpus = run(
        [
            "  hello\u00a0world  ",  # NBSP, padding
            "zero\u200bwidth\u2060join\ufeff",  # zero-width space, word joiner, BOM
            "ＦＵＬＬ ｗｉｄｔｈ １２３",  # fullwidth letters and digits (NFKC)
            "line one\nline two\r\n\tindented\t\ttabs",
            "soft\u00adhyphen and \u200estray\u200d marks",
        ]
    )
    assert corpus.clean.tolist() == [
        "hello world",
        "zerowidthjoin",
        "FULL width 123",
        "line one line two indented tabs",
        "softhyphen and stray marks",
    ]
    assert corpus.issues.tolist() == [""] * 5


def test_originals_are_kept_next_to_clean_text():
    texts = ["  Padded  ", "ＡＢＣ", "same", "same"]
    corpus = run(texts)
    assert corpus.original.tolist() == texts
    assert corpus.clean.tolist() == ["Padded", "ABC", "same", "same"]
    assert corpus.text_column == "text"
    assert corpus.n_rows == 4


def test_rows_without_text_keep_their_place_with_a_reason():
    corpus = run(["first", None, "", "   \t\n", "\u200b", np.nan, "last"])
    assert corpus.n_rows == 7
    assert corpus.issues.tolist() == ["", "missing", "empty", "empty", "empty", "missing", ""]
    assert corpus.row_to_unique.tolist() == [0, -1, -1, -1, -1, -1, 1]
    assert corpus.texts.tolist() == ["first", "last"]
    assert corpus.clean.tolist() == ["first", "", "", "", "", "", "last"]


def test_too_short_texts_are_flagged():
    corpus = run(["ok", "a longer text", "no"], min_chars=3)
    assert corpus.issues.tolist() == ["too short", "", "too short"]
    assert corpus.texts.tolist() == ["a longer text"]


def test_duplicates_collapse_with_a_mapping_back_to_every_row():
    texts = [
        "refund please",
        "app crashes",
        " refund  please ",
        "refund\u00a0please",
        "App crashes",
        "app crashes",
    ]
    corpus = run(texts)
    assert corpus.texts.tolist() == ["refund please", "app crashes", "App crashes"]
    assert corpus.counts.tolist() == [3, 2, 1]
    assert corpus.row_to_unique.tolist() == [0, 1, 0, 0, 2, 1]
    assert corpus.n_texts == 3
    assert corpus.counts.sum() == corpus.n_rows
    for row, unique in enumerate(corpus.row_to_unique):
        assert corpus.texts[unique] == corpus.clean[row]


def test_long_texts_are_truncated_and_flagged():
    ctx = detached("preprocess")
    words = "word " * 100  # 500 characters
    corpus = run(["short text", words, "x" * 300], ctx=ctx, max_chars=120)
    assert corpus.issues.tolist() == ["", "truncated", "truncated"]
    assert corpus.clean[0] == "short text"
    assert len(corpus.clean[1]) <= 120 and corpus.clean[1] == ("word " * 24).strip()  # cut between words
    assert corpus.clean[2] == "x" * 120  # no space to cut at
    assert corpus.texts.tolist() == ["short text", corpus.clean[1], "x" * 120]
    assert corpus.original[1] == words  # the full text survives
    assert any("2 texts were longer than 120 characters" in w for w in ctx.warnings)


def test_missing_text_column_lists_the_columns():
    frame = pd.DataFrame({"id": [1], "Comment": ["hi"], "date": ["2024-01-01"]})
    message = input_error(frame, column="comment")
    assert "expected a text column named 'comment', found columns: 'id', 'Comment', 'date'" in message
    assert "case-sensitive" in message


def test_no_text_column_chosen():
    message = input_error(pd.DataFrame({"id": [1], "comment": ["hi"]}), column="")
    assert "no text column was chosen" in message
    assert "id, comment" in message


def test_all_texts_empty():
    message = input_error(["", "  ", None, "\u200b"])
    assert "column 'text' has no usable text: 4 rows" in message
    assert "3 empty" in message and "1 missing" in message
    assert "columns: id, text" in message


def test_header_only_table():
    message = input_error(pd.DataFrame({"id": [], "text": []}))
    assert "header but no rows" in message
    assert "What to do: add rows of text" in message


def test_repeated_column_name():
    frame = pd.DataFrame([["a", "b"]], columns=["text", "text"])
    assert "2 columns are named 'text'" in input_error(frame)


def test_mixed_languages_and_emoji_are_kept_intact():
    texts = [
        "Das Produkt ist großartig 👍",
        "这个应用很好用",
        "التطبيق لا يعمل",
        "मुझे यह ऐप पसंद है",
        "Привет, всё работает 🎉",
        "می\u200cخواهم برنامه را ببینم",  # Persian: the zero-width non-joiner is spelling
        "family 👨\u200d👩\u200d👧 and flag 🏳️\u200d🌈 and 👍🏽",  # ZWJ sequences, skin tone
        "café naïve Ελληνικά 한국어 日本語",
    ]
    corpus = run(texts)
    assert corpus.clean.tolist() == texts
    assert corpus.texts.tolist() == texts


def test_numeric_column_as_text():
    frame = pd.DataFrame({"score": [5, 3, 5, 1], "rating": [4.5, np.nan, 4.5, 2.0]})
    corpus = run(frame, column="score")
    assert corpus.texts.tolist() == ["5", "3", "1"]
    assert corpus.counts.tolist() == [2, 1, 1]
    corpus = run(frame, column="rating")
    assert corpus.issues.tolist() == ["", "missing", "", ""]
    assert corpus.texts.tolist() == ["4.5", "2.0"]


def test_column_with_a_number_as_its_name():
    # Excel headers such as years come back as numbers; the command line gives text
    frame = pd.DataFrame({2023: ["old", "older"], 2024: ["new text", "newer text"]})
    corpus = run(frame, column="2024")
    assert corpus.clean.tolist() == ["new text", "newer text"]


def test_input_table_is_not_mutated():
    frame = pd.DataFrame({"id": [1, 2, 3], "text": ["  a\u00a0b ", None, "ＡＢ"]})
    before = frame.copy()
    table = Table.from_frame(frame)
    fingerprint = table.fingerprint
    corpus = preprocess(table, PreprocessParams(text_column="text", max_chars=10))
    pd.testing.assert_frame_equal(frame, before)
    corpus.original[0] = "changed"  # the corpus holds its own copy
    pd.testing.assert_frame_equal(frame, before)
    assert Table.from_frame(frame).fingerprint == fingerprint


def test_csv_table_end_to_end(tmp_path):
    path = tmp_path / "feedback.csv"
    path.write_bytes("id;comment\n1;Très bien\n2;\n3;très  bien\n4;Très bien\n".encode("cp1252"))
    table = pipeline.read_table(path)
    ctx = detached("preprocess")
    corpus = preprocess(table, PreprocessParams(text_column="comment"), ctx)
    assert corpus.texts.tolist() == ["Très bien", "très bien"]
    assert corpus.counts.tolist() == [2, 1]
    assert corpus.issues.tolist() == ["", "empty", "", ""]
    assert corpus.row_to_unique.tolist() == [0, -1, 1, 0]
    assert ctx.warnings == [
        "preprocess: 1 row has no usable text: row 2 (counting from 1 below the header); "
        "it stays in the output with a reason (text_issue)"
    ]


@pytest.mark.parametrize(
    ("blank", "named"),
    [
        ([6], "1 row has no usable text: row 7"),
        ([1, 3], "2 rows have no usable text: rows 2 and 4"),
        ([0, 4, 5], "3 rows have no usable text: rows 1, 5 and 6"),
        ([1, 2, 3, 4, 5], "5 rows have no usable text: rows 2, 3, 4, 5 and 6"),
        (list(range(2, 14)), "12 rows have no usable text: rows 3, 4, 5, 6, 7 and 7 more"),
    ],
)
def test_rows_without_text_are_named_by_their_row_numbers(blank, named):
    texts = ["" if i in blank else f"text {i}" for i in range(15)]
    ctx = detached("preprocess")
    run(texts, ctx=ctx)
    (warning,) = ctx.warnings
    assert warning.startswith(f"preprocess: {named} (counting from 1 below the header); ")
    they = "it stays" if len(blank) == 1 else "they stay"
    assert warning.endswith(f"; {they} in the output with a reason (text_issue)")
