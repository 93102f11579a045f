"""Publish forecasts to the warehouse table, replacing rows by key so reruns never duplicate.

Key: (series_id, logical_date). One transaction replaces every series of a run at once, so readers see
either the old or the new forecasts, never a mix, and a failure leaves the table as it was.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from include.forecasting.extract import duckdb_transaction, render_sql

log = logging.getLogger(__name__)

# model_version of a fallback forecast (a series with no champion yet): flagged, never a registry version.
FALLBACK_VERSION = "fallback:seasonal_naive"

FORECAST_COLUMNS = [
    "series_id", "forecast_date", "yhat", "yhat_lower", "yhat_upper", "yhat_lower_95", "yhat_upper_95",
    "model_name", "model_version", "logical_date", "as_of_date", "run_id", "published_at",
]


# A series id that is a whole number as written ("17", not "017" or "17.0") and fits BigQuery's INT64.
_INTEGER_ID = re.compile(r"-?(0|[1-9][0-9]{0,17})")

# Readers see series_id as text whatever the table's type: the pipeline keys series by their text.
# BigQuery and DuckDB both read this (STRING is DuckDB's alias of VARCHAR).
TEXT_IDS = "* REPLACE (CAST(series_id AS STRING) AS series_id)"


def duckdb_name(table: str) -> str:
    """A `table` or `schema.table` name quoted for DuckDB's SQL: "schema"."table"."""
    return ".".join(f'"{part}"' for part in table.split("."))


def bigquery_forecast_types() -> dict[str, str]:
    """Column -> BigQuery type of the forecasts table as include/sql/create_forecasts.sql declares it (with
    `series_id STRING`, as README "BigQuery in production" asks), in FORECAST_COLUMNS order: the types the
    BigQuery publish script binds each row's fields as."""
    from include.forecasting.bigquery_rows import column_types

    declared = next(iter(column_types(render_sql("create_forecasts", "bigquery", forecasts_table="forecasts", series_type="STRING")).values()))
    return {column: declared[column] for column in FORECAST_COLUMNS}


def series_id_type(series: Iterable[str], setting: str = "auto") -> str:
    """The SQL type (BigQuery's names) of series_id in a forecasts table created for these series.

    "auto": INT64 when every id is a whole number as written (store numbers), so the table joins a source
    keyed by integers without a cast and a dataframe read from it holds the numbers the user's file did;
    otherwise STRING. "string" / "integer" force the type.
    """
    if setting == "string":
        return "STRING"
    ids = list(series)
    return "INT64" if setting == "integer" or (ids and all(_INTEGER_ID.fullmatch(str(s)) for s in ids)) else "STRING"


def _integer_keyed(con: Any, table: str) -> bool:
    """Whether an existing DuckDB forecasts table keys series by an integer type."""
    parts = table.split(".")
    query = "SELECT data_type FROM information_schema.columns WHERE table_name = $t AND column_name = 'series_id'"
    query += " AND table_schema = $s" if len(parts) > 1 else ""
    found = con.execute(query, {"t": parts[-1], **({"s": parts[-2]} if len(parts) > 1 else {})}).fetchone()
    return bool(found) and "INT" in str(found[0]).upper()


def forecast_rows(
    series_id: str,
    forecast: pd.DataFrame,
    model_name: str,
    model_version: str,
    logical_date: dt.date,
    run_id: str,
    as_of: pd.Timestamp | dt.date | None = None,
) -> pd.DataFrame:
    """Shape one series' forecast frame into warehouse rows; `as_of` is the last period of data it saw."""
    rows = forecast.copy()
    rows["forecast_date"] = pd.to_datetime(rows["forecast_date"]).dt.date
    for column in ("yhat_lower_95", "yhat_upper_95"):
        if column not in rows:
            rows[column] = float("nan")
    rows["series_id"] = series_id
    rows["model_name"] = model_name
    rows["model_version"] = str(model_version)
    rows["logical_date"] = logical_date
    # The last period of data the model saw (default: the day before the first forecast date).
    last = pd.Timestamp(as_of) if as_of is not None else pd.Timestamp(rows["forecast_date"].min()) - pd.Timedelta(days=1)
    rows["as_of_date"] = last.date()
    rows["run_id"] = run_id
    rows["published_at"] = pd.Timestamp.now(tz="UTC").tz_localize(None)
    return rows[FORECAST_COLUMNS]


