"""Extract daily sales: render the shared SQL, bind parameters, and write a content-addressed snapshot.

Downstream tasks receive a small `SnapshotRef` (path + content hash), never the DataFrame, so XCom stays
small and every task can prove it reads exactly the data that was validated.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import datetime as dt
import functools
import gzip
import hashlib
import io
import json
import logging
import lzma
import os
import re
import tempfile
import unicodedata
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.forecasting.anomaly import is_panel_wide
from include.forecasting.config import PROJECT_ROOT, SourceConfig

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "include" / "sql"
COLUMNS = ["sales_date", "series_id", "value"]


class SnapshotError(RuntimeError):
    """A snapshot file is missing or its content does not match its recorded hash."""


@dataclass(frozen=True)
class SnapshotRef:
    """What extract hands downstream: where the data is and what it hashes to."""

    path: str
    sha256: str
    rows: int
    series: list[str]
    min_date: str | None
    max_date: str | None
    window_start: str
    window_end: str
    config_sha256: str
    # sha256 of the Parquet file's bytes. `sha256` names the content (format-independent, the idempotency
    # input) but recomputing it means re-serialising the frame (~1.2 s at 1,000 series, in every task);
    # the file hash proves the same thing, that the file is the one extract wrote, in ~10 ms.
    file_sha256: str | None = None
    # Set by validation: the panel's cadence label and series quarantined by per-series rules (id -> why).
    cadence: str | None = None
    quarantined: dict[str, str] | None = None
    # Set by validation: the quarantined series whose rows broke a row rule (nothing is published from them,
    # not even a fallback).
    bad_rows: list[str] | None = None
    # Set by extract: per series, keys of the source's own grain found more than once
    # (series_id, n_keys, first_date, last_date, max_rows).
    raw_duplicates: list[dict[str, Any]] | None = None
    # Set by extract: rows per source date (sales_date, n_rows), the size of each delivery.
    delivery_rows: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for XCom."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SnapshotRef:
        """Rebuild from the XCom form."""
        return cls(**data)


def history_window(interval_end: dt.date, history_days: int) -> tuple[dt.date, dt.date]:
    """Return [start, end) of the training window; `end` is the run's data_interval_end, never today."""
    return interval_end - dt.timedelta(days=history_days), interval_end



