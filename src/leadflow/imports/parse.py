"""Reading an uploaded file into a header and rows of text cells, streaming.

CSV: UTF-8 with its BOM removed, or the declared encoding; the delimiter sniffed from
the first 64 KiB among `,` `;` tab and `|`, or the declared one. XLSX: the first sheet
through openpyxl in read-only mode with cached values (`data_only`): a formula cell
gives the value Excel last computed for it, never the formula (a file saved by a
program that computes nothing has no cached value: the cell is empty). Neither reader
holds more than a row at a time; the caller stores rows in batches.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any

from leadflow.errors import InvalidInput

DELIMITERS = ",;\t|"
SNIFF_BYTES = 64 * 1024
MAX_COLUMNS = 200
MAX_CELL = 10_000
XLSX_MAGIC = b"PK\x03\x04"


@dataclass
class Parsed:
    columns: list[str]
    rows: Iterator[list[str | None]]
    encoding: str | None = None
    delimiter: str | None = None


def _columns(header: list[str | None]) -> list[str]:
    """Header names made unique and non-empty: `Column 3` for a blank, `Email (2)` for
    a repeat."""
    if len(header) > MAX_COLUMNS:
        raise InvalidInput(["body", "file"], f"At most {MAX_COLUMNS} columns.", "too_many_columns")
    names: list[str] = []
    seen: set[str] = set()
    for index, raw in enumerate(header, start=1):
        name = (raw or "").strip()[:200] or f"Column {index}"
        unique, n = name, 1
        while unique.casefold() in seen:
            n += 1
            unique = f"{name} ({n})"
        seen.add(unique.casefold())
        names.append(unique)
    return names


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.replace("\x00", "").strip()
    if len(value) > MAX_CELL:
        raise InvalidInput(
            ["body", "file"], f"A cell may hold at most {MAX_CELL} characters.", "cell_too_long"
        )
    return value or None


def _width(row: list[str | None], width: int) -> list[str | None]:
    if len(row) < width:
        return row + [None] * (width - len(row))
    return row[:width]


def check_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise InvalidInput(["body", "encoding"], "Unknown encoding.", "unknown_encoding") from None


def read_csv(file: IO[bytes], encoding: str | None, delimiter: str | None) -> Parsed:
    codec = check_encoding(encoding or "utf-8")
    if codec == "utf-8":
        codec = "utf-8-sig"  # the BOM, when present, is not part of the first header
    head = file.read(SNIFF_BYTES)
    file.seek(0)
    if delimiter is None:
        sample = head.decode(codec, errors="ignore")
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
        except csv.Error:
            delimiter = ","
    text = io.TextIOWrapper(file, encoding=codec, newline="", errors="strict")
    reader = csv.reader(text, delimiter=delimiter)
    try:
        header = next(reader, None)
    except UnicodeDecodeError:
        raise _not_decodable(codec) from None
    except csv.Error as error:
        raise InvalidInput(["body", "file"], f"Not a CSV file: {error}", "not_csv") from None
    if not header:
        raise InvalidInput(["body", "file"], "The file has no header row.", "empty_file")
    columns = _columns([_cell(h) for h in header])

    def rows() -> Iterator[list[str | None]]:
        try:
            for raw in reader:
                row = _width([_cell(c) for c in raw], len(columns))
                if any(row):
                    yield row
        except UnicodeDecodeError:
            raise _not_decodable(codec) from None
        except csv.Error as error:
            raise InvalidInput(["body", "file"], f"Not a CSV file: {error}", "not_csv") from None

    return Parsed(columns, rows(), codec.removesuffix("-sig"), delimiter)


def _not_decodable(codec: str) -> InvalidInput:
    return InvalidInput(
        ["body", "file"],
        f"The file is not valid {codec.removesuffix('-sig')}: declare its encoding "
        "(`encoding`, e.g. windows-1252).",
        "not_decodable",
    )


def _xlsx_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    return _cell(str(value))


def read_xlsx(file: IO[bytes]) -> Parsed:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as error:
        raise InvalidInput(["body", "file"], f"Not an XLSX file: {error}", "not_xlsx") from None
    sheet = book.worksheets[0]
    values = sheet.iter_rows(values_only=True)
    header = next(values, None)
    if not header or not any(v is not None for v in header):
        book.close()
        raise InvalidInput(["body", "file"], "The first sheet has no header row.", "empty_file")
    columns = _columns([_xlsx_text(v) for v in header])

    def rows() -> Iterator[list[str | None]]:
        try:
            for raw in values:
                row = _width([_xlsx_text(v) for v in raw], len(columns))
                if any(row):
                    yield row
        finally:
            book.close()

    return Parsed(columns, rows())


def read(file: IO[bytes], encoding: str | None, delimiter: str | None) -> tuple[str, Parsed]:
    """(`csv` | `xlsx`, the parsed file): XLSX by its content (a zip), else CSV."""
    magic = file.read(4)
    file.seek(0)
    if magic == XLSX_MAGIC:
        return "xlsx", read_xlsx(file)
    return "csv", read_csv(file, encoding, delimiter)
