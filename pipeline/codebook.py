"""A codebook: categories the analyst names, each text given the closest one by meaning.

A category is a name, optionally a description and a few example texts. Its vector is the
normalised mean of the normalised embeddings of its name, its description and its examples (those
given), made by the model that embedded the texts. Each distinct text gets the category whose
vector is closest (cosine), when that cosine reaches the threshold; the others get no category, and
the clusters those rows fall in show what the codebook misses.

The threshold is ``codebook.threshold``: 0 picks it from the scores (``auto_threshold``), -1 gives
every text its closest category. ``Assignment`` keeps each text's best category and score, so
counts at another threshold (``Assignment.preview``, the app's slider) need no model and no cosine.

A codebook comes from a table (``read_codebook``: CSV/TSV in any encoding ``io.read_table``
reads, Excel or Parquet; a column ``name``, optional ``description`` and ``examples``, examples
separated by ``|``) or from typed lines (``parse_codebook_text``, one category per line, written
``name: description | example | example``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import search
from .cache import MISSING, Cache, chain_key
from .embedders import Embedder
from .errors import InputError
from .io import read_table
from .operator import Limits
from .recent import Recent
from .result import Result
from .stages.preprocess import clean_texts

STAGE = "codebook"
COLUMNS = ("name", "description", "examples")
OUTPUT_COLUMNS = ("category", "category_score")
EXAMPLE_SEPARATOR = "|"
MAX_CATEGORIES = 5_000  # past this a codebook is a lookup table, and a text x category cosine costly
MANY_CATEGORIES = 1_000  # from here the cost is said
MAX_BYTES = 50 * 2**20  # a codebook file larger than this is not a list of categories
NO_CATEGORY = "no category"  # how counts and notes call texts below the threshold
# the automatic threshold (see auto_threshold)
AUTO_FLOOR = 0.1
AUTO_CEILING = 0.9
AUTO_MIN_TEXTS = 20
AUTO_FALLBACK = 0.3
SCORE_DIGITS = 4
CHUNK = 8192  # texts compared with every category at once (8,192 x 5,000 x 4 bytes = 160 MB at most)
# category vectors a process keeps, by embedder identity and the categories' texts: the app reruns
# its page on every slider move, and embedding a codebook is the slow part
VECTORS_KEPT = 8
_VECTORS: Recent[np.ndarray] = Recent(VECTORS_KEPT)
CACHE_KIND = "codebook"  # the cache folder's entries of category vectors
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Category:
    name: str
    description: str = ""
    examples: tuple[str, ...] = ()

    @property
    def texts(self) -> tuple[str, ...]:
        """What its vector is made of: the name, the description (if any), the examples."""
        return (self.name, *([self.description] if self.description else []), *self.examples)


@dataclass(frozen=True)
class Codebook:
    """Categories in the order given. ``warnings`` are for the user to read before a run (one
    category; a thousand or more); ``notes`` say what the reader did (a header matched in
    another case, columns left out, blank rows skipped, the file's encoding)."""

    categories: tuple[Category, ...]
    source: str = ""
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.categories)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    def to_records(self) -> list[dict[str, Any]]:
        """The categories as the manifest keeps them."""
        return [
            {"name": c.name, "description": c.description, "examples": list(c.examples)}
            for c in self.categories
        ]


# --- reading -------------------------------------------------------------------------------------