@contextmanager
def duckdb_transaction(con: Any) -> Iterator[Any]:
    """One DuckDB transaction: committed if the block finishes, rolled back (and re-raised) if it fails,
    so a failed load or publish leaves the tables as they were."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")

def render_sql(name: str, dialect: str, **identifiers: str) -> str:
    """Read include/sql/<name>.sql (BigQuery dialect), substitute checked identifiers, transpile if needed."""
    text = (SQL_DIR / f"{name}.sql").read_text()
    for key, value in identifiers.items():
        text = text.replace("{{ " + key + " }}", value)
    if "{{" in text:
        raise ValueError(f"unsubstituted placeholder left in {name}.sql")
    if dialect == "bigquery":
        return text
    import sqlglot  # local: only the embedded path needs the transpiler

    return ";\n".join(sqlglot.transpile(text, read="bigquery", write=dialect))


def query_parameters(window: tuple[dt.date, dt.date], series: tuple[str, ...] | None) -> dict[str, Any]:
    """The named parameters of daily_sales.sql, as plain Python values."""
    return {"window_start": window[0], "window_end": window[1], "series": list(series or [])}


def bigquery_query_parameters(params: dict[str, Any]) -> list[Any]:
    """Turn the named parameters into typed BigQuery query parameters (bound, never formatted), each typed
    by its Python value: a date DATE (a datetime or Timestamp too, by its date: every date parameter of
    the project's SQL is a DATE, and a datetime sent as DATE would be "2025-06-01T00:00:00", which BigQuery
    refuses), bool BOOL, int INT64, float FLOAT64, anything else STRING; a list an ARRAY<STRING>."""
    from google.cloud import bigquery

    out: list[Any] = []
    for name, value in params.items():
        if isinstance(value, list):
            out.append(bigquery.ArrayQueryParameter(name, "STRING", [str(v) for v in value]))
        elif isinstance(value, dt.date):
            out.append(bigquery.ScalarQueryParameter(name, "DATE", value.date() if isinstance(value, dt.datetime) else value))
        elif isinstance(value, bool):
            out.append(bigquery.ScalarQueryParameter(name, "BOOL", value))
        elif isinstance(value, int):
            out.append(bigquery.ScalarQueryParameter(name, "INT64", value))
        elif isinstance(value, float):
            out.append(bigquery.ScalarQueryParameter(name, "FLOAT64", value))
        else:
            out.append(bigquery.ScalarQueryParameter(name, "STRING", str(value)))
    return out


def load_seed_csv(con: Any, source: SourceConfig, panel_share: float = 0.5) -> int:
    """(Re)load the seed CSV into the DuckDB source table, shaped like BigQuery's iowa_liquor_sales.sales.

    A date that does not parse or a value that is not a number, in fewer than `panel_share` of the series
    (`anomaly.panel_share`), loads as NULL with a warning naming the line, so that validation quarantines
    just those series (an impossible 2025-02-30 in one product's row stops that product, not the others);
    in more of them (a column mapped wrongly, another date layout, a locale's decimal comma) the file is
    refused, naming lines and the config key to set. Idempotent: the table is replaced in
    one transaction. Returns the number of rows loaded.
    """
    if source.seed_csv is None or not source.seed_csv.is_file():
        raise FileNotFoundError(f"seed CSV not found: {source.seed_csv} (source.seed_csv in the config)")
    frame = _named_as_configured(read_seed_text(source.seed_csv, source.file_columns()), [*source.file_columns(), *source.unique_key])
    missing = [c for c in source.file_columns() if c not in frame.columns]
    if missing:
        # Name the config key of each missing column: the fix is there, not in the file.
        keys = [f"source.columns.{role} = {name!r}" for role, value in source.columns.items() for name in (value if isinstance(value, list) else [value]) if name in missing]
        keys += [f"source.wide: {name!r}" for name in source.file_columns()[1:] if source.wide and name in missing]
        raise KeyError(f"seed CSV {source.seed_csv} lacks column(s) {missing} ({', '.join(keys)}); has {list(frame.columns)}: map source.columns to its headers")
    frame = _data_rows(frame, source.file_columns(), source.seed_csv)
    if frame.empty:  # refused here: loaded, it would replace the table's history with nothing
        raise ValueError(f"seed CSV {source.seed_csv} has a header but no rows (source.seed_csv in the config)")
    if source.wide:
        frame = _long_from_wide(frame, source)
    c = dict(source.columns)
    if isinstance(c["series"], list):
        frame, c["series"] = _joined_series(frame, c["series"])
    # Key columns beyond date and series (a department, an invoice line) are loaded as they are, so that a
    # CSV with several rows per series and date sums them and the duplicates check still has its grain.
    extra_keys = [k for k in source.unique_key if k not in ("date", "item_description", "bottles_sold")]
    absent = [k for k in extra_keys if k not in frame.columns]
    if absent:
        raise KeyError(f"source.unique_key names {absent}, which seed CSV {source.seed_csv} lacks; has {list(frame.columns)}")
    values, misread = decimal_point_values(frame[c["value"]], source.decimal, source.thousands)
    dates = parse_dates(frame[c["date"]], source.date_format)
    if not extra_keys:
        _hint_finer_grain(frame, c, dates, source.seed_csv, source.columns["series"])
    if extra_keys:  # transaction grain: a time of day is the transaction's, and the rows sum per day
        dates = dates.dt.normalize()
    bad_values = _check_cells(frame, c, source.seed_csv, dates, source.date_format, values, misread, panel_share, source.decimal, source.thousands)
    # NULL (an unreadable date is NaT already): validation names series, date and rule.
    values = values.mask(frame.index.isin(bad_values), "")
    if source.empty_values == "zero":
        values = _empty_as_no_sale(frame, c, values, bad_values, source.seed_csv)
    staged = pd.DataFrame(
        {
            "date": dates.dt.strftime("%Y-%m-%d"),
            "item_description": frame[c["series"]],
            "bottles_sold": values,
            **{k: frame[k] for k in extra_keys},
        }
    ).reset_index(drop=True)  # a wide table's index is (row, column): DuckDB reads the columns only
    schema, table = source.table.split(".")
    with duckdb_transaction(con):
        con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        con.register("seed_frame", staged)
        # Dates were checked above; an empty, NaN or (in a few series) unreadable value is NULL here, and
        # validation names it with its series and date.
        con.execute(
            f'CREATE OR REPLACE TABLE "{schema}"."{table}" AS SELECT '
            "TRY_CAST(NULLIF(date, '') AS DATE) AS date, NULLIF(item_description, '') AS item_description, "
            "TRY_CAST(NULLIF(bottles_sold, '') AS DOUBLE) AS bottles_sold"
            + "".join(f', "{k}"' for k in extra_keys)  # names checked against an identifier pattern by the config
            + " FROM seed_frame"
        )
        con.unregister("seed_frame")
    return len(staged)


def _long_from_wide(frame: pd.DataFrame, source: SourceConfig) -> pd.DataFrame:
    """A wide seed CSV (a date column, one column per series: `source.wide`, or every other column for
    "all") as the long table the rest of
    the load reads: one row per date and series column, the header its series id, the cell its value.

    An empty cell (empty, NA, null, nan) is a period without a row, so no sale, as in a long file without
    that row: a wide table has a cell for every date and series, and a product launched later or a day
    without a sale leaves it empty. The long table's index is (the row's index in the file, the cell's
    column), so later messages name a cell by its line and column in the file (`_cell_at`).
    """
    date, series, value = source.columns["date"], str(source.columns["series"]), str(source.columns["value"])
    columns = [c for c in frame.columns if c != date] if source.wide == "all" else list(source.wide or ())
    if clash := [c for c in (series, value) if c in columns]:
        raise ValueError(f"seed CSV {source.seed_csv}: {clash} is a series' column of the wide table and a name in source.columns: name the long table's series and value columns otherwise")
    long = frame.melt(id_vars=[date], value_vars=columns, var_name=series, value_name=value)
    # melt stacks the columns one after the other, each over every row of the file
    long.index = pd.MultiIndex.from_arrays([np.tile(frame.index.to_numpy(), len(columns)), np.repeat(columns, len(frame))], names=["row", "column"])
    empty = _is_missing(long[value])
    log.info(
        "seed CSV %s: a wide table of %d dates x %d series read long (%d rows; %d empty cells are periods without a row)",
        source.seed_csv, len(frame), len(columns), int((~empty).sum()), int(empty.sum()),
    )
    return long[~empty]


def _cell_at(row: Any) -> str:
    """Where a row of the loaded table is in the seed CSV: "line 7" (a row's index `i` is on line i + 2,
    `read_seed_text`), or "line 7, column 'casual'" for a cell of a wide table (`_long_from_wide`)."""
    if isinstance(row, tuple):
        return f"line {row[0] + 2}, column {row[1]!r}"
    return f"line {row + 2}"


def _is_missing(cells: pd.Series) -> pd.Series:
    """Which (trimmed) value cells mean "no value" (`_MISSING_VALUES`: empty, NA, null, nan; any case)."""
    return cells.str.lower().isin(_MISSING_VALUES)


def _empty_as_no_sale(frame: pd.DataFrame, columns: dict[str, str], values: pd.Series, bad_values: pd.Index, path: Path) -> pd.Series:
    """`values` with the empty cells (`_MISSING_VALUES`: empty, NA, null, nan) read as 0, no sale, and a
    warning counting them with examples (`source.empty_values: zero`). Cells of other text (`bad_values`)
    stay refused: "12kg" is not an empty cell."""
    empty = _is_missing(frame[columns["value"]]).to_numpy() & ~frame.index.isin(bad_values)
    if empty.any():
        rows = frame.index[empty]
        examples = "; ".join(f"{_cell_at(i)}: {frame.at[i, columns['series']]!r} {frame.at[i, columns['date']]}" for i in rows[:3])
        log.warning(
            "seed CSV %s: %d empty value(s) in %d series read as no sale (source.empty_values: zero), e.g. %s",
            path, len(rows), frame.loc[empty, columns["series"]].nunique(), examples,
        )
    return values.mask(empty, "0")


def _joined_series(frame: pd.DataFrame, parts: list[str]) -> tuple[pd.DataFrame, str]:
    """The frame with one more column, the series id of `source.columns.series: [a, b, ...]`: the cells of
    those columns joined by " / " (store `1`, item `Milk`: `1 / Milk`), and that column's name. A row with
    any of them empty names no series (an empty id, which validation refuses like any row without one)."""
    label = " + ".join(parts)
    joined = frame[parts[0]].str.cat([frame[p] for p in parts[1:]], sep=" / ") if len(parts) > 1 else frame[parts[0]]
    return frame.assign(**{label: joined.mask(frame[parts].eq("").any(axis=1), "")}), label


def _hint_finer_grain(frame: pd.DataFrame, columns: dict[str, str], dates: pd.Series, path: Path, series_config: str | list[str]) -> None:
    """Warn, naming the column(s), when several rows share a date and series but another CSV column tells
    them apart (a store, a department): as the config stands they are a delivery loaded twice, which
    validation refuses; if they are parts of one period's sales, `source.unique_key` with that column sums
    them, and `source.columns.series` with it (`series_config` plus that column) makes a series of each.
    Exact repeats (a file appended to itself) get no hint: no column tells them apart."""
    key = pd.DataFrame({"date": dates.dt.normalize(), "series": frame[columns["series"]]})
    repeated = key.duplicated(keep=False) & key["date"].notna()
    if not repeated.any():
        return
    by = [key.loc[repeated, "date"], key.loc[repeated, "series"]]
    size = frame.loc[repeated].groupby(by).size()
    others = [col for col in frame.columns if col not in columns.values()]
    telling = [col for col in others if frame.loc[repeated, col].groupby(by).nunique().eq(size).all()]
    if telling:
        suggested = ", ".join(["date", "item_description", *telling[:1]])
        series = series_config if isinstance(series_config, list) else [series_config]
        log.warning(
            "seed CSV %s: %d rows share a date and series with another row, told apart by column(s) %s: if they are parts "
            "of one period's sales, set source.unique_key: [%s] and they are summed per period; for a series each, set "
            "source.columns.series: [%s]; as configured they read as a delivery loaded twice, which validation refuses",
            path, int(repeated.sum()), telling, suggested, ", ".join([telling[0], *series]),
        )


# The first bytes of spreadsheet workbooks: xlsx and ods are zip archives (told from a zipped CSV by the
# manifest they hold), xls is an OLE2 compound file.
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0"
_WORKBOOK_MEMBERS = ("[Content_Types].xml", "mimetype")
# Compressed files by their first bytes, read through the decompression: portals (Kaggle among them) hand
# a CSV out zipped, and a long history is often kept gzipped.
_COMPRESSED_MAGIC: dict[bytes, Any] = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}


def _seed_bytes(path: Path) -> bytes:
    """The seed file's bytes, decompressed where it is gzip, bzip2 or xz (by its first bytes, whatever its
    name) or a zip archive of one file. A workbook is refused (it has to be saved as CSV first), and so is
    a zip of several files (which one is meant is the user's to say)."""
    workbook = f"seed CSV {path} is a spreadsheet workbook, not a CSV file: save it as CSV (UTF-8) and point source.seed_csv at that"
    with open(path, "rb") as handle:
        head = handle.read(8)
    try:
        raw = _decompressed(path, head, workbook)
    except (OSError, EOFError, lzma.LZMAError, zipfile.BadZipFile) as exc:  # a truncated or damaged archive
        if not head.startswith((_ZIP_MAGIC, *_COMPRESSED_MAGIC)):
            raise  # reading a plain file failed: not the archive's fault
        raise ValueError(f"seed CSV {path} is compressed (or a workbook) but cannot be read as such: {exc}") from None
    if raw.startswith((_ZIP_MAGIC, _OLE2_MAGIC)):  # an xls, plain or inside an archive; an xlsx inside one
        raise ValueError(workbook)
    return raw


def _decompressed(path: Path, head: bytes, workbook: str) -> bytes:
    """`_seed_bytes` past its checks: the file's bytes through the decompression its first bytes `head` name
    (an xls is refused by `_seed_bytes` on the bytes returned, as one inside an archive is)."""
    if head.startswith(b"PAR1"):
        raise ValueError(f"seed CSV {path} is a Parquet file, not CSV text: write it out as CSV (UTF-8) and point source.seed_csv at that")
    if head.startswith(_ZIP_MAGIC):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
            if any(n in _WORKBOOK_MEMBERS for n in names):
                raise ValueError(workbook)
            if len(names) != 1:
                listed = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                raise ValueError(
                    f"seed CSV {path} is a zip archive of {len(names)} files ({listed}): a zip is read when it holds one "
                    "CSV file; unpack the one you mean and point source.seed_csv at it"
                )
            return archive.read(names[0])
    opener = next((o for magic, o in _COMPRESSED_MAGIC.items() if head.startswith(magic)), None)
    with opener(path, "rb") if opener else open(path, "rb") as handle:
        return handle.read()


def read_seed_text(path: Path, header: list[str] | None = None) -> pd.DataFrame:
    """Every cell of the seed CSV as text (nothing parsed or dropped yet).

    UTF-8, with or without the byte-order mark a spreadsheet writes (it would otherwise glue itself to the
    first column's name); UTF-16 where the file starts with its byte-order mark (Excel's "Unicode Text"
    export, tab-separated; read as UTF-8 its headers are NUL-interleaved noise that matches no configured
    column); a file that is not UTF-8 is read as Windows-1252 (a legacy spreadsheet export, `Café`), with
    a warning. Compressed (gzip, bzip2, xz, a zip of one file) it is read through the decompression
    (`_seed_bytes`); a workbook is refused. The field separator is read off the header line.
    `header`: the configured columns; where they are not on the first line but on one of the next
    `_HEADER_SEARCH` (a report's title and notes above the table), the lines above it are skipped with a
    warning. A row of another field count than the header is refused naming its line.
    """
    raw = _seed_bytes(path)
    encodings = ("utf-16",) if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else ("utf-8-sig", "cp1252")
    for encoding in encodings:
        try:
            # The top of the file for the header line and separator; pandas decodes the rest itself (a large
            # file is not held as text besides its bytes and the table).
            top = codecs.getincrementaldecoder(encoding)().decode(raw[:_TOP_BYTES], final=len(raw) <= _TOP_BYTES)
        except UnicodeDecodeError:
            continue
        above, header_on = _from_header_line(top, header or [])
        if above:
            shown = " | ".join(line.strip() for line in above if line.strip())[:200]
            log.warning("seed CSV %s: the header is on line %d; the %d line(s) above it skipped (a title or notes?): %s", path, len(above) + 1, len(above), shown)
        sep = _delimiter(header_on)
        try:
            frame = pd.read_csv(io.BytesIO(raw), encoding=encoding, dtype=str, keep_default_na=False, sep=sep, skiprows=len(above))
            if not isinstance(frame.index, pd.RangeIndex):
                # pandas took the fields beyond the header's count for an index: rows wider than the header
                frame = _without_trailing_fields(raw.decode(encoding), sep, len(frame.columns), len(above), path)
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError:
            raise ValueError(f"seed CSV {path} is empty: not even a header line") from None
        except pd.errors.ParserError as exc:  # pandas counts the lines it read, from the header line
            counted = f" (counting from the header, line {len(above) + 1} of the file)" if above else ""
            raise ValueError(
                f"seed CSV {path} cannot be read as a table: {str(exc).strip()}{counted} (a title or notes above the header line that do "
                "not hold the configured source.columns? a field separator inside an unquoted value?)"
            ) from None
        frame.index += len(above)  # row i is on line i + 2 of the file, as the messages count lines
        if encoding == "cp1252":
            log.warning("seed CSV %s is not UTF-8: read as %s (check the series names; save it as CSV UTF-8 to be sure)", path, encoding)
        return frame
    what = "not UTF-16 text, though it starts with UTF-16's byte-order mark" if encodings == ("utf-16",) else "neither UTF-8 nor Windows-1252 text"
    raise ValueError(f"seed CSV {path} is {what}: save it as CSV (UTF-8)")


def _without_trailing_fields(text: str, sep: str, width: int, above: int, path: Path) -> pd.DataFrame:
    """The table of a CSV whose rows are wider than its header line of `width` fields: read without the
    extra fields where every one of them is empty (a trailing separator some tools write on each data
    row), else refused naming the first line whose extra fields hold data (`above` lines were skipped
    above the header)."""
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    for _ in range(above):
        next(rows, None)  # the title lines skipped above the header
    for number, row in enumerate(rows):
        if any(cell.strip() for cell in row[width:]):
            raise ValueError(
                f"seed CSV {path}: line {number + 1 + above} has {len(row)} fields where the header line has {width} "
                f"({row[:width + 2]}): a title or notes above the header line? a field separator inside an unquoted value?"
            )
    log.info("seed CSV %s: data rows end with an empty field beyond the header's %d (a trailing separator); read without it", path, width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ParserWarning)  # the fields dropped are the empty ones checked above
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=sep, index_col=False, skiprows=above)


