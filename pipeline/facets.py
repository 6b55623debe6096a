"""Looking at clusters through the table's other columns: filters, breakdowns, trends.

Everything here reads a labeled table (``Result.table()`` or ``edits.edited_table(...)``: every
input row and column plus ``cluster_id`` and ``cluster_label``) and never changes it; parsed
numbers and dates are derived views of a column, made again on each call (values are parsed once
per distinct value, and the dates of recent columns are remembered: a filter updates in well under
a second at 100,000 rows, ``python -m pipeline.bench_facets``).

- **Column kinds** (``column_kind``, ``describe_columns``): "category", "number", "date", "text"
  (long or mostly distinct values: no use as a category) or "empty".
- **Filters** (``CategoryFilter``, ``NumberFilter``, ``DateFilter``; ``filter_mask``): rows kept,
  as a boolean array; ``filtered_clusters`` recounts the clusters on them.
- **Breakdowns** (``breakdown``): cluster share per value of a column, lift, and the Pearson
  residual of the value x cluster table; ``over_represented`` per value.
- **Trends** (``trends``): rows per period (day up to 60 days, ISO week from Monday up to two
  years, month beyond; year past 20 years) and cluster; ``movers`` between the first and the last period.

Conventions, the same everywhere:

- Rows without a text (no ``cluster_id``) are in no cluster and are never counted. The
  unclustered rows (id -1) are a cluster of their own, as in the rest of the project.
- A missing or blank value is the value ``MISSING`` ("(missing)") of a category: it can be picked
  in a category filter and is a row of a breakdown. A number or date filter leaves out the rows
  without a number or date in its column (their chip says the range only).
- Values are compared as the text a spreadsheet shows: surrounding spaces removed, 3.0 read as
  "3", a midnight timestamp as "2024-01-05".
- Dates: ISO 8601 (2024-01-05, 2024-01-05T10:00:00+02:00) first, then other formats (31/01/2024,
  Jan 5 2024, 5 January 2024, 01/31/2024 10:00 PM, ...). A time with a zone (+02:00, Z, UTC) is
  converted to UTC; a naive time is taken as given. A date like 05/01/2024 is ambiguous; it is read day first
  when other dates of the column can only be day first (31/01/2024) and none only month first,
  else month first (May 1, pandas' default), and a note says so (``ParsedDates.notes``); pass
  ``dayfirst`` to decide. Dates before 1800 or after 2199 count as not dates (typos, "May" read as
  year 1).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputError
from .result import OUTPUT_COLUMNS

MISSING = "(missing)"  # the value of a row with no value in a category column
MOST = 0.8  # share of a column's values that must parse for it to be numbers or dates
SAMPLE_VALUES = 2000  # distinct values (the most frequent) a column's kind is decided on ...
SAMPLE_DATES = 500  # ... of which this many for dates (some are parsed one by one)
TEXT_CHARS = 40  # values this long on average are prose, not categories
TEXT_DISTINCT = 50  # ... as are columns with at least this many distinct values that are
TEXT_DISTINCT_SHARE = 0.5  # ... mostly distinct (a value per row or so: ids, names)
TOP_VALUES = 30  # values the app shows of a category; the others are counted as hidden
SIGNIFICANT = 2.0  # a Pearson residual above this: more rows than chance would give
BREAKDOWN_COLUMNS = (
    "value",
    "cluster_id",
    "cluster_label",
    "rows",
    "share_of_value",
    "share_overall",
    "lift",
    "residual",
)
TRENDS_COLUMNS = ("period", "cluster_id", "cluster_label", "rows")
MOVERS_COLUMNS = (
    "cluster_id",
    "cluster_label",
    "first_rows",
    "last_rows",
    "change",
    "relative_change",
    "direction",
    "note",
)
PERIODS = ("day", "week", "month", "year")
DAY_SPAN = 60  # days: up to this span, periods are days
WEEK_SPAN = 731  # days (two years): up to this span, ISO weeks (starting on Monday); else months
MONTH_PERIODS = 240  # more months than this (20 years): years
MAX_PERIODS = 5000  # a period asked for that cuts the span into more is refused
EARLIEST, LATEST = np.datetime64("1800-01-01", "s"), np.datetime64("2200-01-01", "s")
# The dates of recent columns by their distinct texts: 100,000 distinct timestamps take about a
# second to parse, and the app filters by the same column on every interaction
DATES_KEPT = 8
_DATES: dict[tuple, tuple[np.ndarray, bool, tuple[str, ...]]] = {}
MIXED_MAX = 20_000  # distinct values parsed one by one (slow: ~0.2 ms each) when no format fits

_NO_CLUSTER = -2  # a row without a text
# patterns run on whole columns by pyarrow (RE2: no look-arounds); a column can hold 100,000 dates
_DATE_LIKE = r"(?:^|\D)(?:1[89]|2[01])\d\d(?:\D|$)|\d+\D+\d+"  # a year, or two groups of digits
_SLASHED = r"^(?P<first>\d{1,2})[/.\-](?P<second>\d{1,2})[/.\-]\d{2,4}(?:\D|$)"
_NUMBER_START = set("+-.0123456789")
_THOUSANDS = re.compile(r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$")
_FORMATS = (  # tried after the formats pandas guesses, month-first ones last in a day-first column
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%y",
    "%d.%m.%Y",
    "%d.%m.%y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%b %Y",
    "%B %Y",
)


# ---------------------------------------------------------------------------------------------
# Columns and their values


def column_position(frame: pd.DataFrame, column: str, *, stage: str = "filter", flag: str = "") -> int:
    """The position of ``column`` in ``frame`` (names compared as text, as CSV and Excel write
    them); an InputError listing the columns when there is none."""
    names = [str(c) for c in frame.columns]
    if str(column) in names:
        return names.index(str(column))
    shown = ", ".join(repr(n) for n in names[:20]) + (
        f", ... ({len(names) - 20} more)" if len(names) > 20 else ""
    )
    where = f" with {flag}" if flag else ""
    raise InputError(
        f"no column named {str(column)!r}; the table has: {shown or '(no columns)'}",
        hint=f"pick one of those columns{where} (names are case-sensitive)",
        stage=stage,
    )


def _series(frame: pd.DataFrame, column: str, stage: str, flag: str = "") -> pd.Series:
    return frame.iloc[:, column_position(frame, column, stage=stage, flag=flag)]


def _cell_text(value: Any) -> str:
    """A cell as the text compared and shown: stripped; 3.0 as "3"; a midnight date without time."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return ""
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)
    if isinstance(value, (dt.datetime, np.datetime64)):
        stamp = pd.Timestamp(value)
        if stamp is pd.NaT:
            return ""
        return stamp.strftime("%Y-%m-%d" if stamp == stamp.normalize() else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


@dataclass(frozen=True)
class Values:
    """A column as category values: ``codes`` per row index ``names`` (-1: no value)."""

    codes: np.ndarray
    names: np.ndarray  # distinct texts, in order of first appearance

    @property
    def counts(self) -> np.ndarray:
        return np.bincount(self.codes[self.codes >= 0], minlength=len(self.names))

    @property
    def missing(self) -> int:
        return int((self.codes < 0).sum())


def category_values(series: pd.Series) -> Values:
    """Each row's value as text (see ``_cell_text``); blank and missing cells have none (-1)."""
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(series.dtype):
        # text as a CSV is read: stripped for the whole column at once, then each value is clean
        raw_codes, uniques = pd.factorize(series.str.strip(), use_na_sentinel=True)
        texts = np.asarray(uniques, dtype=object)
    else:
        try:
            raw_codes, uniques = pd.factorize(series, use_na_sentinel=True)
        except TypeError:  # unhashable cells (lists from Parquet): compare their text
            raw_codes, uniques = pd.factorize(series.astype(str), use_na_sentinel=True)
        texts = np.array([_cell_text(u) for u in np.asarray(uniques, dtype=object)], dtype=object)
    # values equal once cleaned (" email" and "email", 3 and 3.0) are one value
    merged, names = pd.factorize(texts) if len(texts) else (np.zeros(0, dtype=np.intp), np.zeros(0))
    names = np.asarray(names, dtype=object)
    blank = np.flatnonzero(names == "")
    if len(blank):
        merged = np.where(merged == blank[0], -1, merged - (merged > blank[0]))
        names = np.delete(names, blank[0])
    lookup = np.append(merged, -1).astype(np.int64)  # raw code -1 (missing) stays -1
    return Values(lookup[raw_codes], names)


def _numbers_of(texts: np.ndarray) -> np.ndarray:
    """Floats parsed from texts (1,234.5 too); NaN where a text is not a finite number."""
    numbers = np.full(len(texts), np.nan)
    # only a text starting like a number can be one (to_numeric is slow on many that are not)
    maybe = np.flatnonzero([t[:1] in _NUMBER_START for t in texts])
    cleaned = [t.replace(",", "") if _THOUSANDS.match(t) else t for t in (texts[i] for i in maybe)]
    parsed = pd.to_numeric(pd.Series(cleaned, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    numbers[maybe] = np.where(np.isfinite(parsed), parsed, np.nan)
    return numbers


def parse_numbers(series: pd.Series) -> np.ndarray:
    """The column as floats; NaN where a row has no number (missing, blank or not a number)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return np.full(len(series), np.nan)
    if pd.api.types.is_numeric_dtype(series.dtype):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.where(np.isfinite(numbers), numbers, np.nan)
    values = category_values(series)
    return np.append(_numbers_of(values.names), np.nan)[values.codes]


@dataclass(frozen=True)
class ParsedDates:
    """A column read as dates: ``values`` per row (datetime64[s], NaT where there is no date)."""

    values: np.ndarray
    missing: int  # rows without a value
    unparsed: int  # rows with a value that is not a date
    examples: tuple[str, ...]  # a few of those values
    dayfirst: bool  # how dates like 05/01/2024 were read
    notes: tuple[str, ...] = ()

    @property
    def parsed(self) -> int:
        return len(self.values) - self.missing - self.unparsed


def _dates_of(texts: Sequence[str], dayfirst: bool) -> np.ndarray:
    """datetime64[s] per text (NaT where it is not a date): ISO 8601 at C speed, then the formats
    pandas guesses from the rest (each parsed at C speed), one by one only as a last resort."""
    out = np.full(len(texts), np.datetime64("NaT"), dtype="datetime64[s]")
    column = pa.array(list(texts), type=pa.large_string())
    todo = np.flatnonzero(pc.match_substring_regex(column, _DATE_LIKE).to_numpy(zero_copy_only=False))
    if not len(todo):
        return out
    # a time with a zone is converted to UTC (parse's utc=True); a naive time is taken as given
    cleaned = column.take(todo).to_numpy(zero_copy_only=False).astype(object)

    def parse(values: np.ndarray, **options: Any) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                parsed = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce", utc=True, **options)
            except (ValueError, TypeError, OverflowError):
                return np.full(len(values), np.datetime64("NaT"), dtype="datetime64[s]")
        if getattr(parsed.dtype, "tz", None) is not None:
            parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return parsed.to_numpy(dtype="datetime64[s]")

    def take(parsed: np.ndarray) -> None:
        nonlocal todo, cleaned
        ok = ~np.isnat(parsed)
        out[todo[ok]] = parsed[ok]
        todo, cleaned = todo[~ok], cleaned[~ok]

    iso = pc.match_substring_regex(pa.array(cleaned, type=pa.large_string()), r"^\d{4}-\d").to_numpy(
        zero_copy_only=False
    )
    if iso.any():  # only the texts that start like it: a failed parse costs as much as one
        parsed = np.full(len(cleaned), np.datetime64("NaT"), dtype="datetime64[s]")
        parsed[iso] = parse(cleaned[iso], format="ISO8601")
        take(parsed)
    from pandas.tseries.api import guess_datetime_format

    tried: set[str] = set()
    for _ in range(4):  # a column can mix a few formats
        if not len(todo):
            break
        with warnings.catch_warnings():  # "Parsing dates in %d/%m/%Y format when dayfirst=False"
            warnings.simplefilter("ignore")
            guesses = Counter(
                f
                for t in cleaned[:50]
                if (f := guess_datetime_format(t, dayfirst=dayfirst)) and f not in tried
            )
        if not guesses:
            break
        for fmt, _count in guesses.most_common():
            tried.add(fmt)
            take(parse(cleaned, format=fmt))
    for fmt in sorted(_FORMATS, key=lambda f: f.startswith("%m") == dayfirst):
        if not len(todo):
            break
        take(parse(cleaned, format=fmt))
    if len(todo) and len(todo) <= MIXED_MAX:
        take(parse(cleaned, format="mixed", dayfirst=dayfirst))
    out[(out < EARLIEST) | (out >= LATEST)] = np.datetime64("NaT")
    return out


def _dayfirst(texts: Sequence[str], column: str) -> tuple[bool, list[str]]:
    """Whether dates like 05/01/2024 are day first, judged from the dates that can only be one
    way (31/01/2024 or 01/31/2024), and a note when some dates are ambiguous."""
    parts = pc.extract_regex(pa.array(list(texts), type=pa.large_string()), _SLASHED)

    def part(name: str) -> np.ndarray:
        numbers = pc.cast(pc.struct_field(parts, name), pa.int64())
        return numbers.to_numpy(zero_copy_only=False).astype(np.float64)  # NaN: no match

    first, second = part("first"), part("second")

    def example(where: np.ndarray) -> str | None:
        found = np.flatnonzero(where)
        return str(texts[found[0]]) if len(found) else None

    day = example((first > 12) & (second <= 12))
    month = example((second > 12) & (first <= 12))
    ambiguous = example((first <= 12) & (second <= 12) & (first != second))
    dayfirst = bool(day) and not month
    notes = []
    if day and month:
        notes.append(
            f"{column!r} has dates that are day first ({day!r}) and dates that are month first "
            f"({month!r}); each of those is read as it can only be"
            + (f", and dates like {ambiguous!r} month first" if ambiguous else "")
        )
    elif ambiguous:
        read = pd.Timestamp(_dates_of([ambiguous], dayfirst)[0])
        read = f"{read.day} {read.strftime('%B %Y')}"
        if dayfirst:
            why = f"as {day!r} in the same column can only be day first"
        else:
            why = "no date of the column says otherwise (as 13/01/2024 would)"
        order = "day" if dayfirst else "month"
        notes.append(f"dates like {ambiguous!r} in {column!r} are read {order} first ({read}): {why}")
    return dayfirst, notes


def parse_dates(series: pd.Series, *, dayfirst: bool | None = None, column: str | None = None) -> ParsedDates:
    """The column read as dates (see the module's notes on formats and day-first dates)."""
    name = str(series.name) if column is None else column
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = series
        if getattr(series.dtype, "tz", None) is not None:
            stamps = series.dt.tz_convert("UTC").dt.tz_localize(None)  # a time with a zone: in UTC
        values = stamps.to_numpy(dtype="datetime64[s]")
        missing = int(np.isnat(values).sum())
        outside = (values < EARLIEST) | (values >= LATEST)
        values = np.where(outside, np.datetime64("NaT"), values)
        return ParsedDates(values, missing, int(outside.sum()), (), bool(dayfirst))
    cells = category_values(series)
    distinct, dayfirst, notes = _distinct_dates(cells.names, dayfirst, name)
    values = np.append(distinct, np.datetime64("NaT"))[cells.codes]
    bad = np.isnat(distinct)
    counts = cells.counts
    order = np.argsort(-counts[bad], kind="stable")[:3]
    examples = tuple(_short(str(t)) for t in cells.names[bad][order])
    unparsed = int(counts[bad].sum())
    return ParsedDates(values, cells.missing, unparsed, examples, dayfirst, notes)


def _distinct_dates(
    names: np.ndarray, dayfirst: bool | None, column: str
) -> tuple[np.ndarray, bool, tuple[str, ...]]:
    """(the date of each distinct text, whether they were read day first, notes); remembered by
    the texts, as the app filters the same column on every interaction."""
    key = (hashlib.sha256(pd.util.hash_array(names).tobytes()).hexdigest(), len(names), column, dayfirst)
    if key in _DATES:
        return _DATES[key]
    texts = [str(t) for t in names]
    notes: list[str] = []
    if dayfirst is None:
        dayfirst, notes = _dayfirst(texts, column)
    found = (_dates_of(texts, dayfirst), bool(dayfirst), tuple(notes))
    _DATES[key] = found
    while len(_DATES) > DATES_KEPT:
        _DATES.pop(next(iter(_DATES)), None)
    return found


def _short(text: str, chars: int = 40) -> str:
    return text if len(text) <= chars else text[: chars - 3] + "..."


def no_dates_error(dates: ParsedDates, column: str, stage: str) -> InputError:
    """The error for a column without a single date."""
    if not dates.unparsed:
        return InputError(
            f"the column {column!r} is empty: no row has a date",
            hint="pick a column that holds dates (e.g. 2024-01-31)",
            stage=stage,
        )
    return InputError(
        f"no value of {column!r} reads as a date (found e.g. {', '.join(map(repr, dates.examples))})",
        hint="pick a column of dates such as 2024-01-31, 31/01/2024 or Jan 31 2024",
        stage=stage,
    )


def check_dates(frame: pd.DataFrame, column: str, *, stage: str = "trends", flag: str = "") -> ParsedDates:
    """``column`` read as dates; an InputError when it is not in ``frame`` or holds no date."""
    dates = parse_dates(_series(frame, column, stage, flag), column=str(column))
    if not dates.parsed:
        raise no_dates_error(dates, str(column), stage)
    return dates


def _share_parsed(parsed: np.ndarray, weights: np.ndarray) -> float:
    return float(weights[parsed].sum() / max(weights.sum(), 1))


def column_kind(series: pd.Series) -> str:
    """ "number", "date", "category", "text" or "empty", decided on the most frequent distinct
    values: numbers (or dates) when at least ``MOST`` of the rows with a value hold one; text when
    the values are long (``TEXT_CHARS``) or nearly one per row; category otherwise."""
    if len(series) == 0 or series.isna().all():
        return "empty"
    if pd.api.types.is_bool_dtype(series.dtype):
        return "category"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "date"
    return _kind_of_texts(category_values(series))


def _kind_of_texts(cells: Values) -> str:
    counts = cells.counts
    if not counts.sum():
        return "empty"
    top = np.argsort(-counts, kind="stable")[:SAMPLE_VALUES]
    texts, weights = cells.names[top], counts[top]
    if _share_parsed(~np.isnan(_numbers_of(texts)), weights) >= MOST:
        return "number"
    texts, weights = texts[:SAMPLE_DATES], weights[:SAMPLE_DATES]
    dayfirst, _ = _dayfirst([str(t) for t in texts], "")
    if _share_parsed(~np.isnat(_dates_of([str(t) for t in texts], dayfirst)), weights) >= MOST:
        return "date"
    texts, weights = cells.names[top], counts[top]
    length = float(np.dot(np.fromiter((len(t) for t in texts), float, len(texts)), weights) / weights.sum())
    distinct = len(cells.names)
    if length >= TEXT_CHARS or (distinct >= TEXT_DISTINCT and distinct >= TEXT_DISTINCT_SHARE * counts.sum()):
        return "text"
    return "category"


@dataclass(frozen=True)
class ColumnInfo:
    """What a filter on a column needs: its kind, how many rows have a value, and its range."""

    name: str
    kind: str
    rows: int  # rows with a value
    missing: int  # rows without one
    distinct: int
    low: float | dt.date | None = None  # numbers and dates: the smallest ...
    high: float | dt.date | None = None  # ... and the largest
    notes: tuple[str, ...] = ()


def describe_column(frame: pd.DataFrame, column: str) -> ColumnInfo:
    """``column``'s kind, counts and (numbers, dates) range."""
    series = _series(frame, column, "filter")
    cells = category_values(series)
    typed = pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype)
    kind = column_kind(series) if typed or not len(cells.names) else _kind_of_texts(cells)
    rows, distinct = len(series) - cells.missing, len(cells.names)
    info = ColumnInfo(str(column), kind, rows, cells.missing, distinct)
    if kind == "number":
        numbers = parse_numbers(series)
        if (~np.isnan(numbers)).any():
            return replace(info, low=float(np.nanmin(numbers)), high=float(np.nanmax(numbers)))
    if kind == "date":
        dates = parse_dates(series, column=str(column))
        if dates.parsed:
            valid = dates.values[~np.isnat(dates.values)]
            notes = list(dates.notes)
            if dates.unparsed:
                notes.append(f"{dates.unparsed:,} rows of {str(column)!r} hold a value that is not a date")
            return replace(info, low=_day(valid.min()), high=_day(valid.max()), notes=tuple(notes))
    if kind == "category" and distinct == 1:
        return replace(info, notes=(f"{str(column)!r} has one value only",))
    return info


def describe_columns(frame: pd.DataFrame, exclude: Iterable[str] = ()) -> list[ColumnInfo]:
    """Every column a filter or breakdown can use: all but the cluster columns (``OUTPUT_COLUMNS``)
    and ``exclude`` (e.g. the text column), in table order."""
    skip = {str(c) for c in exclude} | set(OUTPUT_COLUMNS)
    return [describe_column(frame, str(c)) for c in frame.columns if str(c) not in skip]


def top_values(
    frame: pd.DataFrame, column: str, *, top: int = TOP_VALUES, mask: np.ndarray | None = None
) -> tuple[pd.DataFrame, int]:
    """(the ``top`` values of ``column`` with most rows, as ``value, rows``; how many more values
    there are). Rows without a value count as ``MISSING``. ``mask``: only those rows."""
    cells = category_values(_series(frame, column, "filter"))
    codes = cells.codes if mask is None else cells.codes[_mask(mask, len(frame))]
    names = np.append(cells.names, MISSING)
    counts = np.bincount(np.where(codes < 0, len(cells.names), codes), minlength=len(names))
    present = np.flatnonzero(counts)
    order = present[np.lexsort((_value_rank(names[present]), -counts[present]))]
    shown = order[: max(top, 0)]
    values = pd.DataFrame({"value": names[shown].astype(str), "rows": counts[shown].astype(np.int64)})
    return values, len(order) - len(shown)


def _day(value: np.datetime64) -> dt.date:
    return pd.Timestamp(value).date()


def _value_rank(names: np.ndarray) -> np.ndarray:
    """Sort rank of values: by number when every value is one, else by text; ``MISSING`` last."""
    texts = np.array([str(n) for n in names], dtype=object)
    missing = texts == MISSING
    numbers = _numbers_of(texts)
    if (~np.isnan(numbers[~missing])).all():
        order = np.argsort(np.where(missing, np.inf, numbers), kind="stable")
    else:
        order = np.lexsort((texts.astype(str), missing))
    rank = np.empty(len(texts))
    rank[order] = np.arange(len(texts))
    return rank


def _mask(mask: np.ndarray | None, rows: int) -> np.ndarray:
    if mask is None:
        return np.ones(rows, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (rows,):
        raise ValueError(f"a mask of {mask.shape} for a table of {rows} rows")
    return mask


# ---------------------------------------------------------------------------------------------
# Filters


def _filter_error(message: str, hint: str) -> InputError:
    return InputError(message, hint=hint, stage="filter")


def _number_text(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) < 1e15 else f"{value:,.6g}"


@dataclass(frozen=True)
class CategoryFilter:
    """Rows whose value of ``column`` is one of ``values`` (``MISSING`` picks rows without one)."""

    column: str
    values: tuple[str, ...]

    def __post_init__(self):
        values = (self.values,) if isinstance(self.values, str) else tuple(self.values)
        values = tuple(dict.fromkeys(_cell_text(v) or MISSING for v in values))
        if not values:
            raise _filter_error(
                f"the filter on {self.column!r} has no value picked", "pick one value or more, or remove it"
            )
        object.__setattr__(self, "column", str(self.column))
        object.__setattr__(self, "values", values)

    def describe(self) -> str:
        shown = ", ".join(_short(v, 30) for v in self.values[:3])
        more = len(self.values) - 3
        return f"{self.column}: {shown}" + (f" and {more} more" if more > 0 else "")

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        cells = category_values(_series(frame, self.column, "filter"))
        keep = np.append(np.isin(cells.names, np.array(self.values, dtype=object)), MISSING in self.values)
        return keep[cells.codes]


def _check_range(column: str, low: Any, high: Any, show) -> None:
    if low is not None and high is not None and low > high:
        raise _filter_error(
            f"the range {show(low)} to {show(high)} of {column!r} holds nothing: its start is after its end",
            "swap the two ends",
        )


@dataclass(frozen=True)
class NumberFilter:
    """Rows whose number in ``column`` is within ``low``..``high`` (inclusive; None: open). Rows
    without a number are left out."""

    column: str
    low: float | None = None
    high: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "column", str(self.column))
        for end in ("low", "high"):
            value = getattr(self, end)
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if math.isnan(number):
                raise _filter_error(
                    f"the {end} end of the range of {self.column!r} is not a number: {value!r}",
                    "type a number",
                )
            object.__setattr__(self, end, number)
        _check_range(self.column, self.low, self.high, _number_text)

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"{self.column}: {_number_text(self.low)} to {_number_text(self.high)}"
        if self.low is not None:
            return f"{self.column}: at least {_number_text(self.low)}"
        if self.high is not None:
            return f"{self.column}: at most {_number_text(self.high)}"
        return f"{self.column}: any number"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        numbers = parse_numbers(_series(frame, self.column, "filter"))
        if np.isnan(numbers).all():
            raise _filter_error(
                f"{self.column!r} holds no numbers, so a range of numbers cannot filter it",
                "filter it by its values (a category filter) instead",
            )
        keep = ~np.isnan(numbers)
        if self.low is not None:
            keep &= numbers >= self.low
        if self.high is not None:
            keep &= numbers <= self.high
        return keep


def _as_date(value: Any, column: str, end: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        stamp = pd.NaT
    if stamp is pd.NaT:
        raise _filter_error(
            f"the {end} of the date range of {column!r} is not a date: {value!r}",
            "give a date such as 2024-01-31",
        )
    return stamp.date()


@dataclass(frozen=True)
class DateFilter:
    """Rows whose date in ``column`` falls on ``start``..``end`` (whole days, inclusive; None:
    open). Rows without a date are left out. ``dayfirst``: see ``parse_dates``."""

    column: str
    start: dt.date | None = None
    end: dt.date | None = None
    dayfirst: bool | None = None

    def __post_init__(self):
        object.__setattr__(self, "column", str(self.column))
        object.__setattr__(self, "start", _as_date(self.start, self.column, "start"))
        object.__setattr__(self, "end", _as_date(self.end, self.column, "end"))
        _check_range(self.column, self.start, self.end, dt.date.isoformat)

    def describe(self) -> str:
        if self.start is not None and self.end is not None:
            return f"{self.column}: {self.start.isoformat()} to {self.end.isoformat()}"
        if self.start is not None:
            return f"{self.column}: from {self.start.isoformat()}"
        if self.end is not None:
            return f"{self.column}: until {self.end.isoformat()}"
        return f"{self.column}: any date"

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        series = _series(frame, self.column, "filter")
        dates = parse_dates(series, dayfirst=self.dayfirst, column=self.column)
        if not dates.parsed:
            raise InputError(
                no_dates_error(dates, self.column, "filter").message + ", so a date range cannot filter it",
                hint="filter it by its values (a category filter) instead",
                stage="filter",
            )
        values = dates.values
        keep = ~np.isnat(values)
        if self.start is not None:
            keep &= values >= np.datetime64(self.start, "s")
        if self.end is not None:
            keep &= values < np.datetime64(self.end + dt.timedelta(days=1), "s")
        return keep


Filter = CategoryFilter | NumberFilter | DateFilter


def filter_mask(frame: pd.DataFrame, filters: Iterable[Filter]) -> np.ndarray:
    """The rows every filter keeps (all rows without filters), as a boolean array."""
    keep = np.ones(len(frame), dtype=bool)
    for one in filters:
        keep &= one.mask(frame)
    return keep


def apply_filters(frame: pd.DataFrame, filters: Iterable[Filter]) -> pd.DataFrame:
    """The rows every filter keeps (a copy; the table's own index): the filtered export."""
    return frame.loc[filter_mask(frame, filters)].copy()


# ---------------------------------------------------------------------------------------------
# Clusters on a subset of rows


def _clusters(table: pd.DataFrame, stage: str) -> tuple[np.ndarray, dict[int, str]]:
    """Cluster id per row (``_NO_CLUSTER`` for rows without a text) and each id's label."""
    for name in ("cluster_id", "cluster_label"):
        if name not in table.columns:
            raise InputError(
                f"the table has no {name} column",
                hint="pass a labeled table: Result.table() or edits.edited_table(...)",
                stage=stage,
            )
    column = table["cluster_id"]
    if not pd.api.types.is_numeric_dtype(column.dtype):  # e.g. read back from a CSV as text
        column = pd.to_numeric(column, errors="coerce")
    numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
    ids = np.where(np.isnan(numbers), _NO_CLUSTER, np.nan_to_num(numbers)).astype(np.int64)
    found, first = np.unique(ids, return_index=True)
    names = table["cluster_label"].to_numpy(dtype=object)[first]
    labels = {
        int(cid): ("" if pd.isna(name) else str(name))
        for cid, name in zip(found, names, strict=True)
        if cid != _NO_CLUSTER
    }
    return ids, labels


def _labels_of(clusters: np.ndarray, labels: dict[int, str]) -> np.ndarray:
    return np.array([labels.get(int(c), "") for c in clusters], dtype=object)


def filtered_clusters(table: pd.DataFrame, mask: np.ndarray | None = None) -> pd.DataFrame:
    """One row per cluster of the table: ``id, label, rows, share, rows_all, share_all``; rows and
    share (of the rows with a cluster) among the rows ``mask`` keeps, and among all rows. Every
    cluster is listed, with 0 rows where the filter keeps none of it; ids in order, the unclustered
    (-1) last, as ``Result.clusters()``."""
    ids, labels = _clusters(table, "filter")
    keep = _mask(mask, len(table))
    order = sorted(labels, key=lambda c: (c == -1, c))
    position = {c: i for i, c in enumerate(order)}
    lookup = np.full(max(order, default=0) + 2, -1, dtype=np.int64)
    for cid, i in position.items():
        lookup[cid + 1] = i
    has = ids != _NO_CLUSTER
    index = lookup[ids[has] + 1]
    all_rows = np.bincount(index, minlength=len(order))
    rows = np.bincount(index[keep[has]], minlength=len(order))
    return pd.DataFrame(
        {
            "id": np.array(order, dtype=np.int64),
            "label": [labels[c] for c in order],
            "rows": rows.astype(np.int64),
            "share": np.round(rows / max(rows.sum(), 1), 4),
            "rows_all": all_rows.astype(np.int64),
            "share_all": np.round(all_rows / max(all_rows.sum(), 1), 4),
        }
    )


# ---------------------------------------------------------------------------------------------
# Breakdowns


@dataclass(frozen=True)
class Breakdown:
    """Clusters by the values of a column: ``frame`` has ``BREAKDOWN_COLUMNS``, one row per value
    and cluster that share a row, sorted by value, then lift (highest first), then cluster id."""

    column: str
    frame: pd.DataFrame
    rows: int  # rows counted: with a cluster (and kept by the mask)
    values: int  # distinct values among them (``MISSING`` is one)
    hidden: int  # values left out by ``top``
    missing: int  # rows counted as ``MISSING``
    notes: tuple[str, ...] = ()

    def over_represented(self, value: str, **options: Any) -> pd.DataFrame:
        return over_represented(self.frame, value, **options)


def _empty_breakdown() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "value": pd.Series([], dtype=object),
            "cluster_id": pd.Series([], dtype=np.int64),
            "cluster_label": pd.Series([], dtype=object),
            "rows": pd.Series([], dtype=np.int64),
            **{name: pd.Series([], dtype=np.float64) for name in BREAKDOWN_COLUMNS[4:]},
        }
    )


def breakdown(
    table: pd.DataFrame, column: str, *, top: int | None = None, mask: np.ndarray | None = None
) -> Breakdown:
    """How the clusters spread over the values of ``column`` (any column: its values are taken as
    categories; rows without one are the value ``MISSING``).

    Per value and cluster: ``rows``; ``share_of_value`` = rows / the value's rows;
    ``share_overall`` = the cluster's rows / all rows counted; ``lift`` = their ratio (2: twice as
    common among the value's rows as overall); ``residual`` = the Pearson residual of the value x
    cluster table, (O - E) / sqrt(E) with E = value rows x cluster rows / N; above
    ``SIGNIFICANT`` (2) the cluster is over-represented beyond chance, below -2 under-represented.
    It is 0 where there is nothing to compare (one value, or one cluster: O = E). Pairs without a row are not listed (their lift is 0).

    The statistics are over all the rows counted; ``top`` (None: all) keeps the rows of the
    ``top`` values with most rows, the rest are counted in ``hidden``. ``mask``: only those rows
    (the app's filters)."""
    ids, labels = _clusters(table, "breakdown")
    cells = category_values(_series(table, column, "breakdown"))
    keep = _mask(mask, len(table)) & (ids != _NO_CLUSTER)
    names = np.append(cells.names, MISSING).astype(object)
    values = np.where(cells.codes < 0, len(cells.names), cells.codes)[keep]
    clusters, cluster_codes = np.unique(ids[keep], return_inverse=True)
    n = len(values)
    if not n:
        note = "no rows to count: no row with a text" + (
            " is kept by the filters" if mask is not None else ""
        )
        return Breakdown(str(column), _empty_breakdown(), 0, 0, 0, 0, (note,))
    value_rows = np.bincount(values, minlength=len(names))
    cluster_rows = np.bincount(cluster_codes, minlength=len(clusters))
    pairs, observed = np.unique(values * len(clusters) + cluster_codes, return_counts=True)
    value_of, cluster_of = pairs // len(clusters), pairs % len(clusters)
    r, c = value_rows[value_of].astype(np.float64), cluster_rows[cluster_of].astype(np.float64)
    expected = r * c / n
    residual = (observed - expected) / np.sqrt(expected)  # Pearson's; expected > 0 for a listed pair
    share_of_value = observed / r
    share_overall = c / n
    present = np.flatnonzero(value_rows)
    rank = np.full(len(names), -1.0)
    rank[present] = _value_rank(names[present])
    ranked = present[np.lexsort((rank[present], -value_rows[present]))]
    shown = ranked if top is None else ranked[: max(top, 0)]
    rank[ranked[len(shown) :]] = -1.0  # hidden
    listed = rank[value_of] >= 0
    order = np.lexsort(
        (clusters[cluster_of][listed], -(share_of_value / share_overall)[listed], rank[value_of][listed])
    )
    pick = np.flatnonzero(listed)[order]
    frame = pd.DataFrame(
        {
            "value": names[value_of[pick]].astype(str).astype(object),
            "cluster_id": clusters[cluster_of[pick]].astype(np.int64),
            "cluster_label": _labels_of(clusters, labels)[cluster_of[pick]],
            "rows": observed[pick].astype(np.int64),
            "share_of_value": np.round(share_of_value[pick], 4),
            "share_overall": np.round(share_overall[pick], 4),
            "lift": np.round(share_of_value[pick] / share_overall[pick], 4),
            "residual": np.round(residual[pick], 4),
        }
    )
    missing = int(value_rows[-1])
    hidden = len(present) - len(shown)
    notes = []
    if len(present) == 1:
        notes.append(
            f"{str(column)!r} has one value ({names[present[0]]}) in the rows counted: there is nothing "
            "to compare (every lift is 1)"
        )
    if missing and len(present) > 1:
        notes.append(f"{missing:,} rows have no value in {str(column)!r}; they are counted as {MISSING!r}")
    if hidden:
        notes.append(f"showing the {len(shown):,} values with most rows; {hidden:,} more values are hidden")
    return Breakdown(str(column), frame, n, len(present), hidden, missing, tuple(notes))


def over_represented(
    frame: pd.DataFrame, value: str, *, min_rows: int = 5, max_items: int = 5, threshold: float = SIGNIFICANT
) -> pd.DataFrame:
    """The clusters over-represented among ``value``'s rows in a breakdown ``frame``: residual
    above ``threshold`` and at least ``min_rows`` rows, by lift (highest first), at most
    ``max_items``."""
    rows = frame[
        (frame["value"] == str(value)) & (frame["residual"] > threshold) & (frame["rows"] >= min_rows)
    ]
    return rows.sort_values(["lift", "cluster_id"], ascending=[False, True], kind="stable").head(max_items)


def describe_over_represented(frame: pd.DataFrame, value: str, **options: Any) -> str:
    """One line: "email: 'refund' (3.1x), 'login' (2.0x)", or that no cluster stands out."""
    rows = over_represented(frame, value, **options)
    if rows.empty:
        return f"{value}: no cluster stands out"
    return f"{value}: " + ", ".join(
        f"'{label}' ({lift:.1f}x)" for label, lift in zip(rows["cluster_label"], rows["lift"], strict=True)
    )


# ---------------------------------------------------------------------------------------------
# Trends


@dataclass(frozen=True)
class Trends:
    """Rows per period and cluster: ``frame`` has ``TRENDS_COLUMNS``, one row per period (every
    one from the first date's to the last's) and cluster (every cluster with a dated row), 0 where a
    cluster has no row in a period; sorted by period, then cluster id. A period is named by the
    ISO date of its first day (weeks start on Monday)."""

    column: str
    period: str  # "day", "week", "month" or "year"
    frame: pd.DataFrame
    rows: int  # rows counted: with a cluster and a date (and kept by the mask)
    without_date: int  # rows with a cluster left out: no value, or not a date
    first: dt.date | None = None  # the earliest and the latest date counted
    last: dt.date | None = None
    notes: tuple[str, ...] = ()


def choose_period(first: np.datetime64, last: np.datetime64) -> str:
    """Days for a span up to ``DAY_SPAN`` days, weeks up to ``WEEK_SPAN``, months up to
    ``MONTH_PERIODS`` months, years beyond."""
    days = int((last.astype("datetime64[D]") - first.astype("datetime64[D]")).astype(np.int64))
    if days <= DAY_SPAN:
        return "day"
    if days <= WEEK_SPAN:
        return "week"
    months = int((last.astype("datetime64[M]") - first.astype("datetime64[M]")).astype(np.int64)) + 1
    return "month" if months <= MONTH_PERIODS else "year"


def period_starts(values: np.ndarray, period: str) -> np.ndarray:
    """The first day (datetime64[D]) of each value's period; weeks start on Monday."""
    days = values.astype("datetime64[D]")
    if period == "day":
        return days
    if period == "week":  # 1970-01-01 was a Thursday: (days + 3) % 7 is 0 on Mondays
        return days - ((days.astype(np.int64) + 3) % 7).astype("timedelta64[D]")
    unit = {"month": "M", "year": "Y"}[period]
    return days.astype(f"datetime64[{unit}]").astype("datetime64[D]")


def _all_periods(first: np.datetime64, last: np.datetime64, period: str) -> np.ndarray:
    if period in ("day", "week"):
        return np.arange(first, last + 1, 7 if period == "week" else 1).astype("datetime64[D]")
    unit = {"month": "M", "year": "Y"}[period]
    return np.arange(first.astype(f"datetime64[{unit}]"), last.astype(f"datetime64[{unit}]") + 1).astype(
        "datetime64[D]"
    )


def _empty_trends() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": pd.Series([], dtype=object),
            "cluster_id": pd.Series([], dtype=np.int64),
            "cluster_label": pd.Series([], dtype=object),
            "rows": pd.Series([], dtype=np.int64),
        }
    )


