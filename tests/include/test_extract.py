"""Extract: one BigQuery SQL file run on DuckDB with bound parameters; content-addressed snapshots."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import lzma
import re
import zipfile
from typing import Any

import duckdb
import pandas as pd
import pytest
from conftest import ROOT, write_config

from include.forecasting import extract, validation
from include.forecasting.config import load_config


@pytest.fixture
def loaded(tmp_path):
    def make(seed=ROOT / "include" / "data" / "iowa_sales.csv"):
        config = load_config(write_config(tmp_path, seed))
        con = duckdb.connect()
        extract.load_seed_csv(con, config.source)
        return config, con

    return make


def test_window_bounds_and_series_filter(loaded):
    config, con = loaded()
    window = (dt.date(2024, 1, 1), dt.date(2024, 2, 1))
    frame = extract.extract_duckdb(con, config.source.table, window, ("BLACK VELVET",))
    assert frame["sales_date"].min() >= pd.Timestamp("2024-01-01")
    assert frame["sales_date"].max() < pd.Timestamp("2024-02-01")  # end is exclusive: no future rows
    assert set(frame["series_id"]) == {"BLACK VELVET"}
    everything = extract.extract_duckdb(con, config.source.table, window, None)
    assert everything["series_id"].nunique() == 5
    assert list(everything.columns) == ["sales_date", "series_id", "value"]
    assert str(everything["value"].dtype) == "int64"


def test_history_window_ends_at_interval_end():
    assert extract.history_window(dt.date(2025, 5, 31), 10) == (dt.date(2025, 5, 21), dt.date(2025, 5, 31))


def test_sql_is_transpiled_with_bound_parameters_only():
    duck = extract.render_sql("daily_sales", "duckdb", source_table="s.t")
    big = extract.render_sql("daily_sales", "bigquery", source_table="p.s.t")
    assert "$window_start" in duck and "$window_end" in duck and "$series" in duck
    assert "@window_start" in big and "UNNEST(@series)" in big and "`p.s.t`" in big
    with pytest.raises(ValueError, match="placeholder"):
        extract.render_sql("daily_sales", "duckdb")


def test_bigquery_parameters_are_typed():
    params = extract.bigquery_query_parameters(extract.query_parameters((dt.date(2025, 1, 1), dt.date(2025, 2, 1)), ("A",)))
    api = {p.name: p.to_api_repr()["parameterType"] for p in params}
    assert api["window_start"] == {"type": "DATE"}
    assert api["series"] == {"type": "ARRAY", "arrayType": {"type": "STRING"}}
    # A Timestamp for a DATE parameter goes out as its date: "2025-06-01", not "2025-06-01T00:00:00".
    others = extract.bigquery_query_parameters({"d": pd.Timestamp("2025-06-01"), "b": True, "n": 3, "x": 0.5, "s": "A"})
    api = {p.name: p.to_api_repr() for p in others}
    assert api["d"]["parameterValue"] == {"value": "2025-06-01"} and api["d"]["parameterType"] == {"type": "DATE"}
    assert [api[k]["parameterType"]["type"] for k in "bnxs"] == ["BOOL", "INT64", "FLOAT64", "STRING"]


def test_unsorted_source_gives_the_same_snapshot(loaded, tmp_path):
    """The unsorted subset file yields byte-identical data to the same window of the sorted file."""
    window = (dt.date(2023, 1, 1), dt.date(2024, 3, 30))
    config_a, con_a = loaded()
    config_b, con_b = loaded(ROOT / "tests" / "data" / "iowa_sales_unsorted.csv")
    a = extract.extract_duckdb(con_a, config_a.source.table, window, None)
    b = extract.extract_duckdb(con_b, config_b.source.table, window, None)
    assert extract.frame_sha256(a) == extract.frame_sha256(b)
    ref_a = extract.write_snapshot(a, tmp_path / "s", window, "c")
    ref_b = extract.write_snapshot(b.sample(frac=1, random_state=1), tmp_path / "s", window, "c")
    assert ref_a.path == ref_b.path and ref_a.rows == 1788


def test_snapshot_roundtrip_and_tamper_detection(loaded, tmp_path):
    config, con = loaded()
    window = (dt.date(2025, 1, 1), dt.date(2025, 5, 31))
    ref = extract.write_snapshot(extract.extract_duckdb(con, config.source.table, window, None), tmp_path, window, config.sha256)
    assert ref.max_date == "2025-05-30" and ref.window_end == "2025-05-31" and len(ref.series) == 5
    frame = extract.read_snapshot(ref.to_dict())
    assert len(frame) == ref.rows
    tampered = frame.copy()
    tampered.loc[0, "value"] += 1
    tampered.to_parquet(ref.path, index=False)
    with pytest.raises(extract.SnapshotError, match="does not match its file hash"):
        extract.read_snapshot(ref)
    # A reference from before file hashes were recorded is checked by content instead.
    legacy = {k: v for k, v in ref.to_dict().items() if k != "file_sha256"}
    with pytest.raises(extract.SnapshotError, match="does not match its hash"):
        extract.read_snapshot(legacy)
    # Extracting the same content again repairs the file under its content name; a clean
    # rewrite of identical content (same bytes or not) is accepted through its new file hash.
    again = extract.write_snapshot(frame, tmp_path, window, config.sha256)
    assert again.path == ref.path and again.sha256 == ref.sha256
    assert extract.frame_sha256(extract.read_snapshot(again)) == ref.sha256
    assert extract.frame_sha256(extract.read_snapshot(legacy)) == ref.sha256


def test_empty_cells_survive_as_nulls_for_validation(tmp_path, loaded):
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw.loc[0, "total_amount_sold"] = ""
    raw.loc[1, "total_amount_sold"] = "2.5"
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    config, con = loaded(path)
    frame = extract.extract_duckdb(con, config.source.table, (dt.date(2023, 1, 1), dt.date(2023, 1, 3)), None)
    assert str(frame["value"].dtype) == "float64"
    assert frame["value"].isna().sum() == 1 and (frame["value"] % 1 != 0).sum() >= 1


def test_unparseable_dates_and_values_in_a_few_series_load_as_missing(tmp_path, caplog):
    """An impossible date in one product's row and a text value in another's load as NULL (never dropped:
    a dropped tail shifts the run), with a warning naming the lines; validation then quarantines those
    two products and no other."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw.loc[3600, "date"] = "2025-02-30"
    raw.loc[7, "total_amount_sold"] = "twelve"
    path = tmp_path / "bad.csv"
    raw.to_csv(path, index=False)
    config = load_config(write_config(tmp_path, path))
    con = duckdb.connect()
    assert extract.load_seed_csv(con, config.source) == len(raw)
    warning = caplog.text
    assert "line 3602: date='2025-02-30'" in warning and "line 9: total_amount_sold='twelve'" in warning
    loaded = con.execute(f"SELECT date, item_description, bottles_sold FROM {config.source.table}").df()
    assert loaded["date"].isna().sum() == 1 and loaded["bottles_sold"].isna().sum() == 1
    frame = extract.normalise(extract.extract_duckdb(con, config.source.table, (dt.date(2023, 1, 1), dt.date(2025, 5, 31)), None))
    report = validation.validate_frame(frame, config, dt.date(2025, 5, 31))
    assert report.success and set(report.quarantined) == {raw.loc[3600, "item_name"], raw.loc[7, "item_name"]}
    assert "a row without a date" in report.quarantined[raw.loc[3600, "item_name"]]


