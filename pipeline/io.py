"""Reading user files (CSV/TSV/Excel/Parquet) and writing spreadsheet-safe outputs."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import logging
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .types import Table

log = logging.getLogger(__name__)

DELIMITERS = [",", ";", "\t", "|"]
SNIFF_BYTES = 64 * 1024
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def read_table(source: str | Path | bytes, name: str | None = None) -> Table:
    """Load a table as the user gave it; every cell of a CSV is kept as text, unchanged.

    Raises ``InputError`` with what was found and what to do for empty, binary or
    unreadable files.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"file {path} does not exist", hint="check the path and try again") from None
        except IsADirectoryError:
            raise InputError(f"{path} is a folder, not a file", hint="give the path of a CSV file") from None
    else:
        data = bytes(source)
        name = name or "upload.csv"
    suffix = Path(name).suffix.lower()
    sha = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise InputError(
            f"{name} is empty (0 rows, no header)",
            hint="choose a file that has a header row and rows of text",
        )
    if suffix in EXCEL_SUFFIXES or data[:4] == b"PK\x03\x04":
        frame = _read_excel(data, name, is_excel_name=suffix in EXCEL_SUFFIXES)
        return Table.from_frame(frame, name=name, source_sha256=sha)
    if suffix in PARQUET_SUFFIXES or data[:4] == b"PAR1":
        frame = _read_parquet(data, name)
        return Table.from_frame(frame, name=name, source_sha256=sha)
    encoding = detect_encoding(data, name)
    body: str | bytes = data.decode("utf-16") if encoding == "utf-16" else data
    head = _head_text(body, encoding)
    if not head.strip():  # e.g. only a byte-order mark
        raise InputError(
            f"{name} is empty (0 rows, no header)",
            hint="choose a file that has a header row and rows of text",
        )
    delimiter = "\t" if suffix == ".tsv" else sniff_delimiter(head)
    frame, notes = _parse_csv(body, encoding, delimiter, name)
    return Table.from_frame(
        frame, name=name, source_sha256=sha, encoding=encoding, delimiter=delimiter, notes=tuple(notes)
    )


def detect_encoding(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM: "utf-8-sig" / "utf-8"), UTF-16 with BOM, else Windows-1252,
    else Latin-1. Checked in pieces, so a big file is never held twice as text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            codecs.decode(data, "utf-16")
            return "utf-16"
        except UnicodeDecodeError:
            raise InputError(
                f"{name} starts like UTF-16 text but is not valid UTF-16 (it may be cut off or binary)",
                hint="save the table again as CSV (UTF-8) and upload that file",
            ) from None
    head = data[:SNIFF_BYTES]
    if b"\x00" in head or _control_share(head) > 0.05:
        raise InputError(
            f"{name} does not look like a text table (it contains binary data)",
            hint="upload a CSV, TSV, Excel (.xlsx) or Parquet file; if it is a spreadsheet, "
            "export it as CSV first",
        )
    for encoding in ("utf-8", "cp1252"):
        if _decodes(data, encoding):
            return "utf-8-sig" if encoding == "utf-8" and data.startswith(codecs.BOM_UTF8) else encoding
    return "latin-1"  # decodes any bytes


def _decodes(data: bytes, encoding: str, piece: int = 16 * 2**20) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    view = memoryview(data)
    try:
        for start in range(0, len(view), piece):
            decoder.decode(view[start : start + piece])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _head_text(body: str | bytes, encoding: str) -> str:
    """The first ``SNIFF_BYTES`` of the file as text (a character cut in half is dropped)."""
    if isinstance(body, str):
        return body[:SNIFF_BYTES]
    return body[:SNIFF_BYTES].decode(encoding, errors="ignore").lstrip("\ufeff")


def _control_share(head: bytes) -> float:
    if not head:
        return 0.0
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return controls / len(head)


