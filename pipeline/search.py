"""Search a result: by words (plain text or a regular expression) or by meaning (cosine over the
kept embeddings), and count the matches per cluster.

Every search returns ``Matches``: the rows of ``result.table()`` that match, best first, and the
distinct texts they carry (the map's points: ``plots.map_frame`` has one point per distinct text,
its index the distinct-text index). Cluster ids and names come from the caller, so the analyst's
edits (``edits.Edited.labels`` / ``.names``) show in the counts and the summary sentence.

Regular expressions run in linear time where they can. The words search runs on Arrow's string
kernels (RE2, vectorised, no backtracking: no pattern can stall it); a pattern only Python's
engine can run with Python's meaning (lookarounds, backreferences, Unicode ``\\b \\w \\d \\s`` on
non-ASCII text, ``$`` before a newline, ...) runs in the ``regex`` package, the ``re``-compatible
engine that can stop a match: the whole search gets ``REGEX_BUDGET_S`` seconds and then says it
took too long. (Python's own ``re`` has no timeout: a pattern such as ``(a|aa)+$`` on a long run
of a's would hold the server, and the GIL, for minutes.) Patterns are checked with ``re`` first,
so the syntax and the error messages are Python's.
"""

from __future__ import annotations

import re
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import regex as regex_package  # not `regex`: that is search_words' switch

from .context import Runtime
from .embedders import Embedder, load_embedder
from .errors import InputError
from .recent import Recent
from .result import Result, output_names
from .stages.preprocess import clean_texts
from .types import NOISE_LABEL

STAGE = "search"
MAX_QUERY_CHARS = 1000  # longer queries are refused: nobody types them, a pattern's cost grows with them
# a search in Python's engine stops after this many seconds (all texts together), or when one text
# takes TEXT_BUDGET_S of CPU time (the regex package's timeout counts CPU time, and a wall-clock
# deadline between texts cannot stop a text that backtracks for ever)
REGEX_BUDGET_S = 2.0
TEXT_BUDGET_S = 0.25
TOP_K = 200  # distinct texts a meaning search returns by default
SIMILAR_K = 50
NO_TEXT_LABEL = "rows without text"  # per_cluster's group of matched rows that have no clustered text
NAMED_IN_SUMMARY = 3  # the summary sentence names at most this many clusters
# query vectors a process keeps, by embedder identity and query: the app reruns its page on every
# click, and a query's encode is the slow part of a meaning search (tens of ms, more on a busy CPU)
QUERIES_KEPT = 64
_QUERY_VECTORS: Recent[np.ndarray] = Recent(QUERIES_KEPT)
REGEX_HINT = "turn off 'Regular expression' to search for the text as typed, or fix the pattern"

# A letter, mark, digit or underscore: what a whole word may not touch (Python's \w, and marks, so
# a Hindi or Thai word is not cut at a vowel sign)
_WORD = r"\p{L}\p{M}\p{N}_"
# Constructs RE2 reads differently from Python (an odd number of backslashes before the letter):
# \b \w \d \s are ASCII-only in RE2 (Unicode in Python); "$" also matches before a final newline in
# Python; "{,n}" is a repeat in Python and literal text in RE2; "[:alpha:]" a class in RE2 only
_UNICODE_CLASS = re.compile(r"(?<!\\)(?:\\\\)*\\[bBwWdDsS]")
_DOLLAR = re.compile(r"(?<!\\)(?:\\\\)*\$")
_PYTHON_ONLY = re.compile(r"(?<!\\)(?:\\\\)*(?:\{,|\[:)")
# inline global flags such as (?i) at the start of a pattern
_GLOBAL_FLAGS = re.compile(r"((?:\(\?[aiLmsux]+\))*)(.*)", re.DOTALL)


@dataclass(frozen=True, eq=False)
class Matches:
    """What a search found.

    ``rows`` are positions in ``result.table()`` (and ``result.corpus.row_to_unique``), best first:
    score descending, then position. ``row_texts[i]`` is the distinct text of ``rows[i]`` (-1: the
    row has no usable text; only a search over another column finds such rows). ``texts`` are the
    distinct texts matched, each once, best first, with their ``text_scores``: the points to
    highlight on the map. Scores are 1.0 for words, the cosine for meaning."""

    rows: np.ndarray  # int64
    scores: np.ndarray  # float32, per row
    row_texts: np.ndarray  # int64, per row
    texts: np.ndarray  # int64
    text_scores: np.ndarray  # float32, per distinct text
    query: str
    mode: str  # "words", "meaning" or "similar"
    column: str | None = None  # the column searched by words; None = the clustered text
    truncated: bool = False  # a meaning search stopped at top_k texts with more above min_score

    def __len__(self) -> int:
        return len(self.rows)

    def text_mask(self, n_texts: int) -> np.ndarray:
        """True per distinct text that matched (the map's highlighted points)."""
        mask = np.zeros(n_texts, dtype=bool)
        mask[self.texts] = True
        return mask


