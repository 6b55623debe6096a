"""``python -m pipeline.bench_corpora``: hard ``text,label`` sets made from ``../shared/datasets``.

So that defaults are chosen on many shapes of data rather than tuned to one, each generator
below turns the shared labelled sets into a harder or differently shaped set (one line each,
in ``GENERATORS``). The output is deterministic: the same seed gives the same bytes. Files are
written outside the project (the shared sets must never be copied into it): by default to
``<pipeline cache folder>/bench-corpora``, with a ``manifest.json`` saying which generator
version and seed made them; ``ensure`` regenerates a set that is missing or stale.
``python -m pipeline.bench_quality`` calls ``ensure`` and scores these sets beside the shared ones.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
VERSION = 1  # bump when any generator's output changes: the manifest then marks old files stale
SEED = 0
MANIFEST = "manifest.json"


def default_dir(cache_dir: str | Path | None = None) -> Path:
    """Where generated sets go: ``bench-corpora`` inside the pipeline cache folder."""
    from .cache import default_cache_dir

    return Path(cache_dir or default_cache_dir()) / "bench-corpora"


def _read(datasets: Path, name: str) -> pd.DataFrame:
    frame = pd.read_csv(datasets / f"{name}.csv", dtype=str, keep_default_na=False)
    return frame[["text", "label"]]


def _per_label(frame: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Up to ``n`` rows of each label, drawn with ``rng``; labels in sorted order."""
    parts = []
    for _, group in sorted(frame.groupby("label"), key=lambda item: item[0]):
        take = rng.permutation(len(group))[: min(n, len(group))]
        parts.append(group.iloc[np.sort(take)])
    return pd.concat(parts, ignore_index=True)


def _shuffled(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


# banking77 intents by coarse theme: the first group whose keyword is in the intent's name wins,
# so the order matters ("top_up_by_card_charge" is a top-up, not a card question)
BANKING_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("top_up", ("top_up", "topping_up")),
    ("exchange", ("exchange", "fiat_currency")),
    ("transfer", ("transfer", "beneficiary", "receiving_money")),
    ("cash", ("cash", "atm")),
    ("payment", ("card_payment", "refund", "charged_twice", "extra_charge", "direct_debit")),
    ("account", ("verify", "identity", "passcode", "personal", "terminate", "age_limit", "country", "phone")),
    ("card", ("card", "pin", "pay", "contactless")),
)
BANKING_COARSE_ROWS = 6000


def banking_group(intent: str) -> str:
    """The coarse group of a banking77 intent (see ``BANKING_GROUPS``)."""
    name = intent.lower()
    for group, keywords in BANKING_GROUPS:
        if any(word in name for word in keywords):
            return group
    raise ValueError(f"banking77 intent {intent!r} matches no coarse group; extend BANKING_GROUPS")


def banking77_coarse(datasets: Path, rng: np.random.Generator) -> pd.DataFrame:
    frame = _read(datasets, "banking77")
    frame = frame.iloc[np.sort(rng.permutation(len(frame))[:BANKING_COARSE_ROWS])]
    return frame.assign(label=frame["label"].map(banking_group)).reset_index(drop=True)


# Chosen by hand from the tag names: the web-development tags (four CMSs, ajax, the Apache
# server); the default pipeline put all six in one cluster of the full stackoverflow set. TF-IDF
# centroids of the titles were tried and rejected: with titles this short nearly every pair of
# tags scores below 0.1 and the "closest five" (apache, bash, cocoa, osx, svn) are not siblings.
STACKOVERFLOW_SIBLINGS = ("ajax", "apache", "drupal", "magento", "sharepoint", "wordpress")


def stackoverflow_siblings(datasets: Path, rng: np.random.Generator) -> pd.DataFrame:
    frame = _read(datasets, "stackoverflow")
    return _shuffled(frame[frame["label"].isin(STACKOVERFLOW_SIBLINGS)], rng)


AGNEWS_TOPICS = {"Business": "business", "Sci/Tech": "tech", "Sports": "sport", "World": "world"}
AGNEWS_PER_CLASS = 750