# How many lines from the top the header line is looked for (`read_seed_text`), within its first bytes.
_HEADER_SEARCH = 20
_TOP_BYTES = 1 << 16


def _from_header_line(text: str, header: list[str]) -> tuple[list[str], str]:
    """The lines above the header line (none where it is the first), blank ones too, and the text from the
    header line on: the header line
    is the first of the top `_HEADER_SEARCH` whose cells hold every configured column (`header`; blanks
    and case aside). Nothing is skipped without `header`, or where no line holds it (the column check names
    what the first line has)."""
    wanted = {name.strip().casefold() for name in header}
    if not wanted:
        return [], text
    reader, lines, offset = io.StringIO(text), [], 0  # line by line: the top of a large file, not all of it
    for _ in range(_HEADER_SEARCH):
        line = reader.readline()
        if not line:
            break
        cells = next(csv.reader([line], delimiter=_delimiter(line)), [])
        if wanted <= {c.strip().casefold() for c in cells}:
            return lines, text[offset:]
        lines.append(line)
        offset += len(line)
    return [], text


def _named_as_configured(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The seed CSV without blanks around its headers and cells (`2024-01-05, apples, 3.5` as typed by hand;
    a padded id would otherwise be another series), its headers renamed to the configured names where they
    differ only in case (`Date` for `date`) and no other header claims the name."""
    frame = frame.rename(columns=lambda c: str(c).strip())
    trimmed = frame.apply(lambda column: column.str.strip())
    padded = int((trimmed != frame).to_numpy().sum())
    if padded:
        log.info("seed CSV: %d cell(s) had blanks around them; read without them", padded)
    rename = {}
    for name in dict.fromkeys(names):
        same = [c for c in trimmed.columns if c.casefold() == name.casefold()]
        if name not in trimmed.columns and len(same) == 1:
            rename[same[0]] = name
    return trimmed.rename(columns=rename)


def _data_rows(frame: pd.DataFrame, columns: list[str], path: Path) -> pd.DataFrame:
    """The seed CSV's rows that hold data: without rows whose every cell is empty (`,,` lines a spreadsheet
    writes below formatted cells), and without rows that repeat the header line (`date,item_name,...` again
    in the middle: exports concatenated with `cat`), with a log line naming them. Neither is a sale; as data
    the first would be a row without a series name, which blocks the run, and the second a series named
    like the series column."""
    empty = frame.eq("").all(axis=1).to_numpy()
    # Casefolded: a header `Date` was taken for the configured `date` (`_named_as_configured`).
    cells = frame[columns].apply(lambda column: column.str.casefold())
    repeated = cells.eq(pd.Series([c.casefold() for c in columns], index=columns)).all(axis=1).to_numpy()
    if empty.any():
        log.info("seed CSV %s: %d empty row(s) skipped", path, int(empty.sum()))
    if repeated.any():
        lines = ", ".join(str(i + 2) for i in frame.index[repeated][:5]) + (", ..." if repeated.sum() > 5 else "")
        log.warning("seed CSV %s: %d row(s) repeat the header line (files concatenated?), dropped: line(s) %s", path, int(repeated.sum()), lines)
    return frame[~(empty | repeated)]  # the index is the line's (`read_seed_text`): messages name the file's lines


def _delimiter(text: str) -> str:
    """The seed CSV's field separator, read off its header line: a comma, or the semicolon, tab or pipe
    of exports from spreadsheets set to a locale whose decimal mark is the comma."""
    end = text.find("\n")
    header = text if end < 0 else text[:end]  # not partition(): it would copy the rest of a large file
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or nothing to tell: the column check names what was found
        return ","


class UnparseableRowsError(ValueError):
    """Cells of the seed CSV that cannot be read as dates or numbers: refused at load, never dropped."""


# A time zone after a time of day ("Z", "+01:00", "-0500", and " UTC" as BigQuery writes a TIMESTAMP to
# CSV): dropped, the row's date is its own wall-clock date (converting to UTC would move a midnight row to
# the day before).
_ZONE = re.compile(r"(?<=\d\d:\d\d)(:\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d| ?UTC)$")


def parse_dates(raw: pd.Series, date_format: str | None = None) -> pd.Series:
    """The seed CSV's dates as timestamps (NaT where a cell does not parse).

    `date_format` None reads ISO 8601: a date, optionally with a time of day and a zone (the zone is
    dropped), a year and month (the month's first day), or an ISO week (2025-W05, 2025W05: its Monday;
    2025-W05-3: its Wednesday), as BI tools label weekly exports. Otherwise `date_format` is a strftime
    format. A time of day is kept, so that the caller can refuse one that is not midnight.
    """
    text = raw.astype(str).str.strip()
    if date_format is not None:
        return pd.to_datetime(text, format=date_format, errors="coerce")
    parsed = pd.to_datetime(text.str.replace(_ZONE, lambda m: m.group(1) or "", regex=True), format="ISO8601", errors="coerce")
    # pandas' ISO 8601 parser has no week dates (they come back NaT); strptime's ISO year, week and
    # weekday do (%G-W%V-%u). Only the cells that did not parse are looked at.
    week = text[parsed.isna()].str.extract(_ISO_WEEK).dropna(subset=["year"])
    if len(week):
        iso = week["year"] + "-W" + week["week"] + "-" + week["day"].fillna("1")
        parsed = parsed.astype("datetime64[ns]")
        parsed.loc[week.index] = pd.to_datetime(iso, format="%G-W%V-%u", errors="coerce").astype("datetime64[ns]")
    return parsed


# An ISO 8601 week date: year, week and optionally the weekday (1 = Monday), extended or basic.
_ISO_WEEK = re.compile(r"^(?P<year>\d{4})-?W(?P<week>\d{2})(?:-?(?P<day>[1-7]))?$")


# Day and month in either order, then the year in four digits or two (05/02/10, as some exports write it).
_DAY_MONTH_YEAR = re.compile(r"^\s*(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})\s*$")


# Layouts that spell the month (May 30, 2025; 30-May-2025): no day/month ambiguity, so a layout that
# reads every cell is the file's.
_NAMED_MONTH_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%d-%b-%Y", "%d-%b-%y", "%b %d %Y", "%B %d %Y", "%d.%b.%Y", "%Y-%b-%d")
# A spreadsheet's serial day numbers (days since 1899-12-30, Excel's and LibreOffice's dates) of 1970-2099:
# what a date column formatted as "General" or "Number" exports.
_SPREADSHEET_EPOCH = pd.Timestamp("1899-12-30")
_SERIAL_DAYS = (25569, 73050)


def suggest_date_format(cells: pd.Series) -> str:
    """A `source.date_format` for dates such as 30/05/2025 or 05/30/2025, told apart by the cells
    themselves: a first number above 12 is a day, a second one above 12 is a day. Never a guess: when
    nothing tells them apart, both layouts are named. Dates that spell the month (May 30, 2025) get the
    layout that reads every cell."""
    text = cells.astype(str).str.strip()
    for layout in _NAMED_MONTH_FORMATS:
        if len(text) and pd.to_datetime(text, format=layout, errors="coerce").notna().all():
            return f"the month spelled out: {layout!r}"
    found = text.str.extract(_DAY_MONTH_YEAR).dropna()
    if found.empty:
        return "a strftime format such as '%d/%m/%Y'"
    sep, year = found[1].iloc[0], "%Y" if len(found[3].iloc[0]) == 4 else "%y"
    day_first, month_first = f"%d{sep}%m{sep}{year}", f"%m{sep}%d{sep}{year}"
    if (found[0].astype(int) > 12).any():
        return f"day first: {day_first!r}"
    if (found[2].astype(int) > 12).any():
        return f"month first: {month_first!r}"
    return f"{day_first!r} or {month_first!r}: these rows do not tell which"


def date_hint(cells: pd.Series, date_format: str | None) -> str:
    """What to do about date cells that did not parse: a `source.date_format` read off them (when none is
    set), or, for a spreadsheet's serial day numbers (44928), which no format reads, how to save the
    column as dates."""
    text = cells.astype(str).str.strip()
    if len(text) and text.str.fullmatch(r"\d{5}").all() and text.astype(int).between(*_SERIAL_DAYS).all():
        first = text.iloc[0]
        return (
            f"these are a spreadsheet's serial day numbers, not dates ({first} is "
            f"{_SPREADSHEET_EPOCH + pd.Timedelta(days=int(first)):%Y-%m-%d}): format the date column as dates "
            "(yyyy-mm-dd) in the spreadsheet and save the CSV again"
        )
    if date_format is None:
        return f"set source.date_format to the file's layout ({suggest_date_format(text)})"
    return f"source.date_format is {date_format!r}: check it against these cells"


# Value cells that mean "no value": loaded as NULL (or NaN) for validation to name, never refused here.
_MISSING_VALUES = ["", "nan", "null", "na"]
# The spaces a thousands separator " " stands for: a space, and the no-break and narrow no-break spaces
# that spreadsheets in such locales write.
_SPACES = " \u00a0\u202f"


@functools.cache
def _currency_signs() -> str:
    """Every currency sign Unicode knows ($, €, £, ¥, ₹, ...: category Sc), as a regex character class body."""
    return re.escape("".join(chr(i) for i in range(0x10000) if unicodedata.category(chr(i)) == "Sc"))


def _without_currency(text: pd.Series) -> pd.Series:
    """Value cells without a currency sign before or after the number ("$1,234.50", "-$5", "12,50 €"):
    money as a spreadsheet formats it. The sign says nothing about the amount; anything else around a
    number still makes it not a number."""
    signs = _currency_signs()
    pattern = rf"^(-?)[{_SPACES}]*[{signs}][{_SPACES}]*(?=[-\d])|[{_SPACES}]*[{signs}]$"
    stripped = text.str.replace(pattern, r"\1", regex=True)
    changed = int((stripped != text).sum())
    if changed:
        log.info("seed CSV: %d value(s) carried a currency sign; read without it", changed)
    return stripped


def _grouping(decimal: str, thousands: str | None) -> str | None:
    """The thousands separator in force: `source.thousands`, or "." under a decimal comma (1.234,5)."""
    return thousands if thousands is not None else ("." if decimal == "," else None)


def decimal_point_values(raw: pd.Series, decimal: str = ".", thousands: str | None = None) -> tuple[pd.Series, pd.Series]:
    """The value cells written with a decimal point, and which cells cannot be read with these marks.

    With a thousands separator (`thousands`; with `decimal` "," a "." by default) a number is digits, or
    digits grouped in threes by the separator, then optionally the decimal mark and digits: 1,234.5 with
    ",", 1.234,5 with "." and decimal ",". Anything else is not a number here: under decimal "," a "3.67"
    is refused rather than read as 367 or as 3.67, since either could be wrong.
    """
    text = _without_currency(raw.astype(str).str.strip())
    group = _grouping(decimal, thousands)
    if group is None and decimal == ".":
        return text, pd.Series(False, index=raw.index)
    sep = f"[{_SPACES}]" if group == " " else re.escape(group or "")
    integer = rf"(?:\d{{1,3}}(?:{sep}\d{{3}})+|\d+)" if group else r"\d+"
    ok = text.str.fullmatch(rf"-?{integer}(?:{re.escape(decimal)}\d+)?")
    missing = _is_missing(text)
    converted = text.str.replace(sep, "", regex=True) if group else text
    converted = converted.str.replace(decimal, ".", regex=False)
    return converted.where(ok, text), ~ok & ~missing


def _check_cells(
    frame: pd.DataFrame,
    columns: dict[str, str],
    path: Any,
    dates: pd.Series,
    date_format: str | None,
    values: pd.Series,
    misread: pd.Series,
    panel_share: float,
    decimal: str = ".",
    thousands: str | None = None,
) -> pd.Index:
    """Raise naming the CSV line numbers and examples of dates that carry a time of day other than
    midnight, and of dates that do not parse and values that are not numbers when they are panel-wide. A
    silently dropped row would shift the data's end and publish a stale run. Unreadable dates and values
    in a few series are logged in a warning naming them (the dates are NaT already); returns the rows
    whose value is to load as NULL."""
    bad_dates = frame.index[dates.isna()]
    timed = frame.index[dates.notna() & (dates != dates.dt.normalize())]
    raw = frame[columns["value"]]  # cells are trimmed already (`_named_as_configured`)
    numbers = pd.to_numeric(values, errors="coerce")
    bad_values = frame.index[(numbers.isna() & ~_is_missing(raw)) | misread.to_numpy()]
    problems = []
    wanted = "YYYY-MM-DD" if date_format is None else f"in source.date_format {date_format!r}"
    checks = (
        (f"date not {wanted}", bad_dates, columns["date"]),
        ("a time of day other than midnight (one row per series per period; for transactions name their key in source.unique_key)", timed, columns["date"]),
        ("value not a number", bad_values, columns["value"]),
    )
    for label, rows, column in checks:
        if len(rows):
            examples = "; ".join(f"{_cell_at(i)}: {column}={frame.at[i, column]!r} ({columns['series']}={frame.at[i, columns['series']]!r})" for i in rows[:5])
            problems.append(f"{len(rows)} row(s) with {label}, e.g. {examples}")
    series = frame[columns["series"]]
    unreadable = bad_dates.union(bad_values)
    if len(unreadable) and not len(timed) and not is_panel_wide(series[unreadable].nunique(), series.nunique(), panel_share):
        affected = [s for s in series[unreadable].unique() if s != ""]
        outcome = f"validation quarantines {'that series' if len(affected) == 1 else 'those series'} (series: {', '.join(map(str, affected[:10]))})"
        if len(affected) < series[unreadable].nunique():
            # A row naming no series cannot be pinned on one (a spreadsheet's totals or footer line).
            outcome = ("validation blocks the run: a row without a series name belongs to no series (a totals or "
                       "footer line? remove it)") + (f"; and quarantines series {', '.join(map(str, affected[:10]))}" if affected else "")
        log.warning("seed CSV %s: %s; loaded as missing, so %s", path, "; ".join(problems), outcome)
        return bad_values
    if problems:
        hint = "fix the file, or map source.columns to the right columns"
        if len(bad_dates):
            hint += "; " + date_hint(frame.loc[bad_dates, columns["date"]], date_format)
        if misread.any():
            group = _grouping(decimal, thousands)  # misread cells exist only where a separator is in force
            thousands_note = f"and source.thousands {thousands!r}" if thousands is not None else "(a '.' groups thousands)"
            hint += f"; with source.decimal {decimal!r} {thousands_note} a value reads 3{decimal}67 or 1{group}234{decimal}5"
        elif raw[bad_values].str.contains(",", regex=False).any():
            hint += "; if the comma is the decimal mark (3,67) set source.decimal: ','; if it groups thousands (1,234.5) set source.thousands: ','"
        raise UnparseableRowsError(f"seed CSV {path}: " + "; ".join(problems) + f" ({hint})")
    return bad_values


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the extracted frame stable dtypes and a stable order (sales_date, series_id)."""
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(f"extract result lacks column(s) {missing}; has {list(frame.columns)}")
    out = frame[COLUMNS].copy()
    out["sales_date"] = pd.to_datetime(out["sales_date"]).astype("datetime64[ns]")
    out["series_id"] = out["series_id"].astype("string").astype(object)
    # Keep the value as float if any cell is fractional or missing, so validation can see and name it.
    values = pd.to_numeric(out["value"], errors="coerce")
    whole = values.notna().all() and bool((values.dropna() % 1 == 0).all())
    out["value"] = values.astype("int64") if whole else values.astype("float64")
    return out.sort_values(["sales_date", "series_id"], kind="mergesort").reset_index(drop=True)