# --- words ---------------------------------------------------------------------------------------


def search_words(
    result: Result,
    query: str,
    *,
    column: str | None = None,
    regex: bool = False,
    case: bool = False,
    whole_word: bool = False,
) -> Matches:
    """Rows whose text contains ``query``: as typed, or as a Python regular expression
    (``regex=True``); case-insensitive unless ``case``; with ``whole_word``, only where it is not
    part of a longer word (not next to a letter, digit or underscore).

    ``column=None`` searches the clustered texts (clean, as embedded; a typed query is cleaned the
    same way), every row with that text matching; a column name (as ``result.table()`` names it,
    the text column included) searches that column's cells as text, missing values never
    matching. Every match is kept (a million rows are 8 MB of positions): ``per_cluster`` counts
    them all; list the first few with ``matches_table(limit=...)``."""
    _check_query(query)
    corpus = result.corpus
    if column is None:
        values = corpus.texts
        codes = corpus.row_to_unique
        typed = query if regex else _clean(query)
    else:
        values, codes = _column_values(result, column)
        typed = query
    hit = _contains(values, typed, regex=regex, case=case, whole_word=whole_word)
    rows = np.flatnonzero((codes >= 0) & hit[np.maximum(codes, 0)]) if len(hit) else np.zeros(0, np.int64)
    rows = rows.astype(np.int64)
    row_texts = corpus.row_to_unique[rows].astype(np.int64)
    texts = np.unique(row_texts[row_texts >= 0])
    return Matches(
        rows=rows,
        scores=np.ones(len(rows), dtype=np.float32),
        row_texts=row_texts,
        texts=texts,
        text_scores=np.ones(len(texts), dtype=np.float32),
        query=query,
        mode="words",
        column=column,
    )


