"""Reading the user's file and writing spreadsheet-safe outputs: what a user sees."""

from __future__ import annotations

import hashlib
import io
import random
import zipfile

import numpy as np
import pandas as pd
import pytest

import pipeline
from pipeline.errors import InputError
from pipeline.io import csv_bytes, neutralise, output_paths, spreadsheet_safe, write_csv
from pipeline.operator import Limits

UTF8_BOM = b"\xef\xbb\xbf"


def read(tmp_path, data: bytes, name: str = "data.csv") -> pipeline.Table:
    path = tmp_path / name
    path.write_bytes(data)
    return pipeline.read_table(path)


def read_error(tmp_path, data: bytes, name: str = "data.csv") -> str:
    with pytest.raises(InputError) as info:
        read(tmp_path, data, name)
    assert info.value.stage == "input"
    return info.value.user_message()


def rows(table: pipeline.Table) -> list[list[str]]:
    return table.frame.astype(object).values.tolist()


# --- encodings -----------------------------------------------------------------------


def test_utf8_file_is_read_as_text(tmp_path):
    data = "id,comment\n1,héllo wörld\n2,日本語のテキスト\n".encode()
    table = read(tmp_path, data)
    assert list(table.frame.columns) == ["id", "comment"]
    assert rows(table) == [["1", "héllo wörld"], ["2", "日本語のテキスト"]]
    assert table.encoding == "utf-8"
    assert table.delimiter == ","
    assert table.notes == ()
    assert table.name == "data.csv"
    assert table.source_sha256 == hashlib.sha256(data).hexdigest()


def test_utf8_bom_is_not_part_of_the_header(tmp_path):
    table = read(tmp_path, UTF8_BOM + "id,comment\n1,café\n".encode())
    assert list(table.frame.columns) == ["id", "comment"]
    assert table.frame["id"].tolist() == ["1"]
    assert table.frame["comment"].tolist() == ["café"]
    assert table.encoding == "utf-8-sig"


def test_cp1252_file_keeps_accents_dashes_and_curly_quotes(tmp_path):
    text = "café – naïve “quotes” €5"
    table = read(tmp_path, f"id;comment\n1;{text}\n".encode("cp1252"))
    assert table.encoding == "cp1252"
    assert table.delimiter == ";"
    assert table.frame["comment"].tolist() == [text]


def test_latin1_bytes_undefined_in_cp1252_fall_back_to_latin1(tmp_path):
    table = read(tmp_path, b"id,comment\n1,caf\xe9 \x81\n2,na\xefve \x8d\n")
    assert table.encoding == "latin-1"
    assert table.frame["comment"].tolist() == ["café \x81", "naïve \x8d"]


@pytest.mark.parametrize(
    "data",
    [
        "id\tcomment\n1\tgrüße\n2\t東京\n".encode("utf-16"),  # little-endian with BOM
        b"\xfe\xff" + "id\tcomment\n1\tgrüße\n2\t東京\n".encode("utf-16-be"),
    ],
    ids=["utf-16-le", "utf-16-be"],
)
def test_utf16_with_bom(tmp_path, data):
    table = read(tmp_path, data)
    assert table.encoding == "utf-16"
    assert table.delimiter == "\t"
    assert list(table.frame.columns) == ["id", "comment"]
    assert table.frame["comment"].tolist() == ["grüße", "東京"]


def test_cut_off_utf16_file_says_so(tmp_path):
    message = read_error(tmp_path, "id,comment\n1,x\n".encode("utf-16") + b"\x00")
    assert "not valid UTF-16" in message
    assert "What to do:" in message