def read_codebook(source: str | Path | bytes, name: str | None = None) -> Codebook:
    """A codebook from a table: CSV or TSV (encoding and delimiter detected as for the texts),
    Excel or Parquet. The header must have a column ``name`` (any case: ``Name`` is found); a
    ``description`` and an ``examples`` column (examples separated by ``|``) are optional; other
    columns are left out, and said so. Every cell is kept as written, trimmed: a name such as
    ``=SUM(A1)`` is a name, neutralised only when a spreadsheet file is written.

    Raises ``InputError`` (stage "codebook") naming the rows at fault: no ``name`` column, empty
    names, the same name twice (compared ignoring case and spaces), no category, more than
    ``MAX_CATEGORIES``."""
    label = name or (Path(source).name if isinstance(source, (str, Path)) else "codebook.csv")
    if isinstance(source, (str, Path)) and Path(source).is_file() and Path(source).stat().st_size > MAX_BYTES:
        raise _too_big(label, f"{Path(source).stat().st_size / 2**20:,.0f} MB")
    if isinstance(source, (bytes, bytearray, memoryview)) and len(source) > MAX_BYTES:
        raise _too_big(label, f"{len(source) / 2**20:,.0f} MB")
    try:
        table = read_table(source, label, limits=Limits(max_rows=0, max_cells=MAX_CATEGORIES * 1_000))
    except InputError as exc:
        raise InputError(f"the codebook {exc.message}", hint=exc.hint, stage=STAGE) from None
    frame = table.frame
    found = _find_columns([str(c) for c in frame.columns], label)
    notes = [note.removeprefix("input: ") for note in table.notes]
    if table.encoding and table.encoding not in ("utf-8", "utf-8-sig"):
        notes.append(f"{label} is not UTF-8; it was read as {table.encoding}")
    for column, header in found.items():
        if header != column:
            notes.append(f"the column {header!r} is read as {column!r} (headers are matched ignoring case)")
    others = [str(c) for c in frame.columns if str(c) not in found.values()]
    if others:
        notes.append("columns left out (a codebook reads name, description, examples): " + _listed(others))
    rows = [
        (
            position + 2,  # the header is row 1
            _cell(frame[found["name"]].iloc[position]),
            _cell(frame[found["description"]].iloc[position]) if "description" in found else "",
            _cell(frame[found["examples"]].iloc[position]) if "examples" in found else "",
        )
        for position in range(len(frame))
    ]
    return _build(rows, label, "row", notes)


def parse_codebook_text(text: str, name: str = "") -> Codebook:
    """A codebook typed in a box, one category per line::

        Billing: charges, refunds and invoices | I was charged twice | where is my invoice?
        Login problems | cannot sign in | the reset code never comes
        Praise

    The name comes first; ``: `` (a colon, then a space) starts the description; each ``|``
    starts an example. A colon inside a word (``10:30``, ``https://``) stays in the name; to put
    ``: `` in a name, upload a CSV instead. Blank lines and lines starting with ``#`` are skipped.
    The checks are ``read_codebook``'s, naming lines."""
    text = str(text)
    if len(text) > MAX_BYTES:
        raise _too_big(name, f"{len(text) / 2**20:,.0f} MB")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        head, _, examples = stripped.partition(EXAMPLE_SEPARATOR)
        label, description = _split_name(head)
        rows.append((number, label, description, examples))
    return _build(rows, name, "line", [])


def _the(label: str) -> str:
    """How messages call the codebook: by its file name, else as typed."""
    return f"the codebook {label}" if label else "the typed codebook"


def _split_name(head: str) -> tuple[str, str]:
    match = re.search(r":(\s|$)", head)
    if match is None:
        return head.strip(), ""
    return head[: match.start()].strip(), head[match.end() :].strip()


def _find_columns(columns: list[str], label: str) -> dict[str, str]:
    """The header of each codebook column found (``name`` required), matched as written first,
    then ignoring case and surrounding spaces."""
    found: dict[str, str] = {}
    for wanted in COLUMNS:
        if wanted in columns:
            found[wanted] = wanted
            continue
        same = [c for c in columns if c.strip().casefold() == wanted]
        if len(same) > 1:
            raise InputError(
                f"{_the(label)} has {len(same)} columns that read as {wanted!r}: {_listed(same)}",
                hint=f"keep one column headed {wanted!r} and rename or remove the others",
                stage=STAGE,
            )
        if same:
            found[wanted] = same[0]
    if "name" not in found:
        first = "" if len(columns) > 1 else " (the first line is read as the header)"
        raise InputError(
            f"{_the(label)} has no column 'name'; its columns are {_listed(columns)}{first}",
            hint="put a header row with a column named name (the categories), and optionally "
            "description and examples (examples separated by |)",
            stage=STAGE,
        )
    return found


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value).strip()