def read_sales_csv(path: Path, columns: dict[str, str]) -> pd.DataFrame:
    """Read a daily sales CSV with the config's column mapping (date, series, value) into the extract shape.

    Series ids are read as the text they are, as the seed loader reads them: pandas' inference would turn
    SKU codes like `00123` into 123.0 and take a product called `NA` or `None` for a missing name."""
    raw = pd.read_csv(path, dtype={columns["series"]: str}, keep_default_na=False, na_values={columns["date"]: [""], columns["value"]: [""]})
    return normalise(raw.rename(columns={columns["date"]: "sales_date", columns["series"]: "series_id", columns["value"]: "value"}))


def frame_sha256(frame: pd.DataFrame) -> str:
    """Content hash of a normalised frame, independent of file format and library versions."""
    canonical = frame.to_csv(index=False, date_format="%Y-%m-%d", lineterminator="\n")
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_snapshot(
    frame: pd.DataFrame,
    root: Path,
    window: tuple[dt.date, dt.date],
    config_sha256: str,
    raw_duplicates: list[dict[str, Any]] | None = None,
    delivery_rows: list[dict[str, Any]] | None = None,
) -> SnapshotRef:
    """Write the frame as <root>/snapshots/<hash>.parquet (content-addressed, so reruns are no-ops)."""
    frame = normalise(frame)
    digest = frame_sha256(frame)
    target = root / "snapshots" / f"{digest[:20]}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or frame_sha256(normalise(pd.read_parquet(target))) != digest:
        # A unique temporary name: two runs extracting the same content at once must not share it.
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp")
        os.close(fd)
        frame.to_parquet(tmp_name, index=False)
        os.replace(tmp_name, target)  # atomic: a half-written snapshot is never visible under its final name
    dates = frame["sales_date"]
    return SnapshotRef(
        file_sha256=file_sha256(target),
        path=str(target),
        sha256=digest,
        rows=len(frame),
        series=sorted(map(str, frame["series_id"].dropna().unique())),
        min_date=None if frame.empty else dates.min().date().isoformat(),
        max_date=None if frame.empty else dates.max().date().isoformat(),
        window_start=window[0].isoformat(),
        window_end=window[1].isoformat(),
        config_sha256=config_sha256,
        raw_duplicates=raw_duplicates or [],
        delivery_rows=delivery_rows or [],
    )


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_snapshot(ref: SnapshotRef | dict[str, Any], verify: bool = True) -> pd.DataFrame:
    """Load a snapshot and (by default) check that it is still what extract recorded: by the file's
    hash, or by the content hash for references written before file hashes were recorded."""
    ref = SnapshotRef.from_dict(ref) if isinstance(ref, dict) else ref
    path = Path(ref.path)
    if not path.is_file():
        raise SnapshotError(f"snapshot {path} is missing (was storage.root cleaned or not shared between workers?)")
    if verify and ref.file_sha256 is not None and file_sha256(path) != ref.file_sha256:
        raise SnapshotError(f"snapshot {path} does not match its file hash {ref.file_sha256[:12]}: refusing to train on it")
    frame = normalise(pd.read_parquet(path))
    if verify and ref.file_sha256 is None and frame_sha256(frame) != ref.sha256:
        raise SnapshotError(f"snapshot {path} does not match its hash {ref.sha256[:12]}: refusing to train on it")
    return frame