# --- delimiters ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data, delimiter",
    [
        ("data.csv", b'id,comment\n1,"late, again"\n2,fine\n', ","),
        ("data.csv", b'id;comment\n1;"late, again, and again"\n2;fine, thanks\n', ";"),
        ("data.tsv", b"id\tcomment\n1\tlate, again\n2\tfine\n", "\t"),
        ("data.csv", b"id\tcomment\n1\tlate, again\n2\tfine\n", "\t"),
        ("data.txt", b"id|comment\n1|late, again\n2|fine\n", "|"),
    ],
    ids=["comma", "semicolon", "tab-tsv", "tab-named-csv", "pipe"],
)
def test_delimiter_is_detected(tmp_path, name, data, delimiter):
    table = read(tmp_path, data, name)
    assert table.delimiter == delimiter
    assert list(table.frame.columns) == ["id", "comment"]
    assert table.frame.shape == (2, 2)
    assert table.frame["id"].tolist() == ["1", "2"]
    assert table.frame["comment"].iloc[0].startswith("late, again")


def test_crlf_lines_and_quoted_newlines(tmp_path):
    table = read(tmp_path, b'id,comment\r\n1,"two\r\nlines"\r\n2,"say ""hi"""\r\n')
    assert rows(table) == [["1", "two\r\nlines"], ["2", 'say "hi"']]


# --- files that cannot be used -------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"\n\n   \r\n\t\n", UTF8_BOM], ids=["0-bytes", "whitespace", "bom-only"]
)
def test_empty_file(tmp_path, data):
    message = read_error(tmp_path, data)
    assert "data.csv is empty" in message
    assert "What to do: choose a file that has a header row" in message


def test_header_only(tmp_path):
    message = read_error(tmp_path, b"id,comment,date\n")
    assert "has a header (id, comment, date) but no rows" in message
    assert "What to do: add rows of text below the header" in message


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" + bytes(range(256)) * 4,
        random.Random(0).randbytes(4096) + b"\x00" * 16,
    ],
    ids=["png", "random-bytes"],
)
def test_binary_file_named_csv(tmp_path, data):
    message = read_error(tmp_path, data)
    assert "does not look like a text table (it contains binary data)" in message
    assert "What to do: upload a CSV, TSV, Excel (.xlsx) or Parquet file" in message


def test_zip_archive_named_csv(tmp_path):
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner.csv", "id,comment\n1,hello\n")
    message = read_error(tmp_path, archive.read_bytes(), "data.csv")
    assert "data.csv is a zip archive, not a text table" in message
    assert "What to do: open it in a spreadsheet program" in message


@pytest.mark.parametrize(
    "data", [b"PK\x03\x04" + b"not really a workbook" * 10, b"garbage " * 50], ids=["zip-magic", "no-magic"]
)
def test_broken_xlsx(tmp_path, data):
    message = read_error(tmp_path, data, "book.xlsx")
    assert "book.xlsx could not be read as an Excel workbook" in message
    assert "save it as .xlsx or CSV" in message


def test_broken_parquet(tmp_path):
    message = read_error(tmp_path, b"PAR1" + b"\x00\x01" * 40, "data.parquet")
    assert "data.parquet could not be read as Parquet" in message
    assert "What to do:" in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError) as info:
        pipeline.read_table(tmp_path / "nope.csv")
    assert "nope.csv does not exist" in info.value.user_message()
    with pytest.raises(InputError) as info:
        pipeline.read_table(tmp_path)
    assert "is a folder, not a file" in info.value.user_message()


# --- malformed rows ------------------------------------------------------------------


def test_lines_with_too_many_fields_are_kept_and_reported(tmp_path):
    table = read(tmp_path, b"id,comment\n1,fine\n2,too,many,fields\n3,ok\n4,one,extra\n")
    assert rows(table) == [["1", "fine"], ["2", "too,many,fields"], ["3", "ok"], ["4", "one,extra"]]
    assert len(table.notes) == 1
    note = table.notes[0]
    assert "2 malformed line(s)" in note
    assert "lines 3, 5" in note
    assert "'comment'" in note