def _build(rows: list[tuple[int, str, str, str]], label: str, unit: str, notes: list[str]) -> Codebook:
    """Check the (row number, name, description, examples) read and make the codebook."""
    # emptiness and sameness are judged on the names as embedded (NFKC, invisible characters out)
    cleaned = clean_texts(pd.Series([row[1] for row in rows], dtype=object)).tolist()
    keys = {number: text.casefold() for (number, *_), text in zip(rows, cleaned, strict=True)}
    rows = [(number, name if keys[number] else "", *rest) for (number, name, *rest) in rows]
    blank = [number for number, name, description, examples in rows if not (name or description or examples)]
    skipped = set(blank)
    rows = [row for row in rows if row[0] not in skipped]
    if blank:
        notes.append(f"{len(blank)} empty {unit}(s) skipped ({_numbers(unit, blank)})")
    unnamed = [number for number, name, _, _ in rows if not name]
    if unnamed:
        raise InputError(
            f"{_the(label)} has {len(unnamed)} categor{'y' if len(unnamed) == 1 else 'ies'} "
            f"without a name ({_numbers(unit, unnamed)})",
            hint="give every category a name, or remove those " + unit + "s",
            stage=STAGE,
        )
    seen: dict[str, list[tuple[int, str]]] = {}
    for number, name, _, _ in rows:
        seen.setdefault(keys[number], []).append((number, name))
    repeated = [group for group in seen.values() if len(group) > 1]
    if repeated:
        shown = "; ".join(
            " and ".join(f"{name!r} ({unit} {number})" for number, name in group) for group in repeated[:5]
        )
        more = f"; and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        raise InputError(
            f"{_the(label)} names {len(repeated)} categor{'y' if len(repeated) == 1 else 'ies'} "
            f"more than once: {shown}{more}",
            hint="give each category one row (names are compared ignoring case and spaces); put "
            "more examples in that row's examples, separated by |",
            stage=STAGE,
        )
    if not rows:
        raise InputError(
            f"{_the(label)} has no categories",
            hint="add one category per " + unit + ", at least two to compare",
            stage=STAGE,
        )
    if len(rows) > MAX_CATEGORIES:
        raise InputError(
            f"{_the(label)} has {len(rows):,} categories; at most {MAX_CATEGORIES:,} are allowed",
            hint="group them into broader categories (examples can carry the detail), or leave the "
            "codebook out and let the clustering find the groups",
            stage=STAGE,
        )
    categories = tuple(
        Category(name, description, _examples(examples)) for _, name, description, examples in rows
    )
    warnings = []
    if len(categories) == 1:
        warnings.append(
            f"the codebook has one category, {categories[0].name!r}: every text that reaches the "
            "threshold gets it, whatever else it is about; add categories for the other kinds of "
            "text to tell them apart"
        )
    elif len(categories) >= MANY_CATEGORIES:
        n_texts = sum(len(c.texts) for c in categories)
        warnings.append(
            f"the codebook has {len(categories):,} categories: {n_texts:,} texts to embed once "
            f"(as many as {n_texts:,} rows of data), and each text is compared with every category "
            f"({len(categories):,} cosines per text); a few broad categories are easier to read"
        )
    return Codebook(categories, source=label or "typed", warnings=tuple(warnings), notes=tuple(notes))


def _examples(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split(EXAMPLE_SEPARATOR) if part.strip())


def _numbers(unit: str, numbers: list[int], shown: int = 10) -> str:
    listed = ", ".join(map(str, numbers[:shown])) + (", ..." if len(numbers) > shown else "")
    return f"{unit}{'s' if len(numbers) > 1 else ''} {listed}"