def sniff_delimiter(text: str) -> str:
    """Comma, semicolon, tab or pipe, detected with clevercsv on the first lines."""
    sample = text[:SNIFF_BYTES]
    if "\n" in sample[: len(sample) - 1]:
        sample = sample[: sample.rfind("\n")]  # do not sniff a cut-off last line
    try:
        import clevercsv

        dialect = clevercsv.Detector().detect(sample, delimiters=DELIMITERS)
        if dialect is not None and dialect.delimiter in DELIMITERS:
            return dialect.delimiter
    except Exception:  # sniffing is a best guess; fall back to counting
        log.debug("clevercsv could not detect a dialect", exc_info=True)
    first = sample.splitlines()[0] if sample else ""
    counts = {d: first.count(d) for d in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _parse_csv(body: str | bytes, encoding: str, delimiter: str, name: str) -> tuple[pd.DataFrame, list[str]]:
    """Parse with pandas' C reader straight from the bytes (it decodes as it goes), so a 1M-row
    file costs about its own size on top of the table; text only when lines need repair."""
    notes: list[str] = []
    options: dict[str, Any] = dict(
        sep=delimiter,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=True,
        # never turn a leading field into the index: a row with one extra field would shift every row
        index_col=False,
    )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            if isinstance(body, str):  # UTF-16, decoded up front
                frame = pd.read_csv(io.StringIO(body), engine="c", **options)
            else:
                frame = pd.read_csv(io.BytesIO(body), engine="c", encoding=encoding, **options)
        # pandas only warns (and drops fields) when the first row is longer than the header
        malformed = any(issubclass(w.category, pd.errors.ParserWarning) for w in caught)
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{name} has no header and no rows", hint="choose a file with a header row"
        ) from None
    except pd.errors.ParserError:
        malformed = True
    lines: list[int] = []
    if malformed:
        text = body if isinstance(body, str) else body.decode(encoding)
        fixed, header, lines = _repair_long_rows(text, delimiter, name)
        frame = pd.read_csv(io.StringIO(fixed), engine="c", **options)
    if lines:
        shown = ("line " if len(lines) == 1 else "lines ") + ", ".join(map(str, lines[:5]))
        shown += ", ..." if len(lines) > 5 else ""
        notes.append(
            f"input: {len(lines)} malformed line(s) ({shown}) had more fields than the header's "
            f"{len(header)}; their extra fields were joined into the last column ({header[-1]!r})"
        )
    if frame.shape[1] == 0:
        raise InputError(f"{name} has no columns", hint="choose a file with a header row")
    if len(frame) == 0:
        raise InputError(
            f"{name} has a header ({', '.join(map(str, frame.columns))}) but no rows",
            hint="add rows of text below the header",
        )
    return frame, notes


def _repair_long_rows(text: str, delimiter: str, name: str) -> tuple[str, list[str], list[int]]:
    """Rewrite the CSV so no row is longer than the header: extra fields join the last column.

    Returns the rewritten text, the header fields and the line numbers that were repaired.
    """
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # pandas has no cell limit
    quote_line = _unclosed_quote_line(text, delimiter)
    if quote_line is not None:
        raise InputError(
            f'{name} has a quote mark (") on line {quote_line} that is never closed, so the rest '
            "of the file would be read as one cell",
            hint='close the quote or remove the stray " character; if the file came from a '
            "spreadsheet program, export it again as CSV",
        )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    header: list[str] | None = None
    repaired: list[int] = []
    start = 1
    for fields in reader:
        if not fields:  # blank line
            pass
        elif header is None:
            header = fields
            writer.writerow(fields)
        elif len(fields) > len(header):
            repaired.append(start)
            width = len(header)
            writer.writerow(fields[: width - 1] + [delimiter.join(fields[width - 1 :])])
        else:
            writer.writerow(fields)
        start = reader.line_num + 1
    return out.getvalue(), header or [""], repaired


