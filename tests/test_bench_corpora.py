"""The benchmark's generated sets: same seed, same bytes; the shape each generator promises.

They are made from ../shared/datasets, which a plain checkout does not have: those tests skip.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import bench_corpora
from pipeline.bench_corpora import DATASETS, GENERATORS

needs_datasets = pytest.mark.skipif(not DATASETS.is_dir(), reason=f"no benchmark sets at {DATASETS}")


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict:
    return bench_corpora.generate(tmp_path_factory.mktemp("corpora"), DATASETS, seed=0)


@needs_datasets
def test_same_seed_gives_the_same_bytes(generated, tmp_path):
    again = bench_corpora.generate(tmp_path / "again", DATASETS, seed=0)
    for name, path in generated.items():
        assert path.read_bytes() == again[name].read_bytes(), name


@needs_datasets
def test_another_seed_draws_other_rows(generated, tmp_path):
    other = bench_corpora.generate(tmp_path, DATASETS, seed=1, names=["banking77_coarse", "near_duplicates"])
    for name, path in other.items():
        assert path.read_bytes() != generated[name].read_bytes(), name


@needs_datasets
@pytest.mark.parametrize("name", list(GENERATORS))
def test_each_set_is_text_label_with_its_groups(generated, name):
    path = generated[name]
    assert path.read_text(encoding="utf-8").split("\n", 1)[0] == "text,label"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["text", "label"]
    assert frame["label"].nunique() == GENERATORS[name].groups
    assert 300 <= len(frame) <= 8000
    assert (frame["text"].str.strip() != "").all()


@needs_datasets
def test_near_duplicates_repeat_texts_with_small_changes(generated):
    frame = pd.read_csv(generated["near_duplicates"], dtype=str, keep_default_na=False)
    source = pd.read_csv(DATASETS / "banking77_test.csv", dtype=str, keep_default_na=False)
    originals = frame["text"].isin(set(source["text"]))
    assert originals.sum() == bench_corpora.NEAR_DUPLICATE_BASES * 77  # each base once, unchanged
    assert 2 * originals.sum() < len(frame) < 5 * originals.sum()  # and 0-5 perturbed copies of each


@needs_datasets
def test_ensure_makes_only_what_is_missing(tmp_path):
    paths = bench_corpora.ensure(tmp_path, DATASETS, names=["newsgroups_comp", "newsgroups_sci"])
    kept = paths["newsgroups_comp"].stat().st_mtime_ns
    paths["newsgroups_sci"].unlink()
    again = bench_corpora.ensure(tmp_path, DATASETS, names=["newsgroups_comp", "newsgroups_sci"])
    assert again["newsgroups_sci"].is_file()
    assert again["newsgroups_comp"].stat().st_mtime_ns == kept


def test_banking_intents_fall_into_coarse_themes():
    assert bench_corpora.banking_group("top_up_by_card_charge") == "top_up"
    assert bench_corpora.banking_group("card_payment_wrong_exchange_rate") == "exchange"
    assert bench_corpora.banking_group("activate_my_card") == "card"
    with pytest.raises(ValueError, match="no coarse group"):
        bench_corpora.banking_group("mortgage_rates")


def test_perturb_changes_a_text_a_little_and_repeatably():
    text = "How do I activate my new card?"
    first = [bench_corpora.perturb(text, np.random.default_rng(7)) for _ in range(2)]
    assert first[0] == first[1]
    copies = [bench_corpora.perturb(text, np.random.default_rng(seed)) for seed in range(50)]
    assert all(c != text and abs(len(c) - len(text)) <= 12 for c in copies)