def _listed(names: Iterable[str], shown: int = 8) -> str:
    names = list(names)
    return ", ".join(map(repr, names[:shown])) + (
        f", ... ({len(names)} in all)" if len(names) > shown else ""
    )


def _too_big(label: str, size: str) -> InputError:
    return InputError(
        f"{_the(label)} is {size}; a codebook can be at most {MAX_BYTES // 2**20} MB",
        hint=f"keep one row per category (at most {MAX_CATEGORIES:,}), with a few examples each",
        stage=STAGE,
    )


# --- vectors and assignment ----------------------------------------------------------------------


def category_vectors(
    codebook: Codebook, embedder: Embedder, cache: str | Path | Cache | None = None
) -> np.ndarray:
    """One unit float32 vector per category: the normalised mean of the normalised embeddings of
    its name, description and examples, each cleaned as the texts were. The last
    ``VECTORS_KEPT`` codebooks' vectors are kept per embedder identity, and in ``cache`` (the
    run's cache folder) when one is given: a new process (the app's Export after a restart) then
    reads them back instead of loading the model."""
    pieces = [tuple(_clean(c.texts)) for c in codebook.categories]
    key = (str(embedder.identity), tuple(pieces))
    return _VECTORS.get(key, lambda: _stored_vectors(key, embedder, cache))


def _stored_vectors(
    key: tuple[str, tuple], embedder: Embedder, cache: str | Path | Cache | None
) -> np.ndarray:
    store = cache if isinstance(cache, Cache) or cache is None else Cache(cache)
    entry = chain_key("category vectors", *key)
    found = store.lookup(CACHE_KIND, entry) if store is not None and store.enabled else MISSING
    if found is not MISSING:
        vectors = np.asarray(found, dtype=np.float32)
        vectors.flags.writeable = False
        return vectors
    vectors = _category_vectors(list(key[1]), embedder)
    if store is not None and store.writable:
        try:
            store.get_or_compute(CACHE_KIND, entry, lambda: vectors)
        except OSError as exc:  # a full disk costs the stored copy, not the answer
            log.warning("codebook: the category vectors could not be cached (%s)", exc.strerror or exc)
    return vectors


def _category_vectors(pieces: list[tuple[str, ...]], embedder: Embedder) -> np.ndarray:
    flat = [text for texts in pieces for text in texts]
    embedded = np.asarray(embedder.encode(flat), dtype=np.float32).reshape(len(flat), -1)
    embedded = embedded / np.maximum(np.linalg.norm(embedded, axis=1, keepdims=True), 1e-12)
    owner = np.repeat(np.arange(len(pieces)), [len(texts) for texts in pieces])
    sums = np.zeros((len(pieces), embedded.shape[1]), dtype=np.float64)
    np.add.at(sums, owner, embedded)
    vectors = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    vectors.flags.writeable = False  # shared by every caller
    return vectors


def _clean(texts: Iterable[str]) -> list[str]:
    cleaned = clean_texts(pd.Series(list(texts), dtype=object)).tolist()
    return [text for text in cleaned if text] or [""]