def test_unparseable_dates_and_values_across_the_panel_fail_at_load_with_line_numbers(tmp_path):
    """Month-first dates or text values in most series (another layout, a column mapped wrongly) refuse
    the file, naming lines and the key to set."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw.loc[3595:, "date"] = pd.to_datetime(raw.loc[3595:, "date"]).dt.strftime("%m/%d/%Y")
    raw.loc[7, "total_amount_sold"] = "twelve"
    message = _load_refusal(tmp_path, raw)
    assert "9 row(s) with date not YYYY-MM-DD, e.g. line 3597: date='05/29/2025'" in message
    assert "value not a number, e.g. line 9: total_amount_sold='twelve'" in message
    assert "set source.date_format to the file's layout (month first: '%m/%d/%Y')" in message


def _load_refusal(tmp_path, raw: pd.DataFrame) -> str:
    """The message with which loading `raw` as the seed CSV is refused."""
    path = tmp_path / "refused.csv"
    raw.to_csv(path, index=False)
    config = load_config(write_config(tmp_path, path))
    with pytest.raises(extract.UnparseableRowsError) as refused:
        extract.load_seed_csv(duckdb.connect(), config.source)
    return str(refused.value)


def _source_rows(con, config) -> pd.DataFrame:
    frame = con.execute(f"SELECT date, item_description, bottles_sold FROM {config.source.table}").df()
    return frame.sort_values(["date", "item_description"]).reset_index(drop=True)


def test_iso_timestamps_at_midnight_and_a_byte_order_mark_load_as_dates(tmp_path, loaded):
    """Exports from spreadsheets and databases: midnight timestamps with or without a zone (BigQuery's CSV
    export writes a TIMESTAMP as `2025-05-30 00:00:00 UTC`), a BOM."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    config, con = loaded()
    expected = _source_rows(con, config)
    stamped = raw.copy()
    forms = ["{} 00:00:00", "{}T00:00:00Z", "{}T00:00:00.000+05:30", "{}T00:00:00-0800", "{} 00:00:00 UTC"]
    stamped["date"] = [forms[i % len(forms)].format(d) for i, d in enumerate(raw["date"])]
    path = tmp_path / "stamped.csv"
    path.write_text(stamped.to_csv(index=False), encoding="utf-8-sig")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    config, con = loaded(path)
    # Each row keeps its own wall-clock date: a zone never moves a midnight row to another day.
    pd.testing.assert_frame_equal(_source_rows(con, config), expected)


def test_blanks_around_cells_and_headers_in_another_case_load_as_the_clean_file(tmp_path, loaded):
    """`Date , Item_Name` headers and `2023-01-02, TITOS HANDMADE VODKA , 168` cells (a file typed or
    exported by hand) load exactly as the clean seed: a padded id would otherwise be another series."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    config, con = loaded()
    expected = _source_rows(con, config)
    padded = raw.apply(lambda column: " " + column + " ").rename(columns={"date": " Date ", "item_name": "Item_Name", "total_amount_sold": "total_amount_sold "})
    path = tmp_path / "padded.csv"
    padded.to_csv(path, index=False)
    config, con = loaded(path)
    pd.testing.assert_frame_equal(_source_rows(con, config), expected)


def test_a_time_of_day_is_refused_naming_the_line(tmp_path):
    """Transactions with times are not one row per series per day: refused, not silently truncated."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw.loc[10, "date"] = raw.loc[10, "date"] + " 14:22:00"
    path = tmp_path / "timed.csv"
    raw.to_csv(path, index=False)
    config = load_config(write_config(tmp_path, path))
    with pytest.raises(extract.UnparseableRowsError, match=r"1 row\(s\) with a time of day other than midnight .* line 12: date='20"):
        extract.load_seed_csv(duckdb.connect(), config.source)


def _refused_then_loaded(config: Any, match: str, **fix: str) -> tuple[Any, Any]:
    """The seed is refused (message matching `match`) as configured, then loads with `fix` set on source."""
    with pytest.raises(extract.UnparseableRowsError, match=match):
        extract.load_seed_csv(duckdb.connect(), config.source)
    source = config.source.model_copy(update=fix)
    con = duckdb.connect()
    extract.load_seed_csv(con, source)
    return source, con