def _check_query(query: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise InputError("the search is empty", hint="type a word, a phrase or a pattern", stage=STAGE)
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(
            f"the search is {len(query):,} characters long; it can be at most {MAX_QUERY_CHARS:,}",
            hint="search for a shorter phrase",
            stage=STAGE,
        )


def _clean(query: str) -> str:
    """The query cleaned as the texts were (NFKC, invisible characters out, spaces collapsed)."""
    cleaned = str(clean_texts(pd.Series([query], dtype=object)).iloc[0])
    if not cleaned:
        raise InputError("the search is empty", hint="type a word, a phrase or a pattern", stage=STAGE)
    return cleaned


def _column_values(result: Result, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A column's distinct values as text, and each row's value index (-1: missing)."""
    frame = result.corpus.table.frame
    names = [str(new) for _, new in output_names(frame.columns)]
    if str(column) not in names:
        raise InputError(
            f"there is no column {str(column)!r} to search; the columns are "
            + ", ".join(repr(n) for n in names),
            hint="pick one of those columns",
            stage=STAGE,
        )
    cells = frame.iloc[:, names.index(str(column))]
    try:
        codes, uniques = pd.factorize(cells, use_na_sentinel=True)
        values = np.asarray([str(v) for v in uniques], dtype=object)
    except TypeError:  # unhashable cells (lists from Parquet): search their text
        missing = cells.isna().to_numpy()
        text = cells.astype(str).where(~missing)
        codes, uniques = pd.factorize(text, use_na_sentinel=True)
        values = np.asarray(uniques, dtype=object)
    return values, np.asarray(codes, dtype=np.int64)


def _contains(values: np.ndarray, query: str, *, regex: bool, case: bool, whole_word: bool) -> np.ndarray:
    """True per value that contains ``query``."""
    if regex:
        _check_pattern(query, case)
    if not len(values):
        return np.zeros(0, dtype=bool)
    array = pa.array(values, type=pa.large_string(), from_pandas=True)
    if regex:
        return _regex_contains(array, values, query, case=case, whole_word=whole_word)
    if whole_word:
        # every character that could mean something to RE2 written as its code point
        literal = "".join(c if c.isalnum() else f"\\x{{{ord(c):x}}}" for c in query)
        pattern = rf"(?:^|[^{_WORD}]){literal}(?:$|[^{_WORD}])"
        return _bools(pc.match_substring_regex(array, pattern, ignore_case=not case))
    return _bools(pc.match_substring(array, query, ignore_case=not case))


def _check_pattern(query: str, case: bool) -> None:
    """Compile with Python's ``re``: its syntax and its messages."""
    try:
        with warnings.catch_warnings():  # "possible nested set" and the like: not for the user
            warnings.simplefilter("ignore")
            re.compile(query, 0 if case else re.IGNORECASE)
    except re.error as exc:
        raise InputError(
            f"the pattern {query!r} is not a valid regular expression: {exc}", hint=REGEX_HINT, stage=STAGE
        ) from None
    except (OverflowError, RecursionError, ValueError) as exc:  # e.g. a{99999999999}, deep nesting
        raise InputError(
            f"the pattern {query!r} cannot be used: {exc}", hint=REGEX_HINT, stage=STAGE
        ) from None


def _regex_contains(
    array: pa.Array, values: np.ndarray, query: str, *, case: bool, whole_word: bool
) -> np.ndarray:
    """RE2 (linear time) on the values where it means what Python means, Python's engine on a
    budget on the others (all of them for a pattern RE2 cannot run).

    A whole word is the pattern not touching a word character: RE2 has no lookarounds, so there
    the neighbours are matched (the same values match: only whether one does counts)."""
    flags, body = _GLOBAL_FLAGS.match(query).groups()  # Python wants them first: kept first
    if "x" in flags:  # verbose: a comment at the end would swallow the closing parenthesis
        body += "\n"
    agree = _re2_agrees(query, array)
    hit = np.zeros(len(values), dtype=bool)
    if agree.any():
        pattern = rf"{flags}(?:^|[^{_WORD}])(?:{body})(?:$|[^{_WORD}])" if whole_word else query
        try:
            hit = _bools(pc.match_substring_regex(array, pattern, ignore_case=not case))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            agree[:] = False  # lookarounds, backreferences, \Z, possessive repeats...: not in RE2
    if not agree.all():
        others = np.flatnonzero(~agree)
        pattern = rf"{flags}(?<![{_WORD}])(?:{body})(?![{_WORD}])" if whole_word else query
        hit[others] = _python_contains(values[others], pattern, case, shown=query)
    return hit


def _re2_agrees(pattern: str, array: pa.Array) -> np.ndarray:
    """Per value: whether RE2 reads ``pattern`` on it as Python does (where RE2 accepts it)."""
    if _PYTHON_ONLY.search(pattern):
        return np.zeros(len(array), dtype=bool)
    differs = np.zeros(len(array), dtype=bool)
    if _UNICODE_CLASS.search(pattern):  # the same on ASCII, but for Python's rarer spaces
        differs |= ~_bools(pc.string_is_ascii(array))
        differs |= _bools(pc.match_substring_regex(array, r"[\x0b\x1c-\x1f]"))
    if _DOLLAR.search(pattern):
        differs |= _bools(pc.match_substring(array, "\n"))
    return ~differs


def _python_contains(values: np.ndarray, pattern: str, case: bool, shown: str) -> np.ndarray:
    """Python's semantics through the ``regex`` package (``re``-compatible, VERSION0), stopped after
    ``REGEX_BUDGET_S`` in all or ``TEXT_BUDGET_S`` on one text; the GIL is released while it
    matches, so the server's other sessions go on meanwhile."""
    try:
        compiled = regex_package.compile(pattern, 0 if case else regex_package.IGNORECASE)
    except (regex_package.error, OverflowError, RecursionError, ValueError) as exc:
        raise InputError(
            f"the pattern {shown!r} cannot be used: {exc}", hint=REGEX_HINT, stage=STAGE
        ) from None
    deadline = time.monotonic() + REGEX_BUDGET_S
    clock = time.monotonic

    def found(text: str) -> bool:
        left = deadline - clock()
        if left <= 0:
            raise TimeoutError
        return compiled.search(text, timeout=min(left, TEXT_BUDGET_S), concurrent=True) is not None

    try:
        return np.fromiter((found(str(v)) for v in values), dtype=bool, count=len(values))
    except TimeoutError:
        raise InputError(
            f"the pattern {shown!r} took too long and was stopped",
            hint="lookarounds and backreferences ((?=, (?<=, \\1) run in Python's slower engine, and "
            "nested repeats such as (a+)+ can take exponential time: simplify the pattern, or turn "
            "off 'Regular expression' to search for the text as typed",
            stage=STAGE,
        ) from None


def _bools(found: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


# --- meaning -------------------------------------------------------------------------------------


def run_embedder(result: Result, runtime: Runtime | None = None) -> Embedder:
    """The embedder that made ``result``'s vectors, to embed a query with: ``runtime.embedder``
    when one is given, else the run's model through ``embedders.load_embedder`` (made once per
    process; its weights load on the first ``encode``, or ahead with ``embedders.load``).

    Raises InputError when it is not the run's model (its identity differs)."""
    runtime = runtime or Runtime()
    embedder = runtime.embedder or load_embedder(
        result.config.embed, runtime.device, runtime.batch_size, models_dir=runtime.models_folder
    )
    check_identity(result, embedder)
    return embedder


def check_identity(
    result: Result,
    embedder: Embedder,
    *,
    what: str = "the query",
    hint: str = "search by meaning with the run's own model (search.run_embedder), re-run the "
    "clustering with the model at hand, or search by words",
    stage: str = STAGE,
    dims: int | None = None,
) -> None:
    """Refuse to compare ``what`` embedded by ``embedder`` with the texts when the texts were
    embedded by another model (cosines between two models' vectors mean nothing), or when its
    vectors have ``dims`` dimensions and the texts' another number."""
    made_by, query_by = result.embeddings.model, getattr(embedder, "identity", "?")
    if made_by != query_by:
        raise InputError(
            f"the texts were embedded by {made_by}, but {what} would be embedded by {query_by}; "
            "scores between vectors of two models mean nothing",
            hint=hint,
            stage=stage,
        )
    texts_dims = result.embeddings.vectors.shape[1]
    if dims is not None and dims != texts_dims:
        raise InputError(
            f"{what}'s vectors have {dims} dimensions, the texts' {texts_dims}",
            hint="use the model that made the result (search.run_embedder)",
            stage=stage,
        )


def search_meaning(
    result: Result, query: str, embedder: Embedder, *, top_k: int = TOP_K, min_score: float | None = None
) -> Matches:
    """The ``top_k`` distinct texts nearest ``query`` in meaning (cosine of the query's vector,
    from the run's own ``embedder``, to the kept embeddings), at least ``min_score`` when given;
    every row carrying one of them, best first."""
    _check_query(query)
    check_identity(result, embedder)
    vector = query_vector(embedder, query)
    check_identity(result, embedder, dims=vector.shape[0])
    return _nearest(result, result.embeddings.vectors @ vector, query, "meaning", top_k, min_score)


def query_vector(embedder: Embedder, query: str) -> np.ndarray:
    """``query`` (cleaned as the texts were) embedded by ``embedder``, as a unit float32 vector;
    the last ``QUERIES_KEPT`` are kept per embedder identity, so a rerun does not encode again."""
    key = (str(embedder.identity), _clean(query))
    return _QUERY_VECTORS.get(key, lambda: _unit_vector(embedder, key[1]))


def _unit_vector(embedder: Embedder, text: str) -> np.ndarray:
    vector = np.array(embedder.encode([text]), dtype=np.float32).reshape(-1)
    vector /= max(float(np.linalg.norm(vector)), 1e-12)
    vector.flags.writeable = False  # shared by every caller
    return vector


def similar_to(
    result: Result, text_index: int, *, top_k: int = SIMILAR_K, min_score: float | None = None
) -> Matches:
    """Find texts like this one: the ``top_k`` distinct texts nearest distinct text ``text_index``
    (by its own kept vector; no model needed), itself and its rows left out."""
    n_texts = result.corpus.n_texts
    if not 0 <= int(text_index) < n_texts:
        raise InputError(
            f"there is no text number {text_index} (the result has {n_texts:,} distinct texts)",
            hint="pick a row of the table",
            stage=STAGE,
        )
    vectors = result.embeddings.vectors
    scores = np.array(vectors @ np.asarray(vectors[int(text_index)], dtype=np.float32), dtype=np.float32)
    scores[int(text_index)] = -np.inf  # never itself
    return _nearest(result, scores, str(result.corpus.texts[int(text_index)]), "similar", top_k, min_score)


def similar_to_row(
    result: Result, row: int, *, top_k: int = SIMILAR_K, min_score: float | None = None
) -> Matches:
    """``similar_to`` the text of a row of ``result.table()`` (a position)."""
    index = result.corpus.row_to_unique
    if not 0 <= int(row) < len(index):
        raise InputError(
            f"there is no row {row} (the table has {len(index):,} rows)",
            hint="pick a row of the table",
            stage=STAGE,
        )
    if index[int(row)] < 0:
        why = result.corpus.issues[int(row)] or "no usable text"
        raise InputError(
            f"row {row} has no text to compare ({why})", hint="pick a row that has text", stage=STAGE
        )
    return similar_to(result, int(index[int(row)]), top_k=top_k, min_score=min_score)


def _nearest(
    result: Result, scores: np.ndarray, query: str, mode: str, top_k: int, min_score: float | None
) -> Matches:
    """The best ``top_k`` distinct texts by ``scores`` (one per distinct text) and their rows."""
    if int(top_k) < 1:
        raise InputError(
            f"top_k must be at least 1, found {top_k}", hint="ask for 1 or more texts", stage=STAGE
        )
    scores = np.asarray(scores, dtype=np.float32)
    eligible = np.isfinite(scores)
    if min_score is not None:
        eligible &= scores >= float(min_score)
    candidates = np.flatnonzero(eligible)
    truncated = len(candidates) > top_k
    if truncated:
        part = np.argpartition(-scores[candidates], top_k - 1)[:top_k]
        candidates = candidates[part]
    texts = candidates[np.lexsort((candidates, -scores[candidates]))].astype(np.int64)
    text_scores = scores[texts]
    # every row of a chosen text, by its text's score, then position
    chosen = np.zeros(len(scores), dtype=bool)
    chosen[texts] = True
    index = result.corpus.row_to_unique
    rows = np.flatnonzero((index >= 0) & chosen[np.maximum(index, 0)])
    row_scores = scores[index[rows]]
    order = np.lexsort((rows, -row_scores))
    rows, row_scores = rows[order].astype(np.int64), row_scores[order]
    return Matches(
        rows=rows,
        scores=row_scores,
        row_texts=index[rows].astype(np.int64),
        texts=texts,
        text_scores=text_scores,
        query=query,
        mode=mode,
        truncated=truncated,
    )


# --- per cluster ---------------------------------------------------------------------------------


def per_cluster(
    matches: Matches, labels: np.ndarray, names: dict[int, str], counts: np.ndarray | None = None
) -> pd.DataFrame:
    """Matched rows per cluster: cluster_id (Int64; <NA> for matched rows without text),
    cluster_label, matches, share_of_cluster (matches / the cluster's rows; NaN without
    ``counts``, the rows per distinct text: ``result.corpus.counts``), most matches first.

    ``labels`` (cluster id per distinct text) and ``names`` are the caller's: pass the edited ones
    (``Edited.labels``, ``Edited.names``) so renames and merges show."""
    labels = np.asarray(labels, dtype=np.int64)
    has_text = matches.row_texts >= 0
    found = pd.Series(labels[matches.row_texts[has_text]]).value_counts()
    sizes: dict[int, int] = {}
    if counts is not None:
        sizes = {int(c): int(n) for c, n in pd.Series(counts).groupby(labels).sum().items()}
    rows: list[dict[str, Any]] = [
        {
            "cluster_id": int(cid),
            "cluster_label": cluster_name(names, int(cid)),
            "matches": int(n),
            "share_of_cluster": n / sizes[int(cid)] if int(cid) in sizes else np.nan,
        }
        for cid, n in found.items()
    ]
    rows.sort(key=lambda r: (-r["matches"], r["cluster_id"] == -1, r["cluster_id"]))
    without = int((~has_text).sum())
    if without:
        rows.append(
            {
                "cluster_id": None,
                "cluster_label": NO_TEXT_LABEL,
                "matches": without,
                "share_of_cluster": np.nan,
            }
        )
    frame = pd.DataFrame(rows, columns=["cluster_id", "cluster_label", "matches", "share_of_cluster"])
    frame["cluster_id"] = frame["cluster_id"].astype("Int64")
    frame["matches"] = frame["matches"].astype(np.int64)
    frame["share_of_cluster"] = frame["share_of_cluster"].astype(np.float64)
    return frame


def summary_line(clusters: pd.DataFrame) -> str:
    """One sentence from ``per_cluster``'s table, counting rows: "42 matches: 30 in 'card
    declined', 8 in 'lost card' and 4 in 2 other clusters". Up to three clusters are all named;
    past that the two with most matches, and the rest together. Labels are the user's text: show
    the sentence as text (never as Markdown)."""
    total = int(clusters["matches"].sum()) if len(clusters) else 0
    if total == 0:
        return "No matches"
    head = f"{total:,} {'match' if total == 1 else 'matches'}"
    named = clusters[clusters["cluster_id"].notna()]
    without = int(clusters.loc[clusters["cluster_id"].isna(), "matches"].sum())
    if len(named) == 1 and not without:
        return f"{head}, all in '{named['cluster_label'].iloc[0]}'"
    shown = named if len(named) <= NAMED_IN_SUMMARY else named.iloc[: NAMED_IN_SUMMARY - 1]
    parts = [
        f"{int(n):,} in '{label}'" for label, n in zip(shown["cluster_label"], shown["matches"], strict=True)
    ]
    rest = named.iloc[len(shown) :]
    if len(rest):
        parts.append(f"{int(rest['matches'].sum()):,} in {len(rest):,} other clusters")
    if without:
        parts.append(f"{without:,} in {NO_TEXT_LABEL}")
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{head}: {listed}"


def matches_table(
    result: Result,
    matches: Matches,
    labels: np.ndarray,
    names: dict[int, str],
    *,
    limit: int | None = None,
) -> pd.DataFrame:
    """The matches to list, best first (the first ``limit``): row (position in
    ``result.table()``), text (the clustered text; "" for a row without), cluster_id (Int64),
    cluster_label, score, and for a search over a column its cell as ``value``. Texts are returned
    as they are: show them as text."""
    rows = matches.rows[:limit] if limit is not None else matches.rows
    row_texts = matches.row_texts[: len(rows)]
    has_text = row_texts >= 0
    safe = np.maximum(row_texts, 0)
    ids = np.asarray(labels, dtype=np.int64)[safe]
    frame = pd.DataFrame(
        {
            "row": rows,
            "text": pd.array(np.where(has_text, result.corpus.texts[safe], ""), dtype="string"),
            "cluster_id": pd.arrays.IntegerArray(ids, ~has_text),
            "cluster_label": pd.array(
                [cluster_name(names, int(c)) if ok else None for c, ok in zip(ids, has_text, strict=True)],
                dtype="string",
            ),
            "score": matches.scores[: len(rows)],
        }
    )
    if matches.column is not None:
        frame_in = result.corpus.table.frame
        names_out = [str(new) for _, new in output_names(frame_in.columns)]
        cells = frame_in.iloc[rows, names_out.index(str(matches.column))]
        frame["value"] = pd.array([None if _missing(v) else str(v) for v in cells], dtype="string")
    return frame


def cluster_name(names: dict[int, str], cluster_id: int) -> str:
    """A cluster's name in ``names``; the unclustered group's by default, else its id."""
    return str(names.get(cluster_id, NOISE_LABEL if cluster_id == -1 else cluster_id))


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list cell
        return False


# --- clusters near a cluster ---------------------------------------------------------------------


def cluster_centroids(result: Result, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cluster ids, their unit-length mean embedding), weighted by rows, for the clusters of
    ``labels`` (cluster id per distinct text; the unclustered left out)."""
    from .clustering.ward import group_means

    # float32 is plenty for ranking neighbours, and the vectors are float32 already (no copy)
    ids, means = group_means(result.embeddings.vectors, labels, result.corpus.counts, dtype=np.float32)
    if not len(ids):
        return ids, np.zeros((0, result.embeddings.vectors.shape[1]), dtype=np.float32)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return ids, (means / np.maximum(norms, 1e-12)).astype(np.float32)


def nearest_clusters(
    centroids: tuple[np.ndarray, np.ndarray], cluster_id: int, names: dict[int, str], top: int = 5
) -> pd.DataFrame:
    """The ``top`` clusters whose centres are nearest to ``cluster_id``'s: cluster_id,
    cluster_label, similarity (cosine of the centres), most similar first."""
    ids, vectors = centroids
    where = np.flatnonzero(ids == cluster_id)
    if not len(where):
        return pd.DataFrame(columns=["cluster_id", "cluster_label", "similarity"])
    similarity = vectors @ vectors[where[0]]
    similarity[where[0]] = -np.inf
    order = np.argsort(-similarity, kind="stable")[: min(top, len(ids) - 1)]
    return pd.DataFrame(
        {
            "cluster_id": ids[order],
            "cluster_label": [cluster_name(names, int(c)) for c in ids[order]],
            "similarity": np.round(similarity[order].astype(np.float64), 3),
        }
    )
