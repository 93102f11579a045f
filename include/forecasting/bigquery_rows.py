"""Rows bound to a BigQuery script as typed values: each field typed as the target table declares it.

BigQuery's INSERT takes a struct field only of its column's type (INT64 may go into FLOAT64, a DATE into
DATETIME; a STRING never into a DATE), so the types come from the table's DDL in include/sql/ (the one
place they are written), not from what pandas happens to hold: a column of dates may arrive as
`datetime.date` objects, pandas Timestamps or text, and a column with no value in the first row would
otherwise be typed by its missing value. Pure: `BigQuerySalesHook` wraps the result in the client's
parameter classes.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import pandas as pd


def column_types(ddl: str) -> dict[str, dict[str, str]]:
    """{table: {column: BigQuery type}} of every CREATE TABLE in `ddl` (BigQuery's dialect, placeholders
    filled), e.g. {"forecasting.forecasts": {"series_id": "STRING", "forecast_date": "DATE", ...}}."""
    import sqlglot  # local: only the BigQuery path reads DDL
    from sqlglot import exp

    out: dict[str, dict[str, str]] = {}
    for statement in sqlglot.parse(ddl, read="bigquery"):
        if not isinstance(statement, exp.Create) or not isinstance(statement.this, exp.Schema):
            continue
        table = statement.this.this
        name = ".".join(part for part in (table.catalog, table.db, table.name) if part)
        out[name] = {
            column.name: column.args["kind"].sql(dialect="bigquery").upper()
            for column in statement.this.expressions
            if isinstance(column, exp.ColumnDef)
        }
    return out


def typed_value(value: Any, kind: str, column: str) -> Any:
    """`value` as the Python value of BigQuery type `kind` (None for a missing one: None, NaN, NaT).

    DATE from a date, a Timestamp or ISO text; TIMESTAMP as an aware UTC datetime (a naive one is read as
    UTC, as BigQuery reads a zoneless timestamp); a value that is not of the column's type raises, naming
    the column (a float in a date column is a bug upstream, not something to send)."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        if kind == "DATE":
            return pd.Timestamp(value).date() if isinstance(value, (dt.date, str)) else _refuse(value, kind, column)
        if kind in ("TIMESTAMP", "DATETIME"):
            if not isinstance(value, (dt.date, str)):
                return _refuse(value, kind, column)
            moment = pd.Timestamp(value)
            if kind == "DATETIME":
                return moment.tz_convert(None).to_pydatetime() if moment.tzinfo else moment.to_pydatetime()
            return (moment.tz_convert("UTC") if moment.tzinfo else moment.tz_localize("UTC")).to_pydatetime()
        if kind in ("FLOAT64", "NUMERIC", "BIGNUMERIC"):
            return float(value) if not isinstance(value, (bool, np.bool_, str, dt.date)) else _refuse(value, kind, column)
        if kind == "INT64":
            if isinstance(value, float) and not value.is_integer():
                return _refuse(value, kind, column)
            return int(value) if not isinstance(value, (bool, np.bool_, str, dt.date)) else _refuse(value, kind, column)
        if kind == "BOOL":
            return bool(value) if isinstance(value, (bool, np.bool_)) else _refuse(value, kind, column)
    except (TypeError, ValueError):
        return _refuse(value, kind, column)
    return str(value)  # STRING, and any other type BigQuery reads from text


def _refuse(value: Any, kind: str, column: str) -> Any:
    raise TypeError(f"column {column} is {kind} in the table's DDL, got {value!r} ({type(value).__name__})")


def typed_rows(rows: pd.DataFrame, types: dict[str, str]) -> list[list[tuple[str, str, Any]]]:
    """Each row as [(column, BigQuery type, value)] for the columns of `types`, in its order; raises naming
    a column the frame lacks."""
    missing = [c for c in types if c not in rows.columns]
    if missing:
        raise KeyError(f"rows lack the table's column(s) {missing}")
    return [
        [(column, kind, typed_value(value, kind, column)) for (column, kind), value in zip(types.items(), record, strict=True)]
        for record in rows[list(types)].itertuples(index=False, name=None)
    ]
