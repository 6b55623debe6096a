"""preprocess: validate the table and turn one text column (or several, joined) into clean, distinct
texts."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..config import PreprocessParams
from ..context import StageContext, detached
from ..errors import InputError
from ..types import (
    ISSUE_EMPTY,
    ISSUE_MISSING,
    ISSUE_TOO_SHORT,
    ISSUE_TRUNCATED,
    Corpus,
    Table,
)
from .base import Stage

VERSION = 2  # 2: zero-width joiners inside emoji and scripts are kept
ROWS_SHOWN = 5  # rows a message names before "and N more"

# Invisible characters that change nothing a reader sees: zero-width, bidi controls, BOM,
# and C0/C1 control characters other than whitespace.
_INVISIBLE = (
    r"[\u00ad\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\x00-\x08\x0e-\x1f\x7f-\x9f]"
)
# Zero-width (non-)joiners are part of emoji sequences and of Persian, Arabic and Indic
# spelling; they only carry meaning between two non-ASCII characters, so stray ones go.
_STRAY_JOINER = r"(?<![^\x00-\x7f])[\u200c\u200d]|[\u200c\u200d](?![^\x00-\x7f])"


def clean_texts(values: pd.Series) -> pd.Series:
    """Unicode NFKC, invisible characters removed, whitespace collapsed and stripped."""
    text = values.astype(str)
    text = text.str.normalize("NFKC")
    text = text.str.replace(_INVISIBLE, "", regex=True)
    text = text.str.replace(_STRAY_JOINER, "", regex=True)
    text = text.str.replace(r"\s+", " ", regex=True).str.strip()
    return text


def _truncate(text: str, limit: int) -> str:
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit * 0.8 else cut


def _refuse_nested(column: pd.Series, name: str, source: str) -> None:
    """A list or struct column (Parquet) would be clustered as its printed form, ``['it' 'x']``."""
    kind, arrow_type = _nested(column)
    if kind is None:
        return
    where = "Parquet type" if source.lower().endswith((".parquet", ".pq")) else "type"
    shown = f" ({where} {arrow_type})" if arrow_type else ""
    fix = (
        "join each row's items into one text first (e.g. keywords joined with spaces)"
        if kind == "lists"
        else "put the field that holds the text (or the fields joined) in a column of its own first"
    )
    raise InputError(
        f"the column {name!r} holds {kind}{shown}, not text",
        hint=f"choose another text column, or {fix}, and load that file",
        stage="preprocess",
    )


def _nested(column: pd.Series) -> tuple[str | None, str]:
    """("lists" or "structs", and the Arrow type) when the column holds lists or structs."""
    import pyarrow as pa

    dtype = getattr(column.dtype, "pyarrow_dtype", None)  # pandas' ArrowDtype
    if dtype is not None:
        if pa.types.is_struct(dtype):
            return "structs", str(dtype)
        if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
            return "lists", _list_type(dtype)
        return None, ""
    if column.dtype != object:
        return None, ""
    sample = column.dropna().head(1000)
    if any(isinstance(v, dict) for v in sample):
        kind = "structs"
    elif any(isinstance(v, list | tuple | set | np.ndarray) for v in sample):
        kind = "lists"
    else:
        return None, ""
    try:
        values = [list(v) if isinstance(v, set | np.ndarray) else v for v in sample]
        return kind, _list_type(pa.array(values).type)
    except (pa.ArrowException, TypeError, ValueError):  # mixed values: no single type to name
        return kind, ""


def _list_type(arrow_type) -> str:
    return re.sub(r"list<(item|element): ", "list<", str(arrow_type))


def rows_without_text(positions: np.ndarray, shown: int = ROWS_SHOWN) -> str:
    """Which rows have no usable text, as the user counts them (from 1, below the header):
    "1 row has no usable text: row 7", "12 rows have no usable text: rows 2, 5, 7, 9, 11 and 7
    more". ``positions`` are 0-based."""
    n = len(positions)
    numbers = [str(int(i) + 1) for i in positions[:shown]]
    if n > shown:
        listed = f"{', '.join(numbers)} and {n - shown:,} more"
    else:
        listed = " and ".join(filter(None, (", ".join(numbers[:-1]), numbers[-1])))
    counted = "1 row has no usable text: row" if n == 1 else f"{n:,} rows have no usable text: rows"
    return f"{counted} {listed} (counting from 1 below the header)"