@dataclass(frozen=True, eq=False)
class Assignment:
    """Each distinct text's closest category and its cosine, and the threshold chosen.

    ``best[i]`` is the index in ``codebook.categories`` of distinct text ``i``'s closest category,
    ``scores[i]`` their cosine (float32), ``second[i]`` the cosine of the next closest (NaN with
    one category). ``row_to_unique`` and ``counts`` are the result's (``Corpus``), so rows can be
    counted and written. Everything that takes a ``threshold`` takes another one too, computed
    from these arrays alone (no model, no cosine): the app's live preview."""

    codebook: Codebook
    best: np.ndarray
    scores: np.ndarray
    second: np.ndarray
    row_to_unique: np.ndarray
    counts: np.ndarray
    threshold: float  # the one in use: the setting, or what the automatic rule chose
    automatic: bool
    rule: str = ""  # how the threshold was chosen, in words

    def matched(self, threshold: float | None = None) -> np.ndarray:
        """True per distinct text that gets a category at ``threshold`` (default: this one's)."""
        at = self._at(threshold)
        if at <= -1.0:  # every text, whatever rounding did to a cosine of -1
            return np.ones(len(self.scores), dtype=bool)
        return self.scores >= at

    def at(self, threshold: float) -> Assignment:
        """The same assignment at another threshold (the one the user settled on), for writing."""
        if not -1.0 <= float(threshold) <= 1.0:
            raise _bad_threshold(threshold)
        return dataclasses.replace(self, threshold=float(threshold), automatic=False, rule="set")

    def _at(self, threshold: float | None) -> float:
        return self.threshold if threshold is None else float(threshold)

    def preview(self, threshold: float | None = None) -> pd.DataFrame:
        """Per category in codebook order, then no category: ``category`` (<NA> for no category),
        ``rows`` and ``texts`` (distinct) that get it at ``threshold``, and ``share`` of the rows
        that have text. Rows without text are in none of them."""
        matched = self.matched(threshold)
        k = len(self.codebook)
        texts = np.bincount(self.best[matched], minlength=k)
        rows = np.bincount(self.best[matched], weights=self.counts[matched], minlength=k).astype(np.int64)
        total = int(self.counts.sum())
        frame = pd.DataFrame(
            {
                "category": pd.array([*self.codebook.names, None], dtype="string"),
                "rows": np.append(rows, total - rows.sum()).astype(np.int64),
                "texts": np.append(texts, int((~matched).sum())).astype(np.int64),
            }
        )
        frame["share"] = frame["rows"] / max(total, 1)
        return frame

    def columns(self, threshold: float | None = None) -> pd.DataFrame:
        """``category`` (the name; "" for no category and for rows without text) and
        ``category_score`` (the cosine, rounded; NaN where there is no category), one row per row
        of ``result.table()``."""
        index = self.row_to_unique
        has_text = index >= 0
        safe = np.where(has_text, index, 0)
        matched = has_text & self.matched(threshold)[safe]
        names = np.asarray(self.codebook.names, dtype=object)
        category = np.where(matched, names[self.best[safe]] if len(names) else "", "")
        score = np.where(matched, np.round(self.scores[safe].astype(np.float64), SCORE_DIGITS), np.nan)
        return pd.DataFrame(
            {"category": pd.array(category, dtype="string"), "category_score": score.astype(np.float64)}
        )

    def summary(self, threshold: float | None = None) -> str:
        """One line: "2,310 of 3,080 texts matched a category (threshold 0.41, automatic); 770
        have none" (counting rows with text)."""
        at = self._at(threshold)
        frame = self.preview(threshold)
        total = int(frame["rows"].sum())
        none = int(frame["rows"].iloc[-1])
        how = "automatic" if self.automatic and threshold is None else "set"
        line = (
            f"{total - none:,} of {total:,} texts matched a category (threshold {at:.2f}, {how}); "
            f"{none:,} {'has' if none == 1 else 'have'} {NO_CATEGORY}"
        )
        without = int((self.row_to_unique < 0).sum())
        rows = f"{without:,} row has" if without == 1 else f"{without:,} rows have"
        return line + (f"; {rows} no text" if without else "")

    def manifest(self, threshold: float | None = None) -> dict[str, Any]:
        """What the manifest records: the categories, the threshold and how it was chosen, and
        the rows per category."""
        frame = self.preview(threshold)
        return {
            "source": self.codebook.source,
            "categories": self.codebook.to_records(),
            "threshold": round(self._at(threshold), SCORE_DIGITS),
            "automatic": bool(self.automatic and threshold is None),
            "rule": self.rule if threshold is None else "set",
            "rows": {name: int(n) for name, n in zip(self.codebook.names, frame["rows"], strict=False)},
            "no_category": int(frame["rows"].iloc[-1]),
            "rows_without_text": int((self.row_to_unique < 0).sum()),
            "warnings": list(self.codebook.warnings),
        }