def test_date_format_reads_day_first_dates(tmp_path, loaded, caplog):
    """Day-first dates load with `source.date_format`; without it the refusal names the key to set."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    config, con = loaded()
    expected = _source_rows(con, config)
    raw["date"] = pd.to_datetime(raw["date"]).dt.strftime("%d/%m/%Y")
    path = tmp_path / "day_first.csv"
    raw.to_csv(path, index=False)
    config = load_config(write_config(tmp_path, path))
    source, con = _refused_then_loaded(config, r"date not YYYY-MM-DD.*set source\.date_format to the file's layout \(day first: '%d/%m/%Y'\)", date_format="%d/%m/%Y")
    pd.testing.assert_frame_equal(_source_rows(con, config), expected)
    # Two-digit years (19/02/23): the refusal names the layout with %y, and it reads the same rows.
    short = raw.assign(date=pd.to_datetime(raw["date"], format="%d/%m/%Y").dt.strftime("%d/%m/%y"))
    short.to_csv(path, index=False)
    _, short_con = _refused_then_loaded(config, r"set source\.date_format to the file's layout \(day first: '%d/%m/%y'\)", date_format="%d/%m/%y")
    pd.testing.assert_frame_equal(_source_rows(short_con, config), expected)
    # A cell that does not match the configured format is named with the format it was read with (one
    # series: loaded without a date, so validation quarantines that series).
    raw.loc[4, "date"] = "2025-01-31"
    raw.to_csv(path, index=False)
    extract.load_seed_csv(duckdb.connect(), source)
    assert "1 row(s) with date not in source.date_format '%d/%m/%Y', e.g. line 6" in caplog.text


def test_the_suggested_date_format_is_read_off_the_cells_never_guessed():
    suggest = extract.suggest_date_format
    assert suggest(pd.Series(["01.02.2025", "30.05.2025"])) == "day first: '%d.%m.%Y'"
    assert suggest(pd.Series(["05/30/2025"])) == "month first: '%m/%d/%Y'"
    assert suggest(pd.Series(["01-02-2025", "03-04-2025"])) == "'%d-%m-%Y' or '%m-%d-%Y': these rows do not tell which"
    # Two-digit years, as one common copy of a public weekly store panel writes them (19/02/10).
    assert suggest(pd.Series(["05/02/10", "19/02/10"])) == "day first: '%d/%m/%y'"
    # A spelled-out month leaves no day/month doubt: the layout that reads every cell is named.
    assert suggest(pd.Series(["May 30, 2025", "Jun 02, 2025"])) == "the month spelled out: '%b %d, %Y'"
    assert suggest(pd.Series(["30-May-2025"])) == "the month spelled out: '%d-%b-%Y'"
    assert suggest(pd.Series(["May 30, 2025", "30 May 2025"])) == "a strftime format such as '%d/%m/%Y'"  # mixed: none reads all


def test_spreadsheet_serial_dates_are_named_as_such(tmp_path):
    """A date column saved as numbers (44928) is refused with what the numbers are and how to save them as
    dates: no source.date_format reads them."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw["date"] = (pd.to_datetime(raw["date"]) - pd.Timestamp("1899-12-30")).dt.days.astype(str)
    assert raw["date"].iloc[0] == "44928"  # 2023-01-02
    message = _load_refusal(tmp_path, raw)
    assert "line 2: date='44928'" in message
    assert "a spreadsheet's serial day numbers, not dates (44928 is 2023-01-02)" in message
    assert "set source.date_format" not in message
    # Five-digit numbers outside 1970-2099 are not taken for serial dates.
    assert "set source.date_format" in extract.date_hint(pd.Series(["12345"]), None)


def test_a_semicolon_file_with_decimal_commas_loads_with_source_decimal(tmp_path, loaded):
    """A spreadsheet export in a comma-decimal locale: ';' separators, 3,67 and 1.234,5 values."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw["total_amount_sold"] = (raw["total_amount_sold"].astype(float) + 0.25).map(lambda v: f"{v:,.2f}".replace(",", "_").replace(".", ",").replace("_", "."))
    assert raw["total_amount_sold"].str.contains(".", regex=False).any()  # some values above 999
    path = tmp_path / "semicolon.csv"
    raw.to_csv(path, index=False, sep=";")
    config = load_config(write_config(tmp_path, path))
    source, con = _refused_then_loaded(config, r"value not a number.*set source\.decimal: ','", decimal=",")
    got = _source_rows(con, config)
    original = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv")
    assert got["bottles_sold"].sum() == pytest.approx(original["total_amount_sold"].sum() + 0.25 * len(original))
    # With a decimal comma a "." only groups thousands: 3.67 is not read as 367 or as 3.67. In one
    # series it loads as missing (validation quarantines that series); in most series the file is refused.
    raw.loc[0, "total_amount_sold"] = "3.67"
    raw.to_csv(path, index=False, sep=";")
    extract.load_seed_csv(con, source)
    assert _source_rows(con, config)["bottles_sold"].isna().sum() == 1
    raw.loc[:4, "total_amount_sold"] = "3.67"  # the first day: all five series
    raw.to_csv(path, index=False, sep=";")
    with pytest.raises(extract.UnparseableRowsError, match=r"5 row\(s\) with value not a number, e\.g\. line 2: total_amount_sold='3\.67'.*reads 3,67 or 1\.234,5"):
        extract.load_seed_csv(duckdb.connect(), source)


def test_thousands_separators_load_with_source_thousands(tmp_path):
    """Money as exported: "1,234.25" (US) and "1 234,25" with the narrow no-break space a French
    spreadsheet writes. Refused without the key (the hint names it), read exactly with it; a cell that
    does not group by threes ("1,23") is not a number, never 123 or 1.23."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    original = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv")
    expected = original["total_amount_sold"].sum() + 0.25 * len(original)
    us = raw.assign(total_amount_sold=(raw["total_amount_sold"].astype(float) + 0.25).map(lambda v: f"{v:,.2f}"))
    assert us["total_amount_sold"].str.contains(",", regex=False).any()  # values above 999
    path = tmp_path / "us.csv"
    us.to_csv(path, index=False)
    config = load_config(write_config(tmp_path, path))
    source, con = _refused_then_loaded(config, r"value not a number.*set source\.thousands: ','", thousands=",")
    assert _source_rows(con, config)["bottles_sold"].sum() == pytest.approx(expected)
    us.loc[0, "total_amount_sold"] = "1,23"
    us.to_csv(path, index=False)
    extract.load_seed_csv(con, source)
    assert _source_rows(con, config)["bottles_sold"].isna().sum() == 1  # that series is quarantined by validation
    french = raw.assign(total_amount_sold=(raw["total_amount_sold"].astype(float) + 0.25).map(lambda v: f"{v:,.2f}".replace(",", "\u202f").replace(".", ",")))
    path = tmp_path / "fr.csv"
    french.to_csv(path, index=False, sep=";")
    config = load_config(write_config(tmp_path, path, **{"source.decimal": ","}))
    source, con = _refused_then_loaded(config, r"source\.decimal ',' \(a '\.' groups thousands\) a value reads 3,67 or 1\.234,5", thousands=" ")
    assert _source_rows(con, config)["bottles_sold"].sum() == pytest.approx(expected)


