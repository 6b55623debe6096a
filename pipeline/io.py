"""Reading user files (CSV/TSV/Excel/Parquet) and writing spreadsheet-safe outputs."""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import io
import json
import logging
import os
import re
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputError
from .operator import Limits, too_big
from .types import Table

log = logging.getLogger(__name__)

DELIMITERS = [",", ";", "\t", "|"]
SNIFF_BYTES = 64 * 1024
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
MIXED_ENCODING = "utf-8+cp1252"  # UTF-8, except some lines that are Windows-1252 (read line by line)
# a valid multi-byte UTF-8 sequence; Windows-1252 text almost never contains one
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def read_table(source: str | Path | bytes, name: str | None = None, *, limits: Limits | None = None) -> Table:
    """Load a table as the user gave it; every cell of a CSV is kept as text, unchanged.

    Raises ``InputError`` with what was found and what to do for empty, binary or
    unreadable files, and for tables past ``limits`` (rows, cells; default
    ``Limits.from_env()``): an Excel sheet or Parquet file is measured before it is loaded.
    Repeated or empty headers get unique names, reported in ``Table.notes``.
    """
    limits = Limits.from_env() if limits is None else limits
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
        frame, header = _read_excel(data, name, limits, is_excel_name=suffix in EXCEL_SUFFIXES)
        frame, notes = _name_columns(frame, header)
        return Table.from_frame(frame, name=name, source_sha256=sha, notes=tuple(notes))
    if suffix in PARQUET_SUFFIXES or data[:4] == b"PAR1":
        frame = _read_parquet(data, name, limits)
        frame, notes = _name_columns(frame, list(frame.columns))
        return Table.from_frame(frame, name=name, source_sha256=sha, notes=tuple(notes))
    encoding = detect_encoding(data, name)
    notes: list[str] = []
    body: str | bytes = data
    if encoding == "utf-16":
        body = data.decode("utf-16")
    elif encoding == MIXED_ENCODING:
        body, note = _decode_by_line(data)
        notes.append(note)
    head = _head_text(body, encoding)
    if not head.strip():  # e.g. only a byte-order mark
        raise InputError(
            f"{name} is empty (0 rows, no header)",
            hint="choose a file that has a header row and rows of text",
        )
    delimiter = "\t" if suffix == ".tsv" else sniff_delimiter(head)
    frame, parse_notes = _parse_csv(body, encoding, delimiter, name, limits)
    frame, header_notes = _name_columns(frame, _csv_header(head, delimiter))
    notes += parse_notes + header_notes
    return Table.from_frame(
        frame, name=name, source_sha256=sha, encoding=encoding, delimiter=delimiter, notes=tuple(notes)
    )


def detect_encoding(data: bytes, name: str) -> str:
    """UTF-8 (with or without BOM: "utf-8-sig" / "utf-8"), UTF-16 with BOM, ``MIXED_ENCODING``
    (some lines are UTF-8, others are not), else Windows-1252, else Latin-1. Checked in pieces,
    so a big file is never held twice as text."""
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
    if _decodes(data, "utf-8"):
        return "utf-8-sig" if data.startswith(codecs.BOM_UTF8) else "utf-8"
    if _has_utf8_line(data):  # e.g. two exports pasted together
        return MIXED_ENCODING
    return "cp1252" if _decodes(data, "cp1252") else "latin-1"  # Latin-1 decodes any bytes


def _has_utf8_line(data: bytes) -> bool:
    """Whether some line holding a multi-byte character is valid UTF-8 (the file is not all UTF-8)."""
    position = 0
    while match := _UTF8_MULTIBYTE.search(data, position):
        start = data.rfind(b"\n", 0, match.start()) + 1
        end = data.find(b"\n", match.end())
        end = len(data) if end < 0 else end
        try:
            data[start:end].decode("utf-8")
            return True
        except UnicodeDecodeError:
            position = end
    return False


