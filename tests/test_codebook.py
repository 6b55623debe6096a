"""A codebook (pipeline/codebook.py): categories named by the analyst, each text given the closest
one by meaning. Hostile input first, then what the assignment gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import ConfigError, InputError, PipelineConfig, Table, codebook
from pipeline.codebook import Assignment, Category, Codebook, assign, parse_codebook_text, read_codebook
from pipeline.io import csv_bytes
from tests.conftest import TOPICS, FakeEmbedder, config_for, run_collect, topic_texts


def read(text: str, name: str = "codes.csv", encoding: str = "utf-8") -> Codebook:
    return read_codebook(text.encode(encoding), name)


def refused(text: str, name: str = "codes.csv", encoding: str = "utf-8") -> InputError:
    with pytest.raises(InputError) as info:
        read(text, name, encoding)
    assert info.value.stage == "codebook"
    assert info.value.hint
    return info.value


# --- hostile input ------------------------------------------------------------------------------


def test_duplicate_names_are_refused_naming_them_and_their_rows():
    error = refused("name,description\nBilling,money\nLogin,\n billing ,charges\nCrash,\nLOGIN,x\n")
    assert error.message == (
        "the codebook codes.csv names 2 categories more than once: 'Billing' (row 2) and 'billing' "
        "(row 4); 'Login' (row 3) and 'LOGIN' (row 6)"
    )
    assert "compared ignoring case and spaces" in error.hint


def test_empty_names_are_refused_with_their_row_numbers():
    error = refused("name,description\nBilling,money\n,a description with no name\nLogin,\n  ,x\n")
    assert error.message == "the codebook codes.csv has 2 categories without a name (rows 3, 5)"
    assert error.hint == "give every category a name, or remove those rows"


def test_fully_empty_rows_are_skipped_and_said():
    book = read("name,description\nBilling,money\n,\nLogin,\n")
    assert book.names == ["Billing", "Login"]
    assert book.notes == ("1 empty row(s) skipped (row 3)",)


def test_no_name_column_is_refused_listing_the_columns():
    error = refused("category,description\nBilling,money\nLogin,access\n")
    assert (
        error.message
        == "the codebook codes.csv has no column 'name'; its columns are 'category', 'description'"
    )
    assert "a column named name" in error.hint
    # a bare list of names: the first name is read as the header, and the message says so
    error = refused("Billing\nLogin\nCrash\n")
    assert error.message == (
        "the codebook codes.csv has no column 'name'; its columns are 'Billing' "
        "(the first line is read as the header)"
    )


def test_headers_match_ignoring_case_and_the_reader_says_so():
    book = read(
        "Name;Description;EXAMPLES;owner\nBilling;money;refund please | charged twice|;ana\nLogin;;;bo\n"
    )
    assert book.categories == (
        Category("Billing", "money", ("refund please", "charged twice")),
        Category("Login", "", ()),
    )
    assert "the column 'Name' is read as 'name' (headers are matched ignoring case)" in book.notes
    assert "columns left out (a codebook reads name, description, examples): 'owner'" in book.notes


def test_two_columns_reading_as_name_are_refused():
    error = refused("Name,NAME\nBilling,x\nLogin,y\n")
    assert error.message == "the codebook codes.csv has 2 columns that read as 'name': 'Name', 'NAME'"


def test_one_category_is_allowed_with_a_warning():
    book = read("name\nBilling\n")
    assert book.names == ["Billing"]
    assert (
        len(book.warnings) == 1 and "one category, 'Billing': every text that reaches the" in book.warnings[0]
    )


def test_no_category_at_all_is_refused():
    assert refused("name,description\n,\n").message == "the codebook codes.csv has no categories"
    assert refused("name\n").message.startswith("the codebook codes.csv has a header (name) but no rows")


def test_latin1_file_is_read_and_said():
    book = read("name,description\nCafé,crème brûlée\nRéclamation,\n", encoding="latin-1")
    assert book.names == ["Café", "Réclamation"]
    assert book.categories[0].description == "crème brûlée"
    assert "codes.csv is not UTF-8; it was read as cp1252" in book.notes


def test_binary_and_empty_files_are_refused_as_codebooks():
    assert refused("").message == "the codebook codes.csv is empty (0 rows, no header)"
    with pytest.raises(InputError) as info:
        read_codebook(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)), "logo.png")
    assert info.value.stage == "codebook" and "does not look like a text table" in info.value.message


def test_a_missing_file_is_a_codebook_error(tmp_path):
    with pytest.raises(InputError) as info:
        read_codebook(tmp_path / "nope.csv")
    assert info.value.stage == "codebook" and "does not exist" in info.value.message


def test_formula_names_are_kept_as_data_and_neutralised_only_when_written():
    book = read('name\n"=HYPERLINK(""http://x"",""y"")"\n+cmd\n-5\n@me\n')
    assert book.names == ['=HYPERLINK("http://x","y")', "+cmd", "-5", "@me"]
    written = csv_bytes(pd.DataFrame({"category": book.names})).decode("utf-8-sig").splitlines()
    assert written == ["category", '"\'=HYPERLINK(""http://x"",""y"")"', "'+cmd", "-5", "'@me"]


def test_a_thousand_categories_are_allowed_with_their_cost_and_assign_fast(result, embedder):
    rows = "\n".join(f"topic {i},about thing {i},example {i} | another {i}" for i in range(1000))
    book = read("name,description,examples\n" + rows + "\n")
    assert len(book) == 1000
    assert book.warnings == (
        "the codebook has 1,000 categories: 4,000 texts to embed once (as many as 4,000 rows of "
        "data), and each text is compared with every category (1,000 cosines per text); a few broad "
        "categories are easier to read",
    )
    found = assign(result, book, embedder, threshold=-1)
    assert (found.best >= 0).all() and (found.best < 1000).all()
    assert found.preview()["rows"].sum() == int(result.corpus.counts.sum())


def test_more_than_the_limit_is_refused():
    rows = "\n".join(f"c{i}" for i in range(codebook.MAX_CATEGORIES + 1))
    error = refused("name\n" + rows + "\n")
    assert error.message == "the codebook codes.csv has 5,001 categories; at most 5,000 are allowed"


@pytest.mark.parametrize("value", ["1.5", "-2", "nan", "high"])
def test_threshold_out_of_range_is_a_config_error(value):
    with pytest.raises(ConfigError) as info:
        PipelineConfig().with_overrides([f"codebook.threshold={value}"])
    assert "codebook.threshold" in info.value.message
    assert PipelineConfig().with_overrides(["codebook.threshold=0.35"]).codebook.threshold == 0.35
    assert PipelineConfig().codebook.threshold == 0.0


def test_another_model_is_refused(result):
    other = FakeEmbedder(name="other-model")
    with pytest.raises(InputError) as info:
        assign(result, BOOK, other)
    assert info.value.stage == "codebook"
    assert info.value.message == (
        "the texts were embedded by fake:fake-words:256, but the categories would be embedded by "
        "fake:other-model:32; scores between vectors of two models mean nothing"
    )
    assert other.calls == []  # nothing was embedded


# --- typed codebooks ----------------------------------------------------------------------------


def test_typed_lines_name_description_and_examples():
    book = parse_codebook_text(
        "# my codes\n"
        "Billing: charges and refunds | I was charged twice | where is my invoice?\n"
        "\n"
        "Login problems | cannot sign in\n"
        "Meeting at 10:30: the morning slot\n"
        "https://example.com\n"
        "Praise:\n"
    )
    assert book.categories == (
        Category("Billing", "charges and refunds", ("I was charged twice", "where is my invoice?")),
        Category("Login problems", "", ("cannot sign in",)),
        Category("Meeting at 10:30", "the morning slot", ()),
        Category("https://example.com", "", ()),
        Category("Praise", "", ()),
    )


def test_typed_lines_are_checked_naming_lines():
    with pytest.raises(InputError) as info:
        parse_codebook_text("Billing\n: no name here\nbilling: again\n")
    assert info.value.message == "the typed codebook has 1 category without a name (line 2)"
    with pytest.raises(InputError) as info:
        parse_codebook_text("Billing\nLogin\nbilling: again\n")
    assert "'Billing' (line 1) and 'billing' (line 3)" in info.value.message


# --- assignment ---------------------------------------------------------------------------------

EXTRA = ["", None, "completely unrelated zebra xylophone quartz"]
# each category described by its topic's words (tests/conftest.py TOPICS)
BOOK = Codebook(tuple(Category(topic, " ".join(words)) for topic, words in TOPICS.items()))


@pytest.fixture(scope="module")
def embedder() -> FakeEmbedder:
    # 256 dimensions: unrelated words' directions are near orthogonal (32 leaves cosines of 0.2)
    return FakeEmbedder(dim=256)


@pytest.fixture(scope="module")
def truth() -> list[str]:
    return topic_texts()[1]


@pytest.fixture(scope="module")
def result(tmp_path_factory, embedder):
    """The four topics of 30 texts, a text repeated, rows without text and an unrelated text."""
    texts, _ = topic_texts()
    frame = pd.DataFrame({"comment": [*texts, texts[0], *EXTRA]})
    config = config_for(**{"stages.reduce": False})
    run, _ = run_collect(Table.from_frame(frame), config, tmp_path_factory.mktemp("cache"), embedder)
    return run


def test_every_topic_text_gets_its_topic(result, embedder, truth):
    found = assign(result, BOOK, embedder, threshold=0.3)
    columns = found.columns()
    assert list(columns.columns) == ["category", "category_score"]
    assert len(columns) == result.corpus.n_rows == 124
    assert columns["category"].iloc[:120].tolist() == truth
    assert columns["category"].iloc[120] == truth[0]  # the repeated text, same category
    assert (columns["category_score"].iloc[:121] >= 0.3).all()
    # rows without text: no category, no score
    assert columns["category"].iloc[121:123].tolist() == ["", ""]
    assert columns["category_score"].iloc[121:123].isna().all()
    # the unrelated text is below the threshold: no category, no score
    assert columns["category"].iloc[123] == "" and np.isnan(columns["category_score"].iloc[123])
    assert str(columns["category"].dtype) == "string"


def test_category_vectors_are_the_normalised_mean_of_their_texts(embedder):
    book = Codebook((Category("billing", "refund please", ("charged twice",)), Category("login")))
    vectors = codebook.category_vectors(book, embedder)
    parts = embedder.encode(["billing", "refund please", "charged twice"])
    expected = parts.mean(axis=0) / np.linalg.norm(parts.mean(axis=0))
    assert np.allclose(vectors[0], expected, atol=1e-6)
    assert np.allclose(vectors[1], embedder.encode(["login"])[0], atol=1e-6)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-6)
    calls = len(embedder.calls)
    assert codebook.category_vectors(book, embedder) is vectors and len(embedder.calls) == calls  # kept


def test_category_vectors_are_read_back_from_the_cache_by_a_new_process(embedder, tmp_path, monkeypatch):
    """Export in a fresh server process must not load the model (8-10 s) for vectors it made before."""
    book = Codebook((Category("billing", "refund please"), Category("login", examples=("password reset",))))
    made = codebook.category_vectors(book, embedder, cache=tmp_path)
    monkeypatch.setattr(codebook, "_VECTORS", type(codebook._VECTORS)(codebook.VECTORS_KEPT))  # a new process
    no_model = FakeEmbedder(dim=embedder.dim)  # the same identity as `embedder` ...
    no_model.encode = lambda texts: pytest.fail(
        "the model was loaded for vectors in the cache"
    )  # ... no model
    again = codebook.category_vectors(book, no_model, cache=tmp_path)
    assert np.array_equal(again, made) and not again.flags.writeable
    other = Codebook((Category("billing"),))  # another codebook is not read from the first one's entry
    with pytest.raises(pytest.fail.Exception):
        codebook.category_vectors(other, no_model, cache=tmp_path)


def test_a_cache_that_cannot_be_written_still_gives_the_vectors(embedder, tmp_path, monkeypatch):
    """A full disk costs the stored copy, never the answer."""
    book = Codebook((Category("billing"), Category("login")))

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(codebook.Cache, "get_or_compute", full)
    vectors = codebook.category_vectors(book, embedder, cache=tmp_path)
    assert vectors.shape == (2, embedder.dim)


def test_preview_at_another_threshold_equals_assigning_at_it(result, embedder, monkeypatch):
    found = assign(result, BOOK, embedder, threshold=0.3)
    # the preview computes no cosine and embeds nothing
    monkeypatch.setattr(codebook, "nearest", lambda *a: pytest.fail("recomputed"))
    calls = len(embedder.calls)
    for threshold in (-1.0, 0.2, 0.45, 0.6, 0.9):
        preview = found.preview(threshold)
        monkeypatch.undo()
        again = assign(result, BOOK, embedder, threshold=threshold)
        monkeypatch.setattr(codebook, "nearest", lambda *a: pytest.fail("recomputed"))
        pd.testing.assert_frame_equal(preview, again.preview())
        pd.testing.assert_frame_equal(found.columns(threshold), again.columns())
    assert len(embedder.calls) == calls  # the category vectors were kept


def test_preview_counts_rows_and_texts(result, embedder, truth):
    found = assign(result, BOOK, embedder, threshold=0.3)
    preview = found.preview()
    assert preview["category"].tolist()[:4] == list(TOPICS) and pd.isna(preview["category"].iloc[4])
    expected = pd.Series(truth).value_counts().to_dict()
    expected[truth[0]] += 1  # the repeated text: one more row, not one more text
    assert preview["rows"].tolist() == [*(int(expected[t]) for t in TOPICS), 1]
    assert preview["texts"].tolist() == [30, 30, 30, 30, 1]
    assert preview["rows"].sum() == 122  # rows with text
    assert preview["share"].sum() == pytest.approx(1.0)
    everything = found.preview(-1.0)
    assert everything["rows"].iloc[-1] == 0 and everything["rows"].sum() == 122


def test_summary_line_and_manifest(result, embedder):
    found = assign(result, BOOK, embedder, threshold=0.3)
    assert found.summary() == (
        "121 of 122 texts matched a category (threshold 0.30, set); 1 has no category; 2 rows have no text"
    )
    manifest = found.manifest()
    assert manifest["threshold"] == 0.3 and manifest["automatic"] is False
    assert sum(manifest["rows"].values()) == 121 and manifest["no_category"] == 1
    assert manifest["rows_without_text"] == 2
    assert [c["name"] for c in manifest["categories"]] == list(TOPICS)


def test_automatic_threshold_is_said(result, embedder):
    found = assign(result, BOOK, embedder)
    assert found.automatic and found.rule
    assert -1.0 <= found.threshold <= 1.0
    assert "automatic" in found.summary()
    assert found.manifest()["automatic"] is True


def test_one_category_takes_what_reaches_the_threshold(result, embedder, truth):
    book = Codebook((BOOK.categories[0],))
    found = assign(result, book, embedder, threshold=0.3)
    columns = found.columns()
    got = columns["category"].iloc[:120]
    assert set(got) <= {"billing", ""}
    assert (got == "billing").tolist() == [t == "billing" for t in truth]
    assert np.isnan(found.second).all()


def test_uncovered_clusters_show_what_the_codebook_misses(result, embedder, truth):
    book = Codebook(BOOK.categories[:3])  # no "praise"
    found = assign(result, book, embedder, threshold=0.3)
    labels = result.clustering.labels
    names = result.labels.label_of()
    missed = codebook.uncovered_clusters(found, labels, names)
    assert list(missed.columns) == ["cluster_id", "cluster_label", "rows", "share_of_cluster"]
    praise = {int(labels[i]) for i, t in enumerate(truth) if t == "praise"}
    assert int(missed["cluster_id"].iloc[0]) in praise
    assert missed["rows"].sum() == int(found.preview()["rows"].iloc[-1])


def test_columns_are_added_and_an_input_category_column_is_renamed():
    table = pd.DataFrame({"text": ["a", "b"], "category": ["x", "y"], "category_input": ["p", "q"]})
    columns = pd.DataFrame(
        {"category": pd.array(["billing", ""], dtype="string"), "category_score": [0.5, np.nan]}
    )
    out, notes = codebook.add_columns(table, columns)
    assert list(out.columns) == ["text", "category_input_2", "category_input", "category", "category_score"]
    assert out["category_input_2"].tolist() == ["x", "y"] and out["category"].tolist() == ["billing", ""]
    assert notes == [
        "the input column 'category' is named 'category_input_2' in the output table (the codebook "
        "adds its own 'category')"
    ]
    assert list(table.columns) == ["text", "category", "category_input"]  # the input is untouched


def test_assignment_is_a_plain_frozen_value(result, embedder):
    found = assign(result, BOOK, embedder, threshold=0.3)
    assert isinstance(found, Assignment)
    with pytest.raises(AttributeError):
        found.threshold = 0.5  # type: ignore[misc]


def test_a_name_of_invisible_characters_is_an_empty_name():
    error = refused("name,description\nBilling,money\n\u200b\u200d,some words\n")
    assert error.message == "the codebook codes.csv has 1 category without a name (row 3)"
    assert read("name\nBilling\n\u200b\u200d\n").notes == ("1 empty row(s) skipped (row 3)",)


def test_at_another_threshold_is_what_gets_written(result, embedder):
    found = assign(result, BOOK, embedder)
    settled = found.at(0.5)
    assert settled.threshold == 0.5 and not settled.automatic and settled.rule == "set"
    pd.testing.assert_frame_equal(settled.columns(), found.columns(0.5))
    assert settled.manifest()["threshold"] == 0.5 and settled.manifest()["automatic"] is False
    assert found.threshold != 0.5  # the original is unchanged
    with pytest.raises(InputError):
        found.at(2.0)


def test_automatic_threshold_cuts_between_high_and_low_scores():
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0.2, 0.03, 300), rng.normal(0.6, 0.03, 200)]).astype(np.float32)
    threshold, rule = codebook.auto_threshold(scores)
    assert 0.3 < threshold < 0.5 and rule == "Otsu's cut of the best scores"
    assert (scores >= threshold).sum() == 200
    # scores all low: never below the floor
    threshold, rule = codebook.auto_threshold(scores - 0.5)
    assert threshold == codebook.AUTO_FLOOR and rule.startswith("the floor 0.1")
    # too few texts, or all alike: the fallback
    assert codebook.auto_threshold(scores[:5])[0] == codebook.AUTO_FALLBACK
    assert codebook.auto_threshold(np.full(100, 0.4, np.float32))[0] == codebook.AUTO_FALLBACK


def test_an_excel_codebook_with_empty_cells_and_numbers(tmp_path):
    path = tmp_path / "codes.xlsx"
    pd.DataFrame(
        {"name": ["Billing", 2024, "Login"], "examples": [None, "year end | closing", np.nan]}
    ).to_excel(path, index=False)
    book = read_codebook(path)
    assert book.categories == (
        Category("Billing"),
        Category("2024", "", ("year end", "closing")),
        Category("Login"),
    )
    assert book.source == "codes.xlsx"


def test_the_benchmark_measures_the_labels_as_a_codebook():
    from pipeline import bench_codebook

    embedder = FakeEmbedder(dim=256)
    texts, truth = topic_texts()
    names = sorted(TOPICS)
    # the label names are the codebook: underscores and hyphens read as spaces
    assert bench_codebook.readable("card_arrival") == "card arrival"
    assert bench_codebook.readable("culture-arts-entertainment") == "culture arts entertainment"
    data = bench_codebook.Labelled(
        name="topics",
        vectors=embedder.encode(texts),
        row_to_unique=np.arange(len(texts)),
        labels=np.array([names.index(t) for t in truth]),
        names=names,
    )
    row = bench_codebook.measure(data, embedder)
    assert row["texts"] == 120 and row["categories"] == 4
    assert 0 <= row["given a category"] <= 1 and 0 <= row["half: others given one"] <= 1
    assert row["right, every text"] >= 0.25  # names alone: each text shares a word with its own half the time