def publish_duckdb(con: Any, table: str, rows: pd.DataFrame, logical_date: dt.date, id_type: str = "auto") -> int:
    """Replace this logical date's rows for the published series in one transaction; return rows written.

    A missing table is created with series_id typed by `series_id_type(ids, id_type)`, with the view
    `<table>_current` (include/sql/create_forecasts_current.sql: each series' rows of its newest logical
    date); an existing one keeps its type, and a table keyed by integers refuses a series id that is not
    one, naming it, before anything is written."""
    if rows.empty:
        log.warning("nothing to publish for %s", logical_date)
        return 0
    if set(rows["logical_date"]) != {logical_date}:
        raise ValueError("every published row must carry the run's logical_date")
    schema_table = table.split(".")
    with duckdb_transaction(con):
        if len(schema_table) == 2:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema_table[0]}"')
        series = sorted(str(s) for s in rows["series_id"].unique())
        con.execute(render_sql("create_forecasts", "duckdb", forecasts_table=table, series_type=series_id_type(series, id_type)))
        con.execute(render_sql("create_forecasts_current", "duckdb", forecasts_table=table))  # <table>_current: each series' newest rows
        if _integer_keyed(con, table):
            odd = [s for s in series if not _INTEGER_ID.fullmatch(s)]
            if odd:
                raise ValueError(
                    f"{table} keys series by integers (it was created for whole-number series ids) but these ids are not "
                    f"whole numbers: {odd[:5]}; publish to another table (warehouse.forecasts_table) or rename this one"
                )
        quoted = duckdb_name(table)
        con.execute(
            f"DELETE FROM {quoted} WHERE logical_date = $logical_date AND list_contains($series, CAST(series_id AS VARCHAR))",
            {"logical_date": logical_date, "series": series},
        )
        con.register("publish_rows", rows)
        con.execute(f"INSERT INTO {quoted} ({', '.join(FORECAST_COLUMNS)}) SELECT {', '.join(FORECAST_COLUMNS)} FROM publish_rows")
        con.unregister("publish_rows")
    log.info("published %d forecast rows to %s for %s", len(rows), table, logical_date)
    return len(rows)


def table_exists(con: Any, table: str) -> bool:
    """Whether a DuckDB table (`table` or `schema.table`) exists yet: readers of tables that the first
    publish or monitor run creates return empty frames before then."""
    parts = table.split(".")
    query = "SELECT count(*) FROM information_schema.tables WHERE table_name = $t" + (" AND table_schema = $s" if len(parts) > 1 else "")
    params = {"t": parts[-1], **({"s": parts[-2]} if len(parts) > 1 else {})}
    return bool(con.execute(query, params).fetchone()[0])


def read_forecasts(con: Any, table: str, logical_date: dt.date | None = None) -> pd.DataFrame:
    """Read published forecasts (optionally for one logical date), ordered by series and date."""
    quoted = duckdb_name(table)
    if not table_exists(con, table):
        return pd.DataFrame(columns=FORECAST_COLUMNS)
    where, params = ("WHERE logical_date = $d", {"d": logical_date}) if logical_date else ("", {})
    return con.execute(f"SELECT {TEXT_IDS} FROM {quoted} {where} ORDER BY series_id, logical_date, forecast_date", params).df()


def latest_published_duckdb(con: Any, table: str, series: list[str]) -> pd.DataFrame:
    """Per series: its newest published logical date and the model version of those rows
    (include/sql/latest_published.sql); empty if nothing was published yet."""
    if not series or not table_exists(con, table):
        return pd.DataFrame(columns=["series_id", "logical_date", "model_version"])
    return con.execute(render_sql("latest_published", "duckdb", forecasts_table=table), {"series": list(series)}).df()