def trends(
    table: pd.DataFrame,
    column: str,
    *,
    period: str | None = None,
    mask: np.ndarray | None = None,
    dayfirst: bool | None = None,
) -> Trends:
    """Rows per ``period`` (None: chosen from the span, see ``choose_period``) and cluster, by the
    dates of ``column``. Rows whose value is missing or not a date are left out and counted
    (``without_date``, and a note); a column without a single date is an InputError."""
    if period is not None and period not in PERIODS:
        raise InputError(
            f"unknown period {period!r}", hint=f"use one of: {', '.join(PERIODS)}", stage="trends"
        )
    ids, labels = _clusters(table, "trends")
    dates = parse_dates(_series(table, column, "trends"), dayfirst=dayfirst, column=str(column))
    if not dates.parsed:
        raise no_dates_error(dates, str(column), "trends")
    keep = _mask(mask, len(table)) & (ids != _NO_CLUSTER)
    dated = keep & ~np.isnat(dates.values)
    without = int(keep.sum() - dated.sum())
    notes = list(dates.notes)
    if without:
        example = f" (e.g. {', '.join(map(repr, dates.examples))})" if dates.examples else ""
        notes.append(f"{without:,} rows have no date in {str(column)!r}{example}; they are left out")
    if not dated.any():
        notes.append(
            "no rows to count: no row with a text and a date"
            + (" is kept by the filters" if mask is not None else "")
        )
        return Trends(str(column), period or "day", _empty_trends(), 0, without, notes=tuple(notes))
    values = dates.values[dated]
    first, last = values.min(), values.max()
    chosen = period or choose_period(first, last)
    starts = period_starts(values, chosen)
    periods = _all_periods(starts.min(), starts.max(), chosen)
    if len(periods) > MAX_PERIODS:
        raise InputError(
            f"{str(column)!r} spans {_day(first)} to {_day(last)}: {len(periods):,} periods of a {chosen}",
            hint="choose a longer period, or filter the dates to a shorter span",
            stage="trends",
        )
    clusters, cluster_codes = np.unique(ids[dated], return_inverse=True)
    period_codes = np.searchsorted(periods, starts)
    counts = np.bincount(period_codes * len(clusters) + cluster_codes, minlength=len(periods) * len(clusters))
    frame = pd.DataFrame(
        {
            "period": np.repeat(np.datetime_as_string(periods, unit="D"), len(clusters)).astype(object),
            "cluster_id": np.tile(clusters, len(periods)).astype(np.int64),
            "cluster_label": np.tile(_labels_of(clusters, labels), len(periods)),
            "rows": counts.astype(np.int64),
        }
    )
    if len(periods) == 1:
        notes.append(f"every date falls in one {chosen} ({_day(periods[0])}): nothing to compare over time")
    return Trends(
        str(column), chosen, frame, int(dated.sum()), without, _day(first), _day(last), tuple(notes)
    )


