"""The monitor's warehouse tables (include/sql/monitor_tables.sql) on the embedded DuckDB file.

Rows are replaced by key in one transaction (like published forecasts), so a rerun or a backfill of the
monitor leaves the same rows, and a failure leaves the table as it was. The BigQuery path runs the same
replace as one script (include/sql/replace_rows.bigquery.sql through BigQuerySalesHook.replace_rows).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from include.forecasting.extract import duckdb_transaction, render_sql
from include.forecasting.monitoring import ACCURACY_COLUMNS, ACTUALS_COLUMNS, HEALTH_COLUMNS
from include.forecasting.publish import TEXT_IDS, duckdb_name, table_exists

# table role -> (columns, key columns)
TABLES: dict[str, tuple[list[str], list[str]]] = {
    "accuracy": (ACCURACY_COLUMNS, ["series_id", "logical_date", "forecast_date"]),
    "health": (HEALTH_COLUMNS, ["series_id", "monitor_date"]),
    "actuals": (ACTUALS_COLUMNS, ["series_id", "date"]),
}


def table_names(warehouse: Any) -> dict[str, str]:
    """Role -> table name from the config's warehouse section."""
    return {"accuracy": warehouse.accuracy_table, "health": warehouse.health_table, "actuals": warehouse.actuals_table}


def ensure_tables(con: Any, names: dict[str, str]) -> None:
    """Create the monitor's tables (and their schema) if missing."""
    for table in names.values():
        if "." in table:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.split(".")[0]}"')
    sql = render_sql("monitor_tables", "duckdb", accuracy_table=names["accuracy"], health_table=names["health"], actuals_table=names["actuals"])
    for statement in sql.split(";\n"):
        con.execute(statement)


def replace_duckdb(con: Any, names: dict[str, str], role: str, rows: pd.DataFrame) -> int:
    """Delete the rows whose key is in `rows`, insert `rows`; one transaction. Returns rows written."""
    columns, keys = TABLES[role]
    if rows.empty:
        return 0
    table = duckdb_name(names[role])
    with duckdb_transaction(con):
        ensure_tables(con, names)
        con.register("replace_rows", rows[columns])
        match = " AND ".join(f"t.{k} = r.{k}" for k in keys)
        con.execute(f"DELETE FROM {table} AS t WHERE EXISTS (SELECT 1 FROM replace_rows AS r WHERE {match})")
        con.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} FROM replace_rows")
        con.unregister("replace_rows")
    return len(rows)


def bigquery_replace_sql(table: str, role: str) -> str:
    """The BigQuery replace script for one monitor table (what BigQuerySalesHook.replace_rows runs)."""
    columns, keys = TABLES[role]
    return render_sql(
        "replace_rows.bigquery",
        "bigquery",
        table=table,
        keys=" AND ".join(f"t.{k} = r.{k}" for k in keys),
        columns=", ".join(columns),
        row_columns=", ".join(f"r.{c}" for c in columns),
    )


def bigquery_types(role: str) -> dict[str, str]:
    """Column -> BigQuery type of one monitor table as include/sql/monitor_tables.sql declares it, in the
    table's column order: the types the BigQuery replace script binds each row's fields as."""
    from include.forecasting.bigquery_rows import column_types

    placeholders = {"accuracy": "accuracy_table", "health": "health_table", "actuals": "actuals_table"}
    declared = column_types(render_sql("monitor_tables", "bigquery", **{key: role_name for role_name, key in placeholders.items()}))
    return {column: declared[role][column] for column in TABLES[role][0]}


def read_table(con: Any, table: str, where: str = "", params: dict[str, Any] | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """Rows of one table (empty frame with `columns` if the table does not exist yet); `where` filters and
    orders with series_id as text, whatever its type in the table (the forecasts table may key series by
    integers, see publish.series_id_type)."""
    if not table_exists(con, table):
        return pd.DataFrame(columns=columns or [])
    return con.execute(f"SELECT * FROM (SELECT {TEXT_IDS} FROM {duckdb_name(table)}) {where}", params or {}).df()


def forecasts_between(con: Any, table: str, first: dt.date, last: dt.date) -> pd.DataFrame:
    """Published forecasts whose logical date is in [first, last]."""
    from include.forecasting.publish import FORECAST_COLUMNS

    return read_table(
        con, table, "WHERE logical_date BETWEEN $a AND $b ORDER BY series_id, logical_date, forecast_date", {"a": first, "b": last}, FORECAST_COLUMNS
    )