def test_first_row_with_an_extra_field_does_not_shift_the_table(tmp_path):
    # pandas would silently take the first field as the index and shift every row
    table = read(tmp_path, b"id,comment\n1,late, again\n2,fine\n3,ok\n")
    assert rows(table) == [["1", "late, again"], ["2", "fine"], ["3", "ok"]]
    assert "1 malformed line(s) (line 2)" in table.notes[0]


def test_rows_with_too_few_fields_get_empty_cells(tmp_path):
    table = read(tmp_path, b"id,comment,score\n1,good,5\n2\n3,bad\n")
    assert rows(table) == [["1", "good", "5"], ["2", "", ""], ["3", "bad", ""]]
    assert table.notes == ()


def test_unclosed_quote_is_an_error_naming_the_line(tmp_path):
    message = read_error(tmp_path, b'id,comment\n1,fine\n2,"never closed\n3,more\n4,x,y\n')
    assert "line 3 that is never closed" in message
    assert "What to do: close the quote" in message


# --- values stay as text -------------------------------------------------------------


def test_values_are_kept_unchanged_as_text(tmp_path):
    table = read(tmp_path, b"code,price,status,empty,flag,sci,padded\n007,1.50,NA,,TRUE,1e5,  two  \n")
    assert table.frame.iloc[0].tolist() == ["007", "1.50", "NA", "", "TRUE", "1e5", "  two  "]
    assert not table.frame.isna().any().any()


def test_one_column_file_without_delimiter(tmp_path):
    table = read(tmp_path, b"comment\nthe app is slow\nlove the new design\n")
    assert list(table.frame.columns) == ["comment"]
    assert table.frame["comment"].tolist() == ["the app is slow", "love the new design"]


def test_one_column_file_whose_texts_contain_commas(tmp_path):
    table = read(tmp_path, b"comment\nslow, buggy, crashes\nlove it\n")
    assert list(table.frame.columns) == ["comment"]
    assert table.frame["comment"].tolist() == ["slow, buggy, crashes", "love it"]


def test_file_with_one_row(tmp_path):
    table = read(tmp_path, b"id,comment\n1,only one\n")
    assert table.frame.shape == (1, 2)
    assert rows(table) == [["1", "only one"]]


def test_bytes_upload_uses_the_given_name(tmp_path):
    table = pipeline.read_table(b"id;comment\n1;hi\n", "upload.csv")
    assert table.name == "upload.csv"
    assert rows(table) == [["1", "hi"]]


# --- Excel and Parquet ---------------------------------------------------------------


def test_utf8_character_cut_at_the_sniffing_boundary_is_read_whole(tmp_path):
    from pipeline.io import SNIFF_BYTES

    filler = "a" * (SNIFF_BYTES - len("text\n") - 1)  # "é" (2 bytes) straddles the sniffed head
    path = tmp_path / "long.csv"
    path.write_bytes(f"text\n{filler}é tail\nnext row\n".encode())
    table = pipeline.read_table(path)
    assert table.encoding == "utf-8"
    assert table.frame["text"].tolist() == [f"{filler}é tail", "next row"]


def test_fingerprint_in_blocks_matches_one_pass_and_sees_late_changes(monkeypatch):
    from pipeline import types

    frame = pd.DataFrame({"text": [f"row {i}" for i in range(10)], "n": list(range(10))})
    whole = types.frame_fingerprint(frame)
    monkeypatch.setattr(types, "FINGERPRINT_BLOCK", 3)
    assert types.frame_fingerprint(frame) == whole
    changed = frame.copy()
    changed.loc[9, "text"] = "row 9!"
    assert types.frame_fingerprint(changed) != whole