def preprocess(table: Table, params: PreprocessParams, ctx: StageContext | None = None) -> Corpus:
    """Check the text column(s), clean them, and map every row to a distinct text (or a reason).

    Several columns are joined into one text per row, a newline between them; an empty or missing
    cell is left out of the join, and a row whose cells are all empty has no text."""
    ctx = ctx or detached("preprocess")
    frame = table.frame
    cells = _text_cells(frame, params.columns, table.name)
    shown = " + ".join(repr(c) for c in params.columns)
    ctx.progress(0.05, f"cleaning {len(frame):,} rows of {shown}")
    missing = np.logical_and.reduce([column.isna().to_numpy() for column in cells])
    clean, original = _joined_texts(cells)
    lengths = np.fromiter((len(t) for t in clean), dtype=np.int64, count=len(clean))

    issues = np.full(len(clean), "", dtype=object)
    issues[lengths == 0] = ISSUE_EMPTY
    issues[(lengths > 0) & (lengths < params.min_chars)] = ISSUE_TOO_SHORT
    issues[missing] = ISSUE_MISSING
    too_long = lengths > params.max_chars
    if too_long.any():
        clean[too_long] = [_truncate(t, params.max_chars) for t in clean[too_long]]
        issues[too_long] = ISSUE_TRUNCATED
        ctx.warn(
            f"{int(too_long.sum()):,} texts were longer than {params.max_chars:,} characters and were "
            "cut for embedding (marked 'truncated' in text_issue)"
        )
    usable = (issues == "") | (issues == ISSUE_TRUNCATED)
    if not usable.any():
        found = pd.Series(issues).value_counts().to_dict()
        which = f"column {shown}" if len(cells) == 1 else f"columns {shown}"
        raise InputError(
            f"{which} {'has' if len(cells) == 1 else 'have'} no usable text: {len(frame):,} rows, "
            + ", ".join(f"{n:,} {why}" for why, n in found.items()),
            hint="choose a column that holds text (columns: " + ", ".join(map(str, frame.columns)) + ")",
            stage="preprocess",
        )
    ctx.progress(0.6, "collapsing exact duplicates")
    codes, uniques = pd.factorize(pd.Series(clean[usable], dtype=object), sort=False)
    row_to_unique = np.full(len(clean), -1, dtype=np.int64)
    row_to_unique[usable] = codes
    counts = np.bincount(codes, minlength=len(uniques)).astype(np.int64)
    if not usable.all():
        skipped = np.flatnonzero(~usable)
        they = "it stays" if len(skipped) == 1 else "they stay"
        ctx.warn(f"{rows_without_text(skipped)}; {they} in the output with a reason (text_issue)")
    return Corpus(
        table=table,
        text_column=params.text_column,
        original=original,
        clean=clean,
        issues=issues,
        texts=np.asarray(uniques, dtype=object),
        row_to_unique=row_to_unique,
        counts=counts,
    )