def _unclosed_quote_line(text: str, delimiter: str) -> int | None:
    """The line where a quoted field starts that runs to the end of the file, if any."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return start
        start = reader.line_num + 1


def _read_excel(data: bytes, name: str, is_excel_name: bool = True) -> pd.DataFrame:
    try:
        frame = pd.read_excel(io.BytesIO(data), sheet_name=0)
    except Exception as exc:
        found = "" if is_excel_name else " is a zip archive, not a text table, and"
        raise InputError(
            f"{name}{found} could not be read as an Excel workbook ({type(exc).__name__})",
            hint="open it in a spreadsheet program and save it as .xlsx or CSV",
        ) from None
    return _non_empty(frame, name)


def _read_parquet(data: bytes, name: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise InputError(
            f"{name} could not be read as Parquet ({type(exc).__name__})",
            hint="check that the file is a complete Parquet file, or export it as CSV",
        ) from None
    return _non_empty(frame, name)


def _non_empty(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    if frame.shape[1] == 0:
        raise InputError(f"{name} has no columns", hint="choose a file with a header row")
    if len(frame) == 0:
        raise InputError(f"{name} has a header but no rows", hint="add rows of text below the header")
    return frame


def suggest_text_column(frame: pd.DataFrame) -> str | None:
    """The column of prose whose cells are longest on average (sampled), or None.

    Cells without a letter (ids, numbers, dates) and single tokens with digits (codes,
    UUIDs, timestamps) do not count as prose.
    """
    best, best_len = None, 0.0
    sample = frame.head(2000)
    for position, column in enumerate(sample.columns):
        values = sample.iloc[:, position].dropna()
        values = values[values.map(lambda v: isinstance(v, str))].astype(object)
        if values.empty:
            continue
        has_letter = values.str.contains(r"[^\W\d_]", regex=True)
        is_token = ~values.str.contains(r"\s", regex=True) & values.str.contains(r"\d", regex=True)
        texts = values[has_letter & ~is_token]
        if texts.empty:
            continue
        mean = float(texts.str.len().mean()) * len(texts) / len(values)
        if mean > best_len:
            best, best_len = str(column), mean
    return best


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


def neutralise(value: Any) -> Any:
    """Prefix cells that a spreadsheet would run as a formula with ``'`` (plain numbers pass)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell (and header) neutralised against formula injection."""
    out = frame.copy()
    out.columns = [neutralise(str(c)) for c in out.columns]
    for position in range(out.shape[1]):  # by position: header names may repeat
        series = out.iloc[:, position]
        if isinstance(series.dtype, pd.CategoricalDtype):  # its categories are text too
            series = series.astype(object)
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            out.isetitem(position, series.map(neutralise, na_action="ignore"))
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """UTF-8 with BOM (so Excel reads accents right), formula-like cells neutralised."""
    spreadsheet_safe(frame).to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    spreadsheet_safe(frame).to_csv(buffer, index=False, lineterminator="\r\n")
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def output_paths(out: str | Path) -> dict[str, Path]:
    out = Path(out)
    stem = out.with_suffix("") if out.suffix.lower() == ".csv" else out
    return {
        "table": out,
        "clusters": Path(f"{stem}.clusters.csv"),
        "manifest": Path(f"{stem}.manifest.json"),
    }


def write_outputs(result: Any, out: str | Path) -> dict[str, Path]:
    """Write OUT.csv, OUT.clusters.csv and OUT.manifest.json; return their paths."""
    paths = output_paths(out)
    paths["table"].parent.mkdir(parents=True, exist_ok=True)
    write_csv(result.table(), paths["table"])
    write_csv(result.clusters(), paths["clusters"])
    paths["manifest"].write_text(
        json.dumps(result.manifest(), indent=2, default=_json_default), encoding="utf-8"
    )
    return paths


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


EXCEL_MAX_ROWS = 1_048_575  # one row of Excel's 1,048,576 is the header
EXCEL_MAX_CELL = 32_767


def excel_bytes(frame: pd.DataFrame, sheet: str = "clusters") -> bytes:
    """An .xlsx of the table; formula-like cells neutralised (openpyxl would store them as formulas)."""
    if len(frame) > EXCEL_MAX_ROWS:
        raise InputError(
            f"the table has {len(frame):,} rows; Excel holds at most {EXCEL_MAX_ROWS:,}",
            hint="download CSV or Parquet instead",
            stage="export",
        )
    safe = spreadsheet_safe(frame)
    for position in range(safe.shape[1]):
        column = safe.iloc[:, position]
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            safe.isetitem(position, column.map(lambda v: v[:EXCEL_MAX_CELL] if isinstance(v, str) else v))
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        safe.to_excel(writer, index=False, sheet_name=sheet)
    return buffer.getvalue()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Parquet keeps values and types exactly (it is not opened by spreadsheets)."""
    buffer = io.BytesIO()
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    out.to_parquet(buffer, index=False)
    return buffer.getvalue()


def manifest_bytes(manifest: dict) -> bytes:
    return json.dumps(manifest, indent=2, default=_json_default, ensure_ascii=False).encode("utf-8")