def test_excel_round_trip(tmp_path):
    frame = pd.DataFrame(
        {"id": [1, 2, 3], "code": ["007", "010", "x"], "comment": ["café", "two words", "日本"]}
    )
    path = tmp_path / "book.xlsx"
    frame.to_excel(path, index=False, engine="openpyxl")
    table = pipeline.read_table(path)
    assert table.name == "book.xlsx"
    assert list(table.frame.columns) == ["id", "code", "comment"]
    assert table.frame["id"].tolist() == [1, 2, 3]
    assert table.frame["code"].tolist() == ["007", "010", "x"]
    assert table.frame["comment"].tolist() == ["café", "two words", "日本"]
    # the same workbook uploaded as bytes
    assert pipeline.read_table(path.read_bytes(), "upload.xlsx").fingerprint == table.fingerprint


def test_excel_header_only(tmp_path):
    path = tmp_path / "empty.xlsx"
    pd.DataFrame({"comment": []}).to_excel(path, index=False, engine="openpyxl")
    with pytest.raises(InputError) as info:
        pipeline.read_table(path)
    assert "empty.xlsx has a header but no rows" in info.value.user_message()


def test_parquet_round_trip(tmp_path):
    frame = pd.DataFrame({"id": [1, 2], "score": [0.5, np.nan], "comment": ["first", None]})
    path = tmp_path / "data.parquet"
    frame.to_parquet(path)
    table = pipeline.read_table(path)
    assert table.frame.shape == (2, 3)
    assert table.frame["id"].tolist() == [1, 2]
    assert table.frame["score"].iloc[0] == 0.5 and np.isnan(table.frame["score"].iloc[1])
    assert table.frame["comment"].iloc[0] == "first" and pd.isna(table.frame["comment"].iloc[1])
    # detected by content, whatever the name
    assert pipeline.read_table(path.read_bytes(), "upload.bin").frame.shape == (2, 3)


# --- suggest_text_column -------------------------------------------------------------


def test_suggest_text_column_picks_the_prose():
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(6)],
            "amount": ["12.50", "-3", "1,200", "7", "0.5", "99"],
            "date": ["2024-01-05"] * 6,
            "when": ["2024-01-05 13:45:00"] * 6,
            "uuid": ["3f2a9c1e-1b2c-4d5e-8f90-123456789abc"] * 6,
            "stamp": ["2024-01-05T13:45:00Z"] * 6,
            "category": ["billing", "crash", "login", "billing", "crash", "login"],
            "comment": ["love it", "app crashes", "bad", "refund please", "ok", "cannot log in"],
        }
    )
    assert pipeline.suggest_text_column(frame) == "comment"


def test_suggest_text_column_reads_csv_text_and_skips_numbers(tmp_path):
    table = read(tmp_path, b"id,score,comment\n1,5,the checkout keeps failing\n2,3,works\n")
    assert pipeline.suggest_text_column(table.frame) == "comment"
    assert pipeline.suggest_text_column(pd.DataFrame({"n": [1, 2], "x": ["1", "2"]})) is None


# --- spreadsheet safety --------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=evil", "'\t=evil"),
        ("\r=evil", "'\r=evil"),
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("-5", "-5"),
        ("+3.2", "+3.2"),
        ("-1e5", "-1e5"),
        ("plain text", "plain text"),
        ("a=b", "a=b"),
        ("<script>alert(1)</script>", "<script>alert(1)</script>"),
        ("", ""),
        (-5, -5),
        (3.2, 3.2),
        (None, None),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_spreadsheet_safe_covers_cells_headers_and_categories_without_mutating():
    frame = pd.DataFrame(
        {
            "=header": ["=cmd", "ok"],
            "n": [-1, 2],
            "cat": pd.Categorical(["@x", "b"]),
            "s": pd.array(["+a", None], dtype="string"),
        }
    )
    before = frame.copy()
    safe = spreadsheet_safe(frame)
    assert list(safe.columns) == ["'=header", "n", "cat", "s"]
    assert safe["'=header"].tolist() == ["'=cmd", "ok"]
    assert safe["n"].tolist() == [-1, 2]
    assert safe["cat"].tolist() == ["'@x", "b"]
    assert safe["s"].iloc[0] == "'+a" and pd.isna(safe["s"].iloc[1])
    pd.testing.assert_frame_equal(frame, before)