def assign(
    result: Result,
    codebook: Codebook,
    embedder: Embedder,
    threshold: float = 0.0,
    cache: str | Path | Cache | None = None,
) -> Assignment:
    """Each distinct text of ``result`` gets its closest category of ``codebook`` when their
    cosine reaches ``threshold`` (0: ``auto_threshold``; -1: every text). ``embedder`` must be the
    one that embedded the texts (``search.run_embedder(result)`` gives it). ``cache``: where the
    categories' vectors are kept (``category_vectors``)."""
    _check_identity(result, embedder)
    if not -1.0 <= float(threshold) <= 1.0:
        raise _bad_threshold(threshold)
    vectors = category_vectors(codebook, embedder, cache)
    search.check_identity(result, embedder, what="the categories", stage=STAGE, dims=vectors.shape[1])
    best, scores, second = nearest(result.embeddings.vectors, vectors)
    if float(threshold) == 0.0:
        chosen, rule = auto_threshold(scores, second)
    else:
        chosen, rule = float(threshold), "set"
    return Assignment(
        codebook=codebook,
        best=best,
        scores=scores,
        second=second,
        row_to_unique=np.asarray(result.corpus.row_to_unique, dtype=np.int64),
        counts=np.asarray(result.corpus.counts, dtype=np.int64),
        threshold=chosen,
        automatic=float(threshold) == 0.0,
        rule=rule,
    )


def _bad_threshold(threshold: float) -> InputError:
    return InputError(
        f"the threshold {threshold!r} is not a cosine similarity",
        hint="give -1..1 (0 = automatic; -1 = every text gets its closest category)",
        stage=STAGE,
    )


def _check_identity(result: Result, embedder: Embedder) -> None:
    """search's check (the texts' model is the one at hand), said for a codebook."""
    search.check_identity(
        result,
        embedder,
        what="the categories",
        hint="assign with the run's own model (search.run_embedder), or re-run the clustering "
        "with the model at hand",
        stage=STAGE,
    )