def long_short_mix(datasets: Path, rng: np.random.Generator) -> pd.DataFrame:
    long = _read(datasets, "bbc_news")
    short = _per_label(_read(datasets, "agnews"), AGNEWS_PER_CLASS, rng)
    short = short.assign(label=short["label"].map(AGNEWS_TOPICS))
    return _shuffled(pd.concat([long, short], ignore_index=True), rng)


NEAR_DUPLICATE_BASES = 26  # texts per intent; each appears 1-6 times, so ~7,000 rows
_WORD = re.compile(r"[A-Za-z]{4,}")


def _typo(text: str, rng: np.random.Generator) -> str:
    words = list(_WORD.finditer(text))
    if not words:
        return text + "?"
    match = words[rng.integers(len(words))]
    word, i = match.group(), int(rng.integers(1, len(match.group()) - 1))
    kind = rng.integers(3)
    if kind == 0:  # swap two neighbouring letters
        word = word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    elif kind == 1:  # drop a letter
        word = word[:i] + word[i + 1 :]
    else:  # double a letter
        word = word[:i] + word[i] + word[i:]
    return text[: match.start()] + word + text[match.end() :]


def _punctuation(text: str, rng: np.random.Generator) -> str:
    stripped = text.rstrip(" ?.!")
    if stripped != text:
        return stripped
    return text + ["?", "!", ".", "??"][int(rng.integers(4))]


PERTURBATIONS: tuple[Callable[[str, np.random.Generator], str], ...] = (
    lambda t, _: t.lower(),
    lambda t, _: t.upper(),
    lambda t, _: t[:1].swapcase() + t[1:],
    _typo,
    lambda t, rng: t.rstrip(" ?.!") + [" please", ", please", " please!", " pls"][int(rng.integers(4))],
    _punctuation,
    lambda t, _: "  ".join(t.split(" ", 1)) if " " in t else t + " ",
)


def perturb(text: str, rng: np.random.Generator) -> str:
    """``text`` with one or two small changes (case, a typo, a trailing "please", punctuation)."""
    out = text
    for _ in range(10):
        out = text
        for k in rng.choice(len(PERTURBATIONS), size=int(rng.integers(1, 3)), replace=False):
            out = PERTURBATIONS[int(k)](out, rng)
        if out != text:
            return out
    return text + " please"


def near_duplicates(datasets: Path, rng: np.random.Generator) -> pd.DataFrame:
    bases = _per_label(_read(datasets, "banking77_test"), NEAR_DUPLICATE_BASES, rng)
    texts, labels = [], []
    for text, label in zip(bases["text"], bases["label"], strict=True):
        copies = int(rng.integers(1, 7))
        texts += [text] + [perturb(text, rng) for _ in range(copies - 1)]
        labels += [label] * copies
    return _shuffled(pd.DataFrame({"text": texts, "label": labels}), rng)


def _newsgroups(prefix: str) -> Callable[[Path, np.random.Generator], pd.DataFrame]:
    def make(datasets: Path, rng: np.random.Generator) -> pd.DataFrame:
        frame = _read(datasets, "twenty_newsgroups_mini")
        return _shuffled(frame[frame["label"].str.startswith(prefix)], rng)

    return make


@dataclass(frozen=True)
class Generator:
    """One generated set: its name (the file stem), what shape of data it tests, the shared
    sets it reads, how many groups it has, and the function that builds it."""

    name: str
    tests: str
    sources: tuple[str, ...]
    groups: int
    make: Callable[[Path, np.random.Generator], pd.DataFrame]


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in (
        Generator(
            "banking77_coarse",
            "weak structure: 6,000 banking77 questions, 77 intents merged into 7 broad themes",
            ("banking77",),
            len(BANKING_GROUPS),
            banking77_coarse,
        ),
        Generator(
            "stackoverflow_siblings",
            "close siblings: the six web-development stackoverflow tags only (ajax, apache, CMSs)",
            ("stackoverflow",),
            len(STACKOVERFLOW_SIBLINGS),
            stackoverflow_siblings,
        ),
        Generator(
            "long_short_mix",
            "mixed lengths: long bbc_news articles with short agnews items, labelled by topic",
            ("bbc_news", "agnews"),
            6,
            long_short_mix,
        ),
        Generator(
            "near_duplicates",
            "repeats: banking77_test questions 1-6 times each, copies slightly perturbed",
            ("banking77_test",),
            77,
            near_duplicates,
        ),
        Generator(
            "newsgroups_comp",
            "one-field subtopics: the five comp.* newsgroups (long posts, few rows)",
            ("twenty_newsgroups_mini",),
            5,
            _newsgroups("comp."),
        ),
        Generator(
            "newsgroups_sci",
            "one-field subtopics: the four sci.* newsgroups (long posts, few rows)",
            ("twenty_newsgroups_mini",),
            4,
            _newsgroups("sci."),
        ),
    )
}