def test_spreadsheet_safe_with_repeated_header_names():
    frame = pd.DataFrame([["=a", "=b"]], columns=["x", "x"])
    assert spreadsheet_safe(frame).values.tolist() == [["'=a", "'=b"]]


HOSTILE = [
    '=HYPERLINK("http://x","y")',
    "@SUM(A1)",
    "<script>alert(1)</script>",
    "-5",
    'naïve, "quoted"\nline',
]


def test_write_csv_has_bom_and_reads_back(tmp_path):
    frame = pd.DataFrame({"id": [1, 2, 3, 4, 5], "text": HOSTILE, "+h": ["a", "b", "c", "d", "e"]})
    path = tmp_path / "out.csv"
    write_csv(frame, path)
    data = path.read_bytes()
    assert data.startswith(UTF8_BOM)
    assert data == csv_bytes(frame)
    table = pipeline.read_table(path)
    assert table.encoding == "utf-8-sig"
    assert list(table.frame.columns) == ["id", "text", "'+h"]
    assert table.frame["id"].tolist() == ["1", "2", "3", "4", "5"]
    assert table.frame["text"].tolist() == [
        '\'=HYPERLINK("http://x","y")',
        "'@SUM(A1)",
        "<script>alert(1)</script>",
        "-5",
        'naïve, "quoted"\nline',
    ]


def test_output_paths():
    paths = output_paths("results/run.csv")
    assert {k: str(v) for k, v in paths.items()} == {
        "table": "results/run.csv",
        "clusters": "results/run.clusters.csv",
        "manifest": "results/run.manifest.json",
    }


# --- size limits (decompression bombs) -------------------------------------------------


def _xlsx_rows(n: int, dimension: str | None = None) -> bytes:
    """A workbook with a header and ``n`` rows, written streaming; ``dimension`` plants a size
    declaration in the sheet (a crafted file can declare a false one)."""
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["text"])
    for i in range(n):
        sheet.append([f"row {i}"])
    buffer = io.BytesIO()
    book.save(buffer)
    if dimension is None:
        return buffer.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<sheetViews>", f'<dimension ref="{dimension}"/><sheetViews>'.encode())
            dst.writestr(item, data)
    return out.getvalue()


def test_xlsx_bomb_is_refused_before_it_is_loaded(tmp_path, monkeypatch):
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(_xlsx_rows(30_000, dimension="A1:A2"))  # it claims 2 rows

    def never(*args, **kwargs):
        raise AssertionError("pandas.read_excel was called: the sheet was loaded")

    monkeypatch.setattr(pd, "read_excel", never)
    with pytest.raises(InputError) as info:
        pipeline.read_table(path, limits=Limits(max_rows=10_000))
    message = info.value.user_message()
    assert "bomb.xlsx is too big: it has more than 10,000 rows in its first sheet" in message
    assert "this server accepts at most 10,000 rows" in message
    assert "CLUSTERLAB_MAX_ROWS" in message and "--max-rows" in message
    monkeypatch.setenv("CLUSTERLAB_MAX_ROWS", "10000")  # the default limits come from the environment
    with pytest.raises(InputError, match="more than 10,000 rows"):
        pipeline.read_table(path)


def test_xlsx_that_unpacks_past_the_cell_limit_is_refused_before_it_is_opened(tmp_path, monkeypatch):
    from pipeline import io as reader

    monkeypatch.setattr(reader, "XLSX_UNPACKED_FLOOR", 0)
    monkeypatch.setattr(reader, "XLSX_BYTES_PER_CELL", 1)
    monkeypatch.setattr("openpyxl.load_workbook", lambda *a, **k: pytest.fail("the workbook was opened"))
    with pytest.raises(InputError, match=r"GB of XML once unpacked; this server accepts at most 100 cells"):
        pipeline.read_table(_xlsx_rows(30), "small.xlsx", limits=Limits(max_rows=0, max_cells=100))