def nearest(texts: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``texts`` (unit vectors): the index of the closest of ``vectors``, that cosine,
    and the cosine of the next closest (NaN with one vector). In chunks of ``CHUNK`` texts, so a
    million texts and 5,000 categories never hold the whole matrix."""
    n, k = len(texts), len(vectors)
    best = np.zeros(n, dtype=np.int64)
    scores = np.full(n, np.nan, dtype=np.float32)
    second = np.full(n, np.nan, dtype=np.float32)
    matrix = np.asarray(vectors, dtype=np.float32).T
    for start in range(0, n, CHUNK):
        sims = np.asarray(texts[start : start + CHUNK], dtype=np.float32) @ matrix
        top = np.argmax(sims, axis=1)
        rows = np.arange(len(sims))
        best[start : start + CHUNK] = top
        scores[start : start + CHUNK] = sims[rows, top]
        if k > 1:
            sims[rows, top] = -np.inf
            second[start : start + CHUNK] = sims.max(axis=1)
    return best, scores, second


# --- the automatic threshold ---------------------------------------------------------------------


def auto_threshold(scores: np.ndarray, second: np.ndarray | None = None) -> tuple[float, str]:
    """The threshold ``codebook.threshold = 0`` stands for, and how it was chosen (in words).

    Otsu's cut of the distinct texts' best scores: the cosine that splits them into a high group
    and a low group as cleanly as possible (the largest between-group variance). Which cosine
    means "this text belongs here" depends on the codebook: two-word intent names reach 0.6 on
    the texts they name, one-word topics such as "World" 0.15 (``pipeline.bench_codebook``), so no
    fixed cosine fits every codebook, while the texts a category describes score clearly above
    the rest. The cut is never below ``AUTO_FLOOR`` (below it, texts and categories share next
    to nothing) nor above ``AUTO_CEILING``; with fewer than ``AUTO_MIN_TEXTS`` texts, or scores
    all alike, it is ``AUTO_FALLBACK``. ``second`` is not used by this rule."""
    values = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    if len(values) < AUTO_MIN_TEXTS or values[-1] - values[0] < 1e-6:
        return AUTO_FALLBACK, f"{AUTO_FALLBACK} (too few texts or scores to choose from)"
    cut = round(_otsu(values), SCORE_DIGITS)
    if cut < AUTO_FLOOR:
        return AUTO_FLOOR, f"the floor {AUTO_FLOOR} (Otsu's cut of the best scores, {cut:.2f}, is below it)"
    if cut > AUTO_CEILING:
        return (
            AUTO_CEILING,
            f"the ceiling {AUTO_CEILING} (Otsu's cut of the best scores, {cut:.2f}, is above it)",
        )
    return cut, "Otsu's cut of the best scores"


def _otsu(values: np.ndarray) -> float:
    """The midpoint between two neighbouring sorted ``values`` that maximises the between-group
    variance w0 * w1 * (mean0 - mean1)^2 (Otsu 1979), exactly, without a histogram."""
    n = len(values)
    below = np.cumsum(values)[:-1]  # sums of the lower group, split after each position
    w0 = np.arange(1, n, dtype=np.float64)
    w1 = n - w0
    m0 = below / w0
    m1 = (values.sum() - below) / w1
    between = w0 * w1 * (m0 - m1) ** 2
    between[values[1:] == values[:-1]] = -1.0  # split only between different values
    i = int(np.argmax(between))
    return float((values[i] + values[i + 1]) / 2)


# --- where the codebook falls short --------------------------------------------------------------


def uncovered_clusters(
    assignment: Assignment,
    labels: np.ndarray,
    names: dict[int, str],
    threshold: float | None = None,
) -> pd.DataFrame:
    """The clusters that hold the rows with no category, most first: cluster_id, cluster_label,
    rows (with no category), share_of_cluster. ``labels`` (per distinct text) and ``names`` are the
    caller's: the edited ones (``Edited.labels``, ``Edited.names``) show renames and merges."""
    labels = np.asarray(labels, dtype=np.int64)
    missed = ~assignment.matched(threshold)
    weights = assignment.counts.astype(np.float64)
    sizes = pd.Series(weights).groupby(labels).sum()
    found = pd.Series(weights[missed]).groupby(labels[missed]).sum()
    frame = pd.DataFrame(
        {
            "cluster_id": found.index.astype(np.int64),
            "cluster_label": [search.cluster_name(names, int(c)) for c in found.index],
            "rows": found.to_numpy().astype(np.int64),
            "share_of_cluster": (found / sizes.loc[found.index]).to_numpy(),
        }
    )
    frame = frame[frame["rows"] > 0]
    return frame.sort_values(["rows", "cluster_id"], ascending=[False, True], ignore_index=True)


def add_columns(table: pd.DataFrame, columns: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``table`` (``result.table()``) with ``category`` and ``category_score`` at the end; an
    input column already named so is renamed ``<name>_input`` (``_input_2``, ...), and said."""
    out = table.copy()
    notes = []
    taken = {str(c) for c in out.columns}
    for column in OUTPUT_COLUMNS:
        if column in taken:
            new, number = f"{column}_input", 2
            while new in taken or new in OUTPUT_COLUMNS:
                new, number = f"{column}_input_{number}", number + 1
            out = out.rename(columns={column: new})
            taken.add(new)
            notes.append(
                f"the input column {column!r} is named {new!r} in the output table (the codebook adds "
                f"its own {column!r})"
            )
    for column in OUTPUT_COLUMNS:
        out[column] = columns[column].to_numpy() if column == "category_score" else columns[column].array
    return out, notes


__all__ = [
    "Assignment",
    "Category",
    "Codebook",
    "add_columns",
    "assign",
    "auto_threshold",
    "category_vectors",
    "nearest",
    "parse_codebook_text",
    "read_codebook",
    "uncovered_clusters",
]