def test_a_repeated_header_line_and_empty_rows_are_dropped(tmp_path, caplog):
    """Two exports concatenated (`cat jan.csv feb.csv`): the second header line is dropped with a warning
    naming its line, not loaded as a series called 'item_name' with no date and no value. The `,,` rows a
    spreadsheet writes below its data are skipped; loaded, they were rows without a series name, which
    block the run."""
    raw = (ROOT / "include" / "data" / "iowa_sales.csv").read_text().splitlines()
    path = tmp_path / "concatenated.csv"
    path.write_text("\n".join(raw[:101] + raw[:1] + raw[101:] + [",,", " , , "]) + "\n")
    config = load_config(write_config(tmp_path, path))
    con = duckdb.connect()
    with caplog.at_level("WARNING", logger=extract.__name__):
        assert extract.load_seed_csv(con, config.source) == len(raw) - 1
    assert "1 row(s) repeat the header line (files concatenated?), dropped: line(s) 102" in caplog.text
    rows = _source_rows(con, config)
    assert set(rows["item_description"]) == set(pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv")["item_name"])


def test_money_with_a_currency_sign_loads_as_its_amount(tmp_path):
    """Money as a spreadsheet formats it: "$1,234.25" (with source.thousands ","), "1.234,25 €" (with
    source.decimal ","), a refund "-$5.00". The sign is read off, the amount is exact; text around a
    number other than a currency sign is still not a number."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    original = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv")
    expected = original["total_amount_sold"].sum() + 0.25 * len(original)
    us = raw.assign(total_amount_sold=(raw["total_amount_sold"].astype(float) + 0.25).map(lambda v: f"${v:,.2f}"))
    path = tmp_path / "dollars.csv"
    us.to_csv(path, index=False)
    config = load_config(write_config(tmp_path, path, **{"source.thousands": ","}))
    con = duckdb.connect()
    extract.load_seed_csv(con, config.source)
    assert _source_rows(con, config)["bottles_sold"].sum() == pytest.approx(expected)
    us.loc[0, "total_amount_sold"], us.loc[1, "total_amount_sold"] = "-$5.00", "5.00 dollars"
    us.to_csv(path, index=False)
    extract.load_seed_csv(con, config.source)
    rows = _source_rows(con, config).set_index(["date", "item_description"])["bottles_sold"]
    key = lambda i: (pd.Timestamp(raw.loc[i, "date"]), raw.loc[i, "item_name"])  # noqa: E731
    assert rows[key(0)] == -5.0 and pd.isna(rows[key(1)])  # validation names both: not negative, not a number
    euro = raw.assign(total_amount_sold=(raw["total_amount_sold"].astype(float) + 0.25).map(lambda v: f"{v:,.2f} €".replace(",", "_").replace(".", ",").replace("_", ".")))
    path = tmp_path / "euro.csv"
    euro.to_csv(path, index=False, sep=";")
    config = load_config(write_config(tmp_path, path, **{"source.decimal": ","}))
    extract.load_seed_csv(con, config.source)
    assert _source_rows(con, config)["bottles_sold"].sum() == pytest.approx(expected)


def test_text_in_one_series_loads_as_missing_for_validation_and_a_wrong_column_is_refused(tmp_path, loaded, caplog):
    """'twelve' in one series must not stop the others: NULL, a warning naming the line, and validation
    quarantines that series by name. Text in every series (a column mapped wrongly) refuses the file."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw.loc[7, "total_amount_sold"] = "twelve"
    path = tmp_path / "text.csv"
    raw.to_csv(path, index=False)
    with caplog.at_level("WARNING", logger=extract.__name__):
        config, con = loaded(path)
    assert f"line 9: total_amount_sold='twelve' (item_name={raw.loc[7, 'item_name']!r})" in caplog.text
    assert "loaded as missing, so validation quarantines that series" in caplog.text
    rows = _source_rows(con, config)
    assert rows["bottles_sold"].isna().sum() == 1 and len(rows) == len(raw)
    config = load_config(write_config(tmp_path, path, **{"source.columns": {"date": "date", "series": "total_amount_sold", "value": "item_name"}}))
    with pytest.raises(extract.UnparseableRowsError, match=r"3604 row\(s\) with value not a number"):
        extract.load_seed_csv(duckdb.connect(), config.source)


def test_a_totals_line_at_the_end_is_loaded_and_said_to_block_the_run(tmp_path, loaded, caplog):
    """A spreadsheet's footer `Total,,1234567` (no date, no series): loaded as a row without a date or a
    series (never dropped), and the warning says validation will block the run, not that it quarantines
    a series with an empty name."""
    path = tmp_path / "footer.csv"
    path.write_text((ROOT / "include" / "data" / "iowa_sales.csv").read_text() + "Total,,1234567\n")
    with caplog.at_level("WARNING", logger=extract.__name__):
        config, con = loaded(path)
    assert "line 3606: date='Total' (item_name='')" in caplog.text
    assert "validation blocks the run: a row without a series name belongs to no series (a totals or footer line? remove it)" in caplog.text
    assert "quarantines" not in caplog.text
    footer = _source_rows(con, config).query("item_description.isna()")
    assert len(footer) == 1 and footer["date"].isna().all() and footer["bottles_sold"].tolist() == [1234567.0]


def test_a_legacy_encoded_file_loads_and_a_workbook_is_refused(tmp_path, caplog):
    """A Windows-1252 export keeps `Café Crème` (with a warning); an xlsx is named as a workbook."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw["item_name"] = raw["item_name"].replace({"BLACK VELVET": "Café Crème"})
    path = tmp_path / "legacy.csv"
    path.write_bytes(raw.to_csv(index=False).encode("cp1252"))
    with caplog.at_level("WARNING", logger=extract.__name__):
        frame = extract.read_seed_text(path)
    assert "is not UTF-8: read as cp1252" in caplog.text
    assert (frame["item_name"] == "Café Crème").sum() == (raw["item_name"] == "Café Crème").sum() > 0
    workbook = tmp_path / "sales.xlsx"
    with zipfile.ZipFile(workbook, "w") as archive:  # what an xlsx is: a zip with a manifest and the sheets
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    with pytest.raises(ValueError, match="is a spreadsheet workbook, not a CSV file: save it as CSV"):
        extract.read_seed_text(workbook)
    legacy_xls = tmp_path / "sales.xls"
    legacy_xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))  # an OLE2 compound file's header
    with pytest.raises(ValueError, match="is a spreadsheet workbook, not a CSV file"):
        extract.read_seed_text(legacy_xls)
    parquet = tmp_path / "sales.parquet"
    raw.to_parquet(parquet)
    with pytest.raises(ValueError, match="is a Parquet file, not CSV text: write it out as CSV"):
        extract.read_seed_text(parquet)


def test_a_compressed_seed_file_reads_as_the_csv_inside(tmp_path):
    """gzip, bzip2, xz (by their first bytes, whatever the file's name) and a zip of one CSV (as portals hand
    data out) read as the CSV they hold, byte-order mark and semicolons included; a zip of several files, a
    damaged archive and a workbook inside an archive are refused by name."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw["item_name"] = raw["item_name"].replace({"BLACK VELVET": "青茄子"})
    data = raw.to_csv(index=False, sep=";").encode("utf-8-sig")
    written = {"sales.csv.gz": gzip.compress(data), "sales.csv.bz2": bz2.compress(data), "sales.xz": lzma.compress(data), "sales.dat": gzip.compress(data)}
    for name, blob in written.items():
        (tmp_path / name).write_bytes(blob)
    with zipfile.ZipFile(tmp_path / "sales.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("export/", "")  # a folder entry and macOS's resource forks are not files
        archive.writestr("__MACOSX/export/._sales.csv", b"\x00\x05\x16\x07")
        archive.writestr("export/sales.csv", data)
    for name in [*written, "sales.zip"]:
        pd.testing.assert_frame_equal(extract.read_seed_text(tmp_path / name), raw, obj=name)
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("2024.csv", data)
        archive.writestr("2025.csv", data)
    with pytest.raises(ValueError, match=r"is a zip archive of 2 files \(2024.csv, 2025.csv\): a zip is read when it holds one CSV file"):
        extract.read_seed_text(tmp_path / "two.zip")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(data)[:200])
    with pytest.raises(ValueError, match="is compressed \\(or a workbook\\) but cannot be read as such"):
        extract.read_seed_text(tmp_path / "cut.csv.gz")
    (tmp_path / "book.xls.gz").write_bytes(gzip.compress(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)))
    with pytest.raises(ValueError, match="is a spreadsheet workbook, not a CSV file"):
        extract.read_seed_text(tmp_path / "book.xls.gz")