@pytest.mark.parametrize("fmt", ["csv", "tsv", "xlsx", "parquet"])
def test_row_and_cell_limits_apply_to_every_format(tmp_path, fmt):
    frame = pd.DataFrame({"id": ["1", "2", "3", "4"], "text": ["a", "b", "c", "d"]})
    path = tmp_path / f"data.{fmt}"
    if fmt in ("csv", "tsv"):
        frame.to_csv(path, index=False, sep="," if fmt == "csv" else "\t")
    elif fmt == "xlsx":
        frame.to_excel(path, index=False, engine="openpyxl")
    else:
        frame.to_parquet(path)
    with pytest.raises(
        InputError, match=r"has (more than 3|4) rows( in its first sheet)?; .* at most 3 rows"
    ):
        pipeline.read_table(path, limits=Limits(max_rows=3))
    with pytest.raises(InputError, match=r"4 rows x 2 columns = 8 cells.*at most 7 cells"):
        pipeline.read_table(path, limits=Limits(max_rows=0, max_cells=7))
    assert pipeline.read_table(path, limits=Limits(max_rows=4, max_cells=8)).frame.shape == (4, 2)
    assert pipeline.read_table(path, limits=Limits(max_rows=0, max_cells=0)).frame.shape == (4, 2)


def test_cli_max_rows_and_environment_limit(tmp_path, monkeypatch, capsys):
    import pipeline.__main__ as cli

    path = tmp_path / "three.csv"
    path.write_bytes(b"text\nfirst\nsecond\nthird\n")
    monkeypatch.setattr(cli, "plan", lambda *args, **kwargs: [])  # reading is what is tested
    base = ["plan", str(path), "--text-column", "text", "--cache-dir", str(tmp_path / "cache")]

    monkeypatch.setenv("CLUSTERLAB_MAX_ROWS", "2")
    assert cli.main(base) == 2
    err = capsys.readouterr().err
    assert "error: [input] three.csv is too big: it has more than 2 rows" in err
    assert "hint: " in err
    assert cli.main([*base, "--max-rows", "3"]) == 0  # the flag wins over the environment
    assert cli.main([*base, "--max-rows", "0"]) == 0  # 0 = no limit
    monkeypatch.delenv("CLUSTERLAB_MAX_ROWS")
    assert cli.main([*base, "--max-rows", "1"]) == 2
    assert "at most 1 rows" in capsys.readouterr().err
    run = ["run", str(path), "--text-column", "text", "--out", str(tmp_path / "o.csv"), "--max-rows", "2"]
    assert cli.main([*run, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert not (tmp_path / "o.csv").exists()


# --- mixed encodings -------------------------------------------------------------------


def test_mixed_utf8_and_cp1252_lines_are_each_decoded_right(tmp_path):
    lines = [("1", "café", "utf-8"), ("2", "naïve", "cp1252"), ("3", "plain", "ascii")]
    lines += [("4", "crème brûlée", "cp1252"), ("5", "日本語", "utf-8")]
    data = b"id,comment\n" + b"".join(f"{i},{text}\n".encode(enc) for i, text, enc in lines)
    table = read(tmp_path, data)
    assert table.frame["comment"].tolist() == [text for _, text, _ in lines]
    assert table.encoding == "utf-8+cp1252"
    assert table.notes == (
        "input: 2 line(s) (lines 3, 5) were not UTF-8 and were read as Windows-1252; "
        "the other lines are UTF-8",
    )


def test_file_all_in_cp1252_is_not_called_mixed(tmp_path):
    texts = ["café", "naïve", "plain", "crème brûlée", "“quoted” – €5"]
    data = b"id;comment\n" + "".join(f"{i};{t}\n" for i, t in enumerate(texts)).encode("cp1252")
    table = read(tmp_path, data)
    assert table.encoding == "cp1252"
    assert table.frame["comment"].tolist() == texts
    assert table.notes == ()


# --- column names ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_repeated_and_empty_headers_get_clear_reported_names(tmp_path, fmt):
    header = ["text", "id", "text", None, "text (2)"]
    values = [["a", "i1", "b", "c", "d"], ["e", "i2", "f", "g", "h"]]
    if fmt == "csv":
        data = ("\n".join(",".join(v or "" for v in row) for row in [header, *values]) + "\n").encode()
    else:
        import openpyxl

        book = openpyxl.Workbook()
        for row in [header, *values]:
            book.active.append(row)
        buffer = io.BytesIO()
        book.save(buffer)
        data = buffer.getvalue()
    table = read(tmp_path, data, f"data.{fmt}")
    # "text (2)" is taken by a real header, so the repeated "text" becomes "text (3)"
    assert list(table.frame.columns) == ["text", "id", "text (3)", "column 4", "text (2)"]
    assert rows(table) == values
    assert table.notes == (
        "input: the header 'text' appears 2 times; the columns are named 'text', 'text (3)'",
        "input: column 4 has no header; it is named 'column 4'",
    )


def test_output_column_names_never_collide_and_renames_are_reported(tmp_path, monkeypatch, capsys):
    import json

    import pipeline.__main__ as cli
    from pipeline import Runtime
    from tests.conftest import FakeEmbedder, topic_texts

    monkeypatch.setattr(cli, "Runtime", lambda **kw: Runtime(embedder=FakeEmbedder(), **kw))
    texts, _ = topic_texts(n_per_topic=15)
    ids = [f"old-{i}" for i in range(len(texts))]
    path = tmp_path / "in.csv"
    pd.DataFrame({"cluster_id": ids, "cluster_id_input": ids[::-1], "text": texts}).to_csv(path, index=False)
    out = tmp_path / "out.csv"
    args = ["run", path, "--text-column", "text", "--out", out, "--cache-dir", tmp_path / "cache", "--quiet"]
    assert cli.main([str(a) for a in args]) == 0
    err = capsys.readouterr().err
    assert "warning: [output] the input column 'cluster_id' is named 'cluster_id_input_2'" in err
    labeled = pd.read_csv(out, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    assert list(labeled.columns[:3]) == ["cluster_id_input_2", "cluster_id_input", "text"]
    assert labeled.columns.is_unique
    assert labeled["cluster_id_input_2"].tolist() == ids
    assert labeled["cluster_id_input"].tolist() == ids[::-1]
    manifest = json.loads(output_paths(out)["manifest"].read_text(encoding="utf-8"))
    assert manifest["output_renames"] == [{"input": "cluster_id", "output": "cluster_id_input_2"}]
    assert any("'cluster_id_input_2'" in w for w in manifest["warnings"])


# --- nested Parquet columns ------------------------------------------------------------


def test_list_and_struct_parquet_columns_are_refused_as_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.config import PreprocessParams
    from pipeline.stages.preprocess import preprocess

    path = tmp_path / "nested.parquet"
    tags = pa.array([["it", "x"], ["y"]], pa.list_(pa.string()))
    meta = pa.array([{"lang": "en", "n": 1}, {"lang": "de", "n": 2}])
    pq.write_table(pa.table({"tags": tags, "meta": meta, "text": ["hello there", "good day"]}), path)
    table = pipeline.read_table(path)
    with pytest.raises(InputError) as info:
        preprocess(table, PreprocessParams(text_column="tags"))
    assert info.value.stage == "preprocess"
    assert "the column 'tags' holds lists (Parquet type list<string>), not text" in info.value.message
    assert "choose another text column, or join each row's items" in info.value.hint
    with pytest.raises(InputError, match=r"'meta' holds structs \(Parquet type struct<lang: string"):
        preprocess(table, PreprocessParams(text_column="meta"))
    assert preprocess(table, PreprocessParams(text_column="text")).n_texts == 2