def _decode_by_line(data: bytes) -> tuple[str, str]:
    """UTF-8 line by line, a line that is not UTF-8 read as Windows-1252 (Latin-1 where even that
    fails); returns the text and a note naming those lines."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    lines: list[str] = []
    other: list[int] = []
    latin = False
    for number, line in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(line.decode("utf-8"))
            continue
        except UnicodeDecodeError:
            other.append(number)
        try:
            lines.append(line.decode("cp1252"))
        except UnicodeDecodeError:
            lines.append(line.decode("latin-1"))
            latin = True
    fallback = "Windows-1252 (Latin-1 where that failed)" if latin else "Windows-1252"
    note = (
        f"input: {len(other)} line(s) ({_line_list(other)}) were not UTF-8 and were read as "
        f"{fallback}; the other lines are UTF-8"
    )
    return "\n".join(lines), note


def _line_list(lines: list[int]) -> str:
    shown = ("line " if len(lines) == 1 else "lines ") + ", ".join(map(str, lines[:5]))
    return shown + (", ..." if len(lines) > 5 else "")


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


def _parse_csv(
    body: str | bytes, encoding: str, delimiter: str, name: str, limits: Limits
) -> tuple[pd.DataFrame, list[str]]:
    """Parse with pandas' C reader straight from the bytes (it decodes as it goes), so a 1M-row
    file costs about its own size on top of the table; text only when lines need repair.
    Stops one row past ``limits.max_rows`` and refuses the table."""
    notes: list[str] = []
    options: dict[str, Any] = dict(
        sep=delimiter,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        skip_blank_lines=True,
        # never turn a leading field into the index: a row with one extra field would shift every row
        index_col=False,
        nrows=limits.max_rows + 1 if limits.max_rows else None,  # enough to know it is too long
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
        notes.append(
            f"input: {len(lines)} malformed line(s) ({_line_list(lines)}) had more fields than the header's "
            f"{len(header)}; their extra fields were joined into the last column ({header[-1]!r})"
        )
    if frame.shape[1] == 0:
        raise InputError(f"{name} has no columns", hint="choose a file with a header row")
    if len(frame) == 0:
        raise InputError(
            f"{name} has a header ({', '.join(map(str, frame.columns))}) but no rows",
            hint="add rows of text below the header",
        )
    if limits.max_rows and len(frame) > limits.max_rows:
        raise _more_rows_than(limits, name)
    limits.check(len(frame), frame.shape[1], name)
    return frame, notes


def _more_rows_than(limits: Limits, name: str, where: str = "") -> InputError:
    # the reader stops counting one row past the limit, so the exact number is not known
    found = f"more than {limits.max_rows:,} rows{where}"
    return too_big(name, found, f"at most {limits.max_rows:,} rows", "max_rows")


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


def _read_excel(
    data: bytes, name: str, limits: Limits, is_excel_name: bool = True
) -> tuple[pd.DataFrame, list | None]:
    """The first sheet, and its header row as written (None for .xls, which is not measured)."""
    try:
        header = _measure_sheet(data, name, limits) if data[:4] == b"PK\x03\x04" else None
        frame = pd.read_excel(io.BytesIO(data), sheet_name=0)
    except InputError:
        raise
    except Exception as exc:
        found = "" if is_excel_name else " is a zip archive, not a text table, and"
        raise InputError(
            f"{name}{found} could not be read as an Excel workbook ({type(exc).__name__})",
            hint="open it in a spreadsheet program and save it as .xlsx or CSV",
        ) from None
    frame = _non_empty(frame, name)
    limits.check(len(frame), frame.shape[1], name)
    return frame, header


XLSX_BYTES_PER_CELL = 80  # generous: a cell of short text takes about 30 bytes of XML
XLSX_UNPACKED_FLOOR = 2**30  # never refuse a workbook that unpacks to less


def _measure_sheet(data: bytes, name: str, limits: Limits) -> list:
    """Count the first sheet's rows and columns as openpyxl streams them, before pandas loads it,
    and stop as soon as they pass ``limits``: a small .xlsx can unpack to millions of rows.
    Returns the header row as written (pandas renames repeated and empty names)."""
    import zipfile

    import openpyxl

    if limits.max_cells:  # openpyxl unpacks shared strings whole before a row is read
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())  # zipfile reads no more
        bound = max(XLSX_UNPACKED_FLOOR, XLSX_BYTES_PER_CELL * limits.max_cells)
        if unpacked > bound:
            raise too_big(
                name,
                f"{unpacked / 1e9:.1f} GB of XML once unpacked",
                f"at most {limits.max_cells:,} cells, about {bound / 1e9:.1f} GB unpacked",
                "max_cells",
            )
    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # the size a file declares can be missing or false: count
        header: list = []
        width = 0
        for index, row in enumerate(sheet.iter_rows(values_only=True)):
            used = len(row)
            while used and (row[used - 1] is None or row[used - 1] == ""):
                used -= 1
            if index == 0:
                header = list(row[:used])
            if not used:
                continue
            rows, width = index, max(width, used)  # rows below the header, up to this one
            if limits.max_rows and rows > limits.max_rows:
                raise _more_rows_than(limits, name, " in its first sheet")
            if limits.max_cells and rows * width > limits.max_cells:
                raise too_big(
                    name,
                    f"at least {rows:,} rows x {width:,} columns = {rows * width:,} cells in its first sheet",
                    f"at most {limits.max_cells:,} cells",
                    "max_cells",
                )
        return header
    finally:
        book.close()


def _read_parquet(data: bytes, name: str, limits: Limits) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(io.BytesIO(data))
        schema = parquet.schema_arrow
        index = {c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str)}
        rows, columns = parquet.metadata.num_rows, len([c for c in schema.names if c not in index])
    except Exception as exc:
        raise InputError(
            f"{name} could not be read as Parquet ({type(exc).__name__})",
            hint="check that the file is a complete Parquet file, or export it as CSV",
        ) from None
    limits.check(rows, columns, name)  # from the footer, before anything is decompressed
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


def _csv_header(head: str, delimiter: str) -> list[str] | None:
    """The first non-blank record of the file's head: the header as written."""
    try:
        for fields in csv.reader(io.StringIO(head, newline=""), delimiter=delimiter):
            if fields:
                return fields
    except csv.Error:
        pass
    return None