def test_a_utf16_unicode_text_export_loads_as_written(tmp_path, caplog):
    """Excel's "Unicode Text" export (UTF-16 with its byte-order mark, tab-separated) reads with every name
    intact and no warning; read as UTF-8 / Windows-1252 its headers were NUL-interleaved and matched no
    configured column. A file that starts with the mark but is not UTF-16 is refused by name."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    raw["item_name"] = raw["item_name"].replace({"BLACK VELVET": "青茄子 Café"})
    for codec in ("utf-16", "utf-16-be"):
        path = tmp_path / f"unicode_{codec}.txt"
        text = raw.to_csv(index=False, sep="\t")
        # "utf-16" writes the byte-order mark itself (little-endian here); "utf-16-be" does not, so add it.
        path.write_bytes(text.encode(codec) if codec == "utf-16" else b"\xfe\xff" + text.encode(codec))
        with caplog.at_level("WARNING", logger=extract.__name__):
            frame = extract.read_seed_text(path)
        assert list(frame.columns) == ["date", "item_name", "total_amount_sold"], codec
        pd.testing.assert_frame_equal(frame, raw)
        assert "is not UTF-8" not in caplog.text
    broken = tmp_path / "broken.txt"
    broken.write_bytes(b"\xff\xfe" + "date\titem\n".encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate half
    with pytest.raises(ValueError, match="is not UTF-16 text, though it starts with UTF-16's byte-order mark: save it as CSV"):
        extract.read_seed_text(broken)


def test_empty_values_load_empty_or_as_no_sale_as_configured(tmp_path, caplog):
    """Empty, NA, null and nan cells load empty for validation to name (the default), or as 0 with
    `source.empty_values: zero` (a pivot table's export), with a warning counting them; a cell of other
    text stays refused either way."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    last = raw["date"].max()
    cells = {"TITOS HANDMADE VODKA": "", "HAWKEYE VODKA": "NA", "BLACK VELVET": "null", "FIREBALL CINNAMON WHISKEY": "nan", "FIVE O'CLOCK VODKA": "12kg"}
    for series, cell in cells.items():
        raw.loc[(raw["date"] == last) & (raw["item_name"] == series), "total_amount_sold"] = cell
    path = tmp_path / "pivot_export.csv"
    raw.to_csv(path, index=False)

    def last_day(**overrides: Any) -> dict[str, float]:
        config = load_config(write_config(tmp_path, path, **overrides))
        con = duckdb.connect()
        extract.load_seed_csv(con, config.source)
        rows = _source_rows(con, config)
        day = rows[rows["date"] == pd.Timestamp(last)]
        return dict(zip(day["item_description"], day["bottles_sold"], strict=True))

    refused = last_day()
    assert all(pd.isna(refused[s]) for s in cells)
    with caplog.at_level("WARNING", logger=extract.__name__):
        zeroed = last_day(**{"source.empty_values": "zero"})
    assert [zeroed[s] for s in cells if s != "FIVE O'CLOCK VODKA"] == [0.0, 0.0, 0.0, 0.0]
    assert pd.isna(zeroed["FIVE O'CLOCK VODKA"])  # "12kg" is text, not an empty cell
    assert "4 empty value(s) in 4 series read as no sale (source.empty_values: zero), e.g. line" in caplog.text
    with pytest.raises(ValueError, match="source.empty_values"):
        load_config(write_config(tmp_path, path, **{"source.empty_values": "drop"}))


def test_a_wide_seed_csv_loads_as_the_long_table_it_pivots(tmp_path, loaded, caplog):
    """A pivot table's export (a date column, one column per series, other columns beside them) with
    `source.wide` listing the series' columns loads the same source rows as the long file: a cell left
    empty (a day without that product's row) is a period without a row. A wide mapping that cannot be read
    is refused by key, and a cell that is not a number is named by its line and column in the file."""
    config, con = loaded()
    expected = _source_rows(con, config)
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    wide = raw.pivot(index="date", columns="item_name", values="total_amount_sold").reset_index()
    assert wide.isna().to_numpy().any()  # some products miss some days: empty cells
    wide.insert(1, "Weekday Name", pd.to_datetime(wide["date"]).dt.day_name())  # a column that is no series
    wide = wide.rename(columns={"date": "Datum"})  # and headers in another case than configured
    path = tmp_path / "wide.csv"
    wide.fillna("").to_csv(path, index=False)
    products = sorted(raw["item_name"].unique())
    overrides = {"source.wide": products, "source.columns": {"date": "datum", "series": "product", "value": "bottles"}}
    config = load_config(write_config(tmp_path, path, **overrides))
    con = duckdb.connect()
    assert extract.load_seed_csv(con, config.source) == len(raw)
    pd.testing.assert_frame_equal(_source_rows(con, config), expected)
    refused = [
        ({"source.wide": ["datum", *products]}, "wide lists the date column 'datum'"),
        ({"source.columns": {"date": "datum", "series": ["a", "b"], "value": "v"}}, "columns.series names the one column"),
        ({"source.wide": [products[0], products[0]]}, "wide lists each series' column once"),
        ({"source.columns": {"date": "datum", "series": "datum", "value": "v"}}, "three different names"),
        ({"source.columns": {"date": "datum", "series": "product", "value": products[0]}}, "name the long table's columns, not series' columns"),
    ]
    for changes, message in refused:
        with pytest.raises(ValueError, match=re.escape(message)):
            load_config(write_config(tmp_path, path, **{**overrides, **changes}))
    plain = tmp_path / "pivot.csv"  # a plain pivot: the date, then the products only
    wide.drop(columns="Weekday Name").fillna("").to_csv(plain, index=False)
    con = duckdb.connect()
    extract.load_seed_csv(con, load_config(write_config(tmp_path, plain, **{**overrides, "source.wide": "all"})).source)
    pd.testing.assert_frame_equal(_source_rows(con, config), expected)
    clashing = load_config(write_config(tmp_path, plain, **{"source.wide": "all", "source.columns": {"date": "datum", "series": "product", "value": products[0]}}))
    with pytest.raises(ValueError, match="is a series' column of the wide table and a name in source.columns"):
        extract.load_seed_csv(duckdb.connect(), clashing.source)
    absent = load_config(write_config(tmp_path, path, **{**overrides, "source.wide": [*products, "GIN"]}))
    with pytest.raises(KeyError, match=r"lacks column\(s\) \[.+GIN.+\] \(source\.wide: .+GIN"):
        extract.load_seed_csv(duckdb.connect(), absent.source)
    typo = wide.drop(columns="Weekday Name").fillna("")
    typo.loc[40, products[3]] = "n/a"  # row 40 of the table: line 42 of the file, below the header line
    typo.to_csv(plain, index=False)
    with caplog.at_level("WARNING", logger=extract.__name__):
        extract.load_seed_csv(duckdb.connect(), load_config(write_config(tmp_path, plain, **{**overrides, "source.wide": "all"})).source)
    assert f"line 42, column {products[3]!r}: bottles='n/a'" in caplog.text


def test_a_title_above_the_header_is_skipped_and_lines_keep_their_numbers(tmp_path, loaded, caplog):
    """A report's title and notes above the table (the configured headers on line 4) are skipped with a
    warning, the rows load as without them, and a bad cell is named by its line in the file, past the
    skipped lines and a repeated header line; a file that cannot be split into a table is refused naming
    the line, not with pandas' tokenizer error alone."""
    config, con = loaded()
    expected = _source_rows(con, config)
    lines = (ROOT / "include" / "data" / "iowa_sales.csv").read_text().splitlines()
    body = [lines[0], *lines[1:11], lines[0], *lines[11:]]  # a header line repeated as line 15 of the file
    bad = body.index(lines[20])
    body[bad] = body[bad].rsplit(",", 1)[0] + ",n/a"
    path = tmp_path / "report.csv"
    path.write_text("Iowa liquor sales, daily\nExported 2025-06-01 by the BI tool\n\n" + "\n".join(body) + "\n")
    config = load_config(write_config(tmp_path, path))
    con = duckdb.connect()
    with caplog.at_level("WARNING", logger=extract.__name__):
        extract.load_seed_csv(con, config.source)
    assert "the header is on line 4; the 3 line(s) above it skipped (a title or notes?): Iowa liquor sales, daily | Exported" in caplog.text
    assert f"line {bad + 4}: total_amount_sold='n/a'" in caplog.text  # 3 lines above the header, the header itself
    loaded_rows = _source_rows(con, config)
    assert len(loaded_rows) == len(expected) and loaded_rows["bottles_sold"].isna().sum() == 1
    misnamed = {"source.columns": {"date": "day", "series": "item_name", "value": "total_amount_sold"}}  # no line holds it
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("Sales\n" + "\n".join(lines[:5]) + "\n")  # a title, one field wide, taken for the header
    with pytest.raises(ValueError, match=re.escape("line 2 has 3 fields where the header line has 1 (['date', 'item_name', 'total_amount_sold']): a title")):
        extract.load_seed_csv(duckdb.connect(), load_config(write_config(tmp_path, ragged, **misnamed)).source)
    longer = tmp_path / "longer.csv"
    longer.write_text("\n".join([*lines[:5], lines[5] + ",7,8"]) + "\n")  # one row wider than the header
    with pytest.raises(ValueError, match="cannot be read as a table: .*line 6, saw 5 .a title or notes above the header line"):
        extract.load_seed_csv(duckdb.connect(), load_config(write_config(tmp_path, longer)).source)
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("\n".join([lines[0], *(line + "," for line in lines[1:])]) + "\n")  # a separator ending each row
    con = duckdb.connect()
    extract.load_seed_csv(con, load_config(write_config(tmp_path, trailing)).source)
    pd.testing.assert_frame_equal(_source_rows(con, config), expected)


def test_missing_seed_column_is_a_clear_error(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("day,item,qty\n2025-01-01,A,1\n")
    config = load_config(write_config(tmp_path, path))
    with pytest.raises(KeyError, match="lacks column") as refused:
        extract.load_seed_csv(duckdb.connect(), config.source)
    # The message names the config key to change and the headers the file has.
    assert "source.columns.value = 'total_amount_sold'" in str(refused.value)
    assert "'day', 'item', 'qty'" in str(refused.value)


def test_an_empty_seed_is_refused_and_the_loaded_table_kept(tmp_path, loaded):
    """A header without rows, or an empty file (an export that failed half way), is refused by name; the
    table loaded before keeps its rows (loading it would have replaced them with nothing)."""
    config, con = loaded()
    table = config.source.table
    before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    header = tmp_path / "header.csv"
    header.write_text("date,item_name,total_amount_sold\n")
    with pytest.raises(ValueError, match="has a header but no rows"):
        extract.load_seed_csv(con, config.source.model_copy(update={"seed_csv": header}))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="is empty: not even a header line"):
        extract.load_seed_csv(con, config.source.model_copy(update={"seed_csv": empty}))
    assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == before > 0


def test_rows_below_the_series_grain_are_summed_when_unique_key_names_their_column(tmp_path):
    """A CSV with one row per department per series and date: with the department in source.unique_key
    the rows are summed per series and date and nothing is a duplicate; without it they are flagged."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv")
    halves = [raw.assign(dept="A", total_amount_sold=raw["total_amount_sold"] // 2), raw.assign(dept="B", total_amount_sold=raw["total_amount_sold"] - raw["total_amount_sold"] // 2)]
    path = tmp_path / "depts.csv"
    pd.concat(halves, ignore_index=True).to_csv(path, index=False)
    window = (dt.date(2022, 6, 1), dt.date(2025, 5, 31))
    config = load_config(write_config(tmp_path, path, **{"source.unique_key": ["date", "item_description", "dept"]}))
    con = duckdb.connect()
    extract.load_seed_csv(con, config.source)
    assert extract.source_duplicates_duckdb(con, config.source.table, config.source.unique_key, window, None) == []
    summed = extract.extract_duckdb(con, config.source.table, window, None)
    (tmp_path / "whole").mkdir()
    whole, original = duckdb.connect(), load_config(write_config(tmp_path / "whole", ROOT / "include" / "data" / "iowa_sales.csv"))
    extract.load_seed_csv(whole, original.source)
    pd.testing.assert_frame_equal(summed, extract.extract_duckdb(whole, original.source.table, window, None))
    # Without the department in the key every series and date is a repeated key.
    plain = load_config(write_config(tmp_path, path))
    con = duckdb.connect()
    extract.load_seed_csv(con, plain.source)
    assert len(extract.source_duplicates_duckdb(con, plain.source.table, plain.source.unique_key, window, None)) == 5
    # Transactions carry a time of day: with their key in source.unique_key the rows sum per day.
    timed = pd.concat(halves, ignore_index=True)
    timed["date"] = timed["date"] + timed["dept"].map({"A": " 09:15:00", "B": "T17:40:05Z"})
    timed.to_csv(path, index=False)
    con = duckdb.connect()
    extract.load_seed_csv(con, config.source)
    pd.testing.assert_frame_equal(extract.extract_duckdb(con, config.source.table, window, None), summed)
    with pytest.raises(extract.UnparseableRowsError, match="time of day other than midnight"):
        extract.load_seed_csv(duckdb.connect(), plain.source)
    bad = load_config(write_config(tmp_path, path, **{"source.unique_key": ["date", "item_description", "store"]}))
    with pytest.raises(KeyError, match=r"source.unique_key names \['store'\], which seed CSV .* lacks"):
        extract.load_seed_csv(duckdb.connect(), bad.source)


def test_duplicated_source_keys_are_found_before_aggregation(tmp_path, loaded):
    """The whole file delivered twice: every key repeats (the SQL's SUM would double every day silently)."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    path = tmp_path / "twice.csv"
    pd.concat([raw, raw.iloc[[5]]], ignore_index=True).to_csv(path, index=False)
    config, con = loaded(path)
    window = (dt.date(2022, 6, 1), dt.date(2025, 5, 31))
    found = extract.source_duplicates_duckdb(con, config.source.table, config.source.unique_key, window, None)
    row = raw.iloc[5]
    assert found == [{"series_id": row["item_name"], "n_keys": 1, "max_rows": 2, "first_date": row["date"], "last_date": row["date"]}]
    assert "GROUP BY s.date, s.item_description" in extract.duplicates_sql("bigquery", "p.d.t", ["date", "item_description"])


def test_iso_week_labels_load_as_the_weeks_monday_or_their_weekday(tmp_path):
    """A weekly export labelled by ISO week (2023-W25, 2023W25, 2023-W25-7) loads as dates: the week's
    Monday, or the weekday the label names, so the panel is weekly on that day; a week that does not
    exist (W54) is an unreadable date like any other."""
    from include.forecasting.frequency import detect_cadence

    weekly = pd.read_csv(ROOT / "include" / "data" / "veg_supermarket_weekly_kg.csv", dtype=str)
    sundays = pd.to_datetime(weekly["date"])
    iso = sundays.dt.isocalendar()
    labels = iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)
    columns = {"date": "date", "series": "series", "value": "value"}
    for label, expected, anchor in (
        (labels, sundays - pd.Timedelta(days=6), "W-MON"),
        (labels.str.replace("-", ""), sundays - pd.Timedelta(days=6), "W-MON"),
        (labels + "-7", sundays, "W-SUN"),
    ):
        path = tmp_path / "iso_weeks.csv"
        weekly.assign(date=label).to_csv(path, index=False)
        config = load_config(write_config(tmp_path, path, **{"source.columns": columns}))
        con = duckdb.connect()
        extract.load_seed_csv(con, config.source)
        rows = _source_rows(con, config)
        assert sorted(rows["date"].unique()) == sorted(expected.unique())
        frame = rows.rename(columns={"date": "sales_date", "item_description": "series_id", "bottles_sold": "value"})
        assert detect_cadence(frame).label == f"weekly ({anchor})"
    assert extract.parse_dates(pd.Series(["2020-W53", "2021-W53", "2025-W05-8"])).isna().tolist() == [False, True, True]


def test_rows_of_a_finer_grain_get_a_hint_naming_the_column_for_unique_key(tmp_path, caplog):
    """Two rows per product and day, one per store, with the default unique_key: the load warns that the
    `store` column tells them apart and names the unique_key that sums them (validation would refuse them
    as a delivery loaded twice). A file appended to itself gets no such hint: nothing tells its rows apart."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    stores = pd.concat([raw.assign(store="A"), raw.assign(store="B")], ignore_index=True)
    path = tmp_path / "stores.csv"
    stores.to_csv(path, index=False)
    config = load_config(write_config(tmp_path, path))
    with caplog.at_level("WARNING", logger="include.forecasting.extract"):
        extract.load_seed_csv(duckdb.connect(), config.source)
    assert "told apart by column(s) ['store']" in caplog.text and "source.unique_key: [date, item_description, store]" in caplog.text
    assert "source.columns.series: [store, item_name]" in caplog.text
    caplog.clear()
    pd.concat([raw, raw], ignore_index=True).to_csv(path, index=False)
    with caplog.at_level("WARNING", logger="include.forecasting.extract"):
        extract.load_seed_csv(duckdb.connect(), config.source)
    assert "told apart" not in caplog.text


def test_a_series_named_by_several_columns_joins_their_cells(tmp_path):
    """`source.columns.series: [store, item_name]`: one series per store and product, its id the cells
    joined by " / "; sales per series and date are the rows' own. A row missing one of the parts names no
    series. A list for the date or the value column is a config error naming the key."""
    raw = pd.read_csv(ROOT / "include" / "data" / "iowa_sales.csv", dtype=str)
    stores = pd.concat([raw.assign(store="1"), raw.assign(store="2", total_amount_sold="7")], ignore_index=True)
    stores.loc[0, "store"] = ""
    path = tmp_path / "stores.csv"
    stores.to_csv(path, index=False)
    columns = {"date": "date", "series": ["store", "item_name"], "value": "total_amount_sold"}
    config = load_config(write_config(tmp_path, path, **{"source.columns": columns}))
    con = duckdb.connect()
    extract.load_seed_csv(con, config.source)
    rows = _source_rows(con, config)
    ids = set(rows["item_description"].dropna())
    assert ids == {f"{s} / {item}" for s in ("1", "2") for item in raw["item_name"].unique()}
    assert rows["item_description"].isna().sum() == 1  # the row without a store
    two = rows[rows["item_description"] == "2 / BLACK VELVET"]
    assert len(two) == int((raw["item_name"] == "BLACK VELVET").sum()) and (two["bottles_sold"] == 7).all()
    with pytest.raises(ValueError, match="value is one column"):
        load_config(write_config(tmp_path, path, **{"source.columns": {**columns, "value": ["a", "b"]}}))


def test_read_sales_csv_keeps_series_ids_as_written(tmp_path):
    """The bench's reader keeps SKU-like ids as the seed loader does: `00123` is not the number 123 and a
    product called `NA` is not a missing name; an empty or non-numeric value is still missing."""
    path = tmp_path / "ids.csv"
    path.write_text("day,sku,qty\n2025-01-01,00123,1.5\n2025-01-01,NA,2\n2025-01-02,00123,\n2025-01-02,NA,n/a\n")
    frame = extract.read_sales_csv(path, {"date": "day", "series": "sku", "value": "qty"})
    assert frame["series_id"].tolist() == ["00123", "NA", "00123", "NA"]
    assert frame["value"].tolist()[:2] == [1.5, 2.0]
    assert frame["value"].iloc[2:].isna().all()