def _rng(name: str, seed: int) -> np.random.Generator:
    # one stream per set, so adding or changing a generator leaves the other sets' bytes alone
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def build(name: str, datasets: Path = DATASETS, seed: int = SEED) -> pd.DataFrame:
    """The generated set ``name`` as a ``text,label`` frame."""
    frame = GENERATORS[name].make(Path(datasets), _rng(name, seed))
    return frame[["text", "label"]].reset_index(drop=True)


def _write(frame: pd.DataFrame, path: Path) -> None:
    partial = path.with_suffix(".csv.partial")
    frame.to_csv(partial, index=False, encoding="utf-8", lineterminator="\n")
    partial.replace(path)


def _made_by(datasets: Path, seed: int) -> dict:
    """What the manifest records about how its sets were made; a change makes them stale."""
    return {"version": VERSION, "seed": seed, "datasets": str(Path(datasets).resolve())}


def _load_manifest(out: Path) -> dict:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def generate(
    out: Path, datasets: Path = DATASETS, seed: int = SEED, names: list[str] | None = None
) -> dict[str, Path]:
    """Write the generated sets (all, or ``names``) to ``out`` as ``<name>.csv``; name -> path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(out)
    made_by = _made_by(datasets, seed)
    if any(manifest.get(k) != v for k, v in made_by.items()):
        manifest = {**made_by, "sets": {}}
    paths = {}
    for name in names or list(GENERATORS):
        frame = build(name, datasets, seed)
        path = out / f"{name}.csv"
        _write(frame, path)
        manifest["sets"][name] = {
            "rows": len(frame),
            "groups": int(frame["label"].nunique()),
            "tests": GENERATORS[name].tests,
        }
        paths[name] = path
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return paths


def ensure(
    out: Path, datasets: Path = DATASETS, seed: int = SEED, names: list[str] | None = None
) -> dict[str, Path]:
    """The generated sets' paths, (re)generating those missing or made by another version, seed or
    source folder."""
    out = Path(out)
    wanted = names or list(GENERATORS)
    manifest = _load_manifest(out)
    made_by = _made_by(datasets, seed)
    current = all(manifest.get(k) == v for k, v in made_by.items())
    stale = [
        n
        for n in wanted
        if not current or n not in manifest.get("sets", {}) or not (out / f"{n}.csv").is_file()
    ]
    if stale:
        generate(out, datasets, seed, stale)
    return {n: out / f"{n}.csv" for n in wanted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bench_corpora", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--datasets", default=str(DATASETS), help="folder of the shared text,label CSVs")
    parser.add_argument("--out", help="folder to write to (default: <pipeline cache>/bench-corpora)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--only", nargs="*", choices=sorted(GENERATORS), help="sets to generate")
    args = parser.parse_args(argv)
    datasets = Path(args.datasets)
    if not datasets.is_dir():
        print(f"note: no benchmark sets at {datasets}; nothing to generate from")
        return 0
    out = Path(args.out) if args.out else default_dir()
    for name, path in generate(out, datasets, args.seed, args.only).items():
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        print(
            f"{name:<24} rows {len(frame):>6,}  groups {frame['label'].nunique():>3}  "
            f"{GENERATORS[name].tests}  -> {path}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