def movers(frame: pd.DataFrame, *, min_rows: int = 10, top: int = 5, by: str = "change") -> pd.DataFrame:
    """The clusters that grew and shrank most between the first and the last period of a trends
    ``frame``: ``MOVERS_COLUMNS``, the ``top`` that grew (most first), then the ``top`` that shrank.

    ``by`` ranks by "change" (rows, last - first) or "relative" (change / first rows; a cluster
    with no row in the first period has none, is noted "new" and ranks first among the grown).
    Only clusters with at least ``min_rows`` rows in the first or the last period are ranked, so a
    cluster going from 1 row to 3 does not top the list. The first and the last period may hold
    only part of their span (the data start or stop inside them)."""
    if by not in ("change", "relative"):
        raise InputError(f"unknown ranking {by!r}", hint="use 'change' or 'relative'", stage="trends")
    periods = frame["period"].unique() if len(frame) else []
    if len(periods) < 2:
        return pd.DataFrame({name: [] for name in MOVERS_COLUMNS})
    first = frame[frame["period"] == min(periods)].set_index("cluster_id")
    last = frame[frame["period"] == max(periods)].set_index("cluster_id")
    out = pd.DataFrame(
        {
            "cluster_id": first.index.to_numpy(dtype=np.int64),
            "cluster_label": first["cluster_label"].to_numpy(dtype=object),
            "first_rows": first["rows"].to_numpy(dtype=np.int64),
            "last_rows": last["rows"].reindex(first.index, fill_value=0).to_numpy(dtype=np.int64),
        }
    )
    out["change"] = out["last_rows"] - out["first_rows"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["relative_change"] = np.where(
            out["first_rows"] > 0, out["change"] / out["first_rows"].clip(lower=1), np.nan
        ).round(4)
    out["direction"] = np.where(out["change"] > 0, "grew", "shrank")
    out["note"] = np.where(out["first_rows"] == 0, "new", np.where(out["last_rows"] == 0, "gone", ""))
    out = out[(out[["first_rows", "last_rows"]].max(axis=1) >= min_rows) & (out["change"] != 0)]
    score = out["change"] if by == "change" else out["relative_change"].fillna(np.inf)
    # the score by position, not by index: pandas gives an empty frame a Series' whole index
    out = out.assign(_s=score.to_numpy())
    grew = out[out["change"] > 0].sort_values(["_s", "cluster_id"], ascending=[False, True])
    shrank = out[out["change"] < 0].sort_values(["_s", "cluster_id"], ascending=[True, True])
    return pd.concat([grew.head(top), shrank.head(top)]).drop(columns="_s").reset_index(drop=True)


def change_text(first_rows: int, last_rows: int) -> str:
    """A change for people: "+12 (+150%)", "-3 (-50%)", "+4 (new)", "-7 (gone)"."""
    change = last_rows - first_rows
    if first_rows == 0:
        return f"{change:+,} (new)" if change else "0"
    if last_rows == 0:
        return f"{change:+,} (gone)"
    return f"{change:+,} ({change / first_rows:+.0%})"