def extract_duckdb(con: Any, table: str, window: tuple[dt.date, dt.date], series: tuple[str, ...] | None) -> pd.DataFrame:
    """Run daily_sales.sql on DuckDB with bound parameters and return the normalised frame."""
    sql = render_sql("daily_sales", "duckdb", source_table=table)
    frame = con.execute(sql, query_parameters(window, series)).df()
    log.info("extracted %d rows from duckdb table %s for window %s..%s", len(frame), table, *window)
    return normalise(frame)


def duplicates_sql(dialect: str, table: str, unique_key: list[str]) -> str:
    """source_duplicates.sql for a dialect, grouped by the source's unique key (identifiers checked by the config)."""
    return render_sql("source_duplicates", dialect, source_table=table, unique_key=", ".join(f"s.{c}" for c in unique_key))


def duplicate_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The duplicates query's rows (one per series) as plain data for XCom (dates as ISO strings)."""
    return [
        {
            "series_id": str(r.series_id), "n_keys": int(r.n_keys), "max_rows": int(r.max_rows),
            "first_date": pd.Timestamp(r.first_date).date().isoformat(), "last_date": pd.Timestamp(r.last_date).date().isoformat(),
        }
        for r in frame.itertuples(index=False)
    ]


def source_duplicates_duckdb(con: Any, table: str, unique_key: list[str], window: tuple[dt.date, dt.date], series: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Keys of the source's grain that repeat inside the window (DuckDB, bound parameters)."""
    return duplicate_records(con.execute(duplicates_sql("duckdb", table, unique_key), query_parameters(window, series)).df())


def is_transaction_grain(unique_key: list[str]) -> bool:
    """Whether the source holds transactions (invoice lines, receipts) rather than one row per date and
    series: only then has a delivery a size (rows per date) worth checking against recent ones."""
    return set(unique_key) != {"date", "item_description"}


def volume_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """delivery_volume.sql's rows as plain data for XCom."""
    return [{"sales_date": pd.Timestamp(r.sales_date).date().isoformat(), "n_rows": int(r.n_rows)} for r in frame.itertuples(index=False)]


def delivery_volume_duckdb(con: Any, table: str, window: tuple[dt.date, dt.date], series: tuple[str, ...] | None) -> list[dict[str, Any]]:
    """Rows per source date inside the window (DuckDB, bound parameters)."""
    sql = render_sql("delivery_volume", "duckdb", source_table=table)
    return volume_records(con.execute(sql, query_parameters(window, series)).df())


def snapshot_summary(ref: SnapshotRef) -> str:
    """One line for logs and the demo summary."""
    return json.dumps({"rows": ref.rows, "series": len(ref.series), "from": ref.min_date, "to": ref.max_date, "sha256": ref.sha256[:12]})