def _no_name(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def _read_as(label: Any, written: Any) -> bool:
    """Whether pandas' column ``label`` comes from the header cell ``written`` (as it names
    empty headers ``Unnamed: 3`` and repeated ones ``text.1``)."""
    if _no_name(written):
        return str(label).startswith("Unnamed: ")
    return str(label) == str(written) or bool(re.fullmatch(re.escape(str(written)) + r"(\.\d+)+", str(label)))


def _name_columns(frame: pd.DataFrame, header: list | None) -> tuple[pd.DataFrame, list[str]]:
    """Give every column a unique, visible name and say which were renamed: a repeated header
    ``text`` becomes ``text``, ``text (2)``; an empty one in column 4 becomes ``column 4``.

    ``header`` is the header row as written in the file; when it does not match the columns
    pandas made (it could not be read), pandas' names are kept.
    """
    labels = list(frame.columns)
    if header is None or len(header) > len(labels):
        return frame, []
    written = list(header) + [None] * (len(labels) - len(header))
    if not all(_read_as(label, cell) for label, cell in zip(labels, written, strict=True)):
        return frame, []
    blocked = {str(cell) for cell in written if not _no_name(cell)}  # never take a name in the file
    seen: set[str] = set()
    names: list[Any] = []
    repeats: dict[str, list[str]] = {}
    unnamed: list[tuple[int, str]] = []
    for position, (label, cell) in enumerate(zip(labels, written, strict=True), start=1):
        if _no_name(cell):
            new = _free_name(f"column {position}", blocked)
            unnamed.append((position, new))
        elif str(cell) in seen:
            same = repeats.setdefault(str(cell), [str(cell)])
            new = _free_name(str(cell), blocked, first=len(same) + 1)
            same.append(new)
        else:
            new = label if str(label) == str(cell) else str(cell)
        seen.add(str(cell))
        blocked.add(str(new))
        names.append(new)
    if not repeats and not unnamed:
        return frame, []
    frame.columns = names
    return frame, _rename_notes(repeats, unnamed)


def _free_name(base: str, blocked: set[str], first: int = 1) -> str:
    """``base`` if free (``first`` = 1), else ``base (first)``, ``base (first + 1)``, ..."""
    number = first
    while (name := base if number == 1 else f"{base} ({number})") in blocked:
        number += 1
    return name


def _rename_notes(repeats: dict[str, list[str]], unnamed: list[tuple[int, str]], shown: int = 5) -> list[str]:
    def listed(names: list[str]) -> str:
        return ", ".join(map(repr, names[:shown])) + (", ..." if len(names) > shown else "")

    notes = [
        f"input: the header {header!r} appears {len(names)} times; the columns are named {listed(names)}"
        for header, names in list(repeats.items())[:shown]
    ]
    if len(repeats) > shown:
        notes.append(
            f"input: {len(repeats) - shown} more headers appear more than once; each got numbered names"
        )
    if len(unnamed) == 1:
        position, new = unnamed[0]
        notes.append(f"input: column {position} has no header; it is named {new!r}")
    elif unnamed:
        positions = ", ".join(str(p) for p, _ in unnamed[:shown]) + (", ..." if len(unnamed) > shown else "")
        notes.append(
            f"input: {len(unnamed)} columns have no header (columns {positions}); they are named "
            f"{listed([new for _, new in unnamed])}"
        )
    return notes


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


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Write to the yielded temporary path (in ``path``'s folder); on success it replaces ``path``
    at once (os.replace), on failure it is removed: never half a file under the real name."""
    path = Path(path)
    # same suffix: pandas infers compression from it (out.csv.gz stays gzipped)
    temporary = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """UTF-8 with BOM (so Excel reads accents right), formula-like cells neutralised; atomic."""
    with replacing(path) as temporary:
        spreadsheet_safe(frame).to_csv(temporary, index=False, encoding="utf-8-sig", lineterminator="\r\n")


def write_excel(frame: pd.DataFrame, path: str | Path) -> None:
    """An .xlsx (see ``excel_bytes``: formula-like cells neutralised); atomic."""
    data = excel_bytes(frame)
    with replacing(path) as temporary:
        temporary.write_bytes(data)


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    data = parquet_bytes(frame)
    with replacing(path) as temporary:
        temporary.write_bytes(data)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    spreadsheet_safe(frame).to_csv(buffer, index=False, lineterminator="\r\n")
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


# the output format an --out name asks for; any other suffix is written as CSV
OUTPUT_FORMATS = {".xlsx": "xlsx", ".parquet": "parquet", ".pq": "parquet"}


def output_format(out: str | Path) -> str:
    """The format ``out``'s suffix asks for: "xlsx", "parquet" or "csv"."""
    return OUTPUT_FORMATS.get(Path(out).suffix.lower(), "csv")


def output_paths(out: str | Path) -> dict[str, Path]:
    """The table, cluster summary and manifest for ``out``: OUT.csv -> OUT.clusters.csv (a name
    scripts rely on), OUT.xlsx -> OUT.clusters.xlsx, OUT.parquet -> OUT.clusters.parquet."""
    out = Path(out)
    if output_format(out) == "csv":
        stem = out.with_suffix("") if out.suffix.lower() == ".csv" else out
        clusters = Path(f"{stem}.clusters.csv")
    else:
        stem = out.with_suffix("")
        clusters = Path(f"{stem}.clusters{out.suffix}")
    return {"table": out, "clusters": clusters, "manifest": Path(f"{stem}.manifest.json")}


_WRITERS = {"csv": write_csv, "xlsx": write_excel, "parquet": write_parquet}


def write_outputs(result: Any, out: str | Path) -> dict[str, Path]:
    """Write the table and the cluster summary (CSV, Excel or Parquet as ``out``'s suffix says)
    and OUT.manifest.json, each whole or not at all; return their paths."""
    paths = output_paths(out)
    paths["table"].parent.mkdir(parents=True, exist_ok=True)
    write = _WRITERS[output_format(out)]
    write(result.table(), paths["table"])
    write(result.clusters(), paths["clusters"])
    with replacing(paths["manifest"]) as temporary:
        temporary.write_text(json.dumps(result.manifest(), indent=2, default=_json_default), encoding="utf-8")
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