def _text_cells(frame: pd.DataFrame, wanted: tuple[str, ...], source: str) -> list[pd.Series]:
    """The chosen columns of ``frame``, in the order given; an InputError (before anything is
    computed) for no column chosen, a column named twice, columns the table lacks (all of them
    named), a table without rows, a name two columns share, or a column of lists or structs."""
    columns = [str(c) for c in frame.columns]
    if not wanted:
        raise InputError(
            "no text column was chosen",
            hint=f"pass --text-column with one of: {', '.join(columns) or '(no columns)'}",
            stage="preprocess",
        )
    twice = list(dict.fromkeys(c for c in wanted if wanted.count(c) > 1))
    if twice:
        raise InputError(
            f"the text columns {_listed(wanted)} name {_listed(twice)} more than once",
            hint="give each column once, in the order to join them (e.g. --text-column title "
            "--text-column body)",
            stage="preprocess",
        )
    # compare as text: Excel and Parquet headers can be numbers (e.g. a column named 2024)
    absent = [c for c in wanted if c not in columns]
    if absent:
        found = ", ".join(repr(c) for c in columns) or "(none)"
        if len(wanted) == 1:
            message = f"expected a text column named {wanted[0]!r}, found columns: {found}"
        else:
            are = "is" if len(absent) == 1 else "are"
            message = (
                f"expected text columns {_listed(wanted)}; {_listed(absent)} {are} not in the table, "
                f"found columns: {found}"
            )
        raise InputError(
            message,
            hint=_absent_hint(absent, columns, several=len(wanted) > 1),
            stage="preprocess",
        )
    if len(frame) == 0:
        raise InputError(
            "the table has a header but no rows",
            hint="add rows of text to the file and upload it again",
            stage="preprocess",
        )
    cells = []
    for name in wanted:
        positions = [i for i, c in enumerate(columns) if c == name]
        if len(positions) > 1:
            raise InputError(
                f"{len(positions)} columns are named {name!r}",
                hint="rename the duplicate columns so each name is unique",
                stage="preprocess",
            )
        column = frame.iloc[:, positions[0]]
        _refuse_nested(column, name, source)
        cells.append(column)
    return cells


def _listed(names) -> str:
    return ", ".join(repr(n) for n in names)


def _absent_hint(absent: list[str], columns: list[str], several: bool) -> str:
    """What to do about columns the table lacks; a name holding a comma is one column, which a
    ``--set preprocess.text_column=...`` value would have split."""
    split = [c for c in columns if "," in c and all(p.strip() in absent for p in c.split(",") if p.strip())]
    if split:
        return (
            f"the column {split[0]!r} has a comma in its name, and a --set value is split at commas: "
            f'give it with --text-column "{split[0]}" (or in a TOML list) instead'
        )
    if several:
        return "pick columns among those, with --text-column once per column (names are case-sensitive)"
    return "pick one of those columns with --text-column (names are case-sensitive)"


def _joined_texts(cells: list[pd.Series]) -> tuple[np.ndarray, np.ndarray]:
    """(clean text, original text) per row: one column's cells as they are, or several columns'
    joined with a newline, each cell cleaned on its own and empty or missing ones left out."""
    clean_parts = [clean_texts(c.where(~c.isna(), "")).to_numpy(dtype=object) for c in cells]
    if len(cells) == 1:  # exactly as before several columns could be chosen
        return clean_parts[0], cells[0].to_numpy(dtype=object, copy=True)  # never a view into the table
    given = [c.to_numpy(dtype=object) for c in cells]
    clean = np.empty(len(cells[0]), dtype=object)
    original = np.empty(len(cells[0]), dtype=object)
    for row, parts in enumerate(zip(*clean_parts, strict=True)):
        kept = [i for i, part in enumerate(parts) if part]
        clean[row] = "\n".join(parts[i] for i in kept)
        if kept:
            original[row] = "\n".join(str(given[i][row]) for i in kept)
        else:  # no text in any cell: missing when every cell is
            original[row] = None if all(pd.isna(g[row]) for g in given) else ""
    return clean, original


STAGE = Stage(
    name="preprocess",
    title="Preparing texts",
    version=VERSION,
    inputs=("table",),
    output="corpus",
    artifact=Corpus,
    params=lambda config, runtime: config.preprocess,
    run=lambda a, config, ctx: preprocess(a["table"], config.preprocess, ctx),
    summary=lambda corpus: f"{corpus.n_rows:,} rows, {corpus.n_texts:,} distinct texts",
)
