"""bigquery_rows: rows typed by the target table's DDL, whatever pandas holds."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from include.forecasting import bigquery_rows, monitor_tables, publish


def test_the_types_are_read_off_the_projects_ddl():
    """The forecasts table's and the monitor tables' columns with their BigQuery types, in their column
    order (the publish and replace scripts bind the rows' fields in it)."""
    forecasts = publish.bigquery_forecast_types()
    assert list(forecasts) == publish.FORECAST_COLUMNS
    assert forecasts["forecast_date"] == forecasts["as_of_date"] == forecasts["logical_date"] == "DATE"
    assert forecasts["published_at"] == "TIMESTAMP" and forecasts["yhat_lower_95"] == "FLOAT64" and forecasts["series_id"] == "STRING"
    health = monitor_tables.bigquery_types("health")
    assert health["scored_periods"] == "INT64" and health["degraded"] == "BOOL" and health["monitor_date"] == "DATE"
    ddl = "CREATE TABLE `p.d.t` (a STRING NOT NULL, b NUMERIC); CREATE TABLE IF NOT EXISTS `d.u` (c DATETIME)"
    assert bigquery_rows.column_types(ddl) == {"p.d.t": {"a": "STRING", "b": "NUMERIC"}, "d.u": {"c": "DATETIME"}}


def test_published_rows_are_typed_by_their_columns_not_by_their_values():
    """publish.forecast_rows as the DAG builds them: dates as DATE (from date objects and Timestamps),
    the publishing time as an aware UTC TIMESTAMP, a missing 95 % bound as a FLOAT64 null (typed by its
    column, though every value of it is missing)."""
    forecast = pd.DataFrame({"forecast_date": pd.date_range("2025-06-01", periods=2), "yhat": [1.0, 2.0], "yhat_lower": [0.5, 1.0], "yhat_upper": [2.0, 3.0]})
    rows = publish.forecast_rows("A", forecast, "sales_forecast.a", "3", dt.date(2025, 6, 1), "manual__1")
    typed = bigquery_rows.typed_rows(rows, publish.bigquery_forecast_types())
    first = {name: (kind, value) for name, kind, value in typed[0]}
    assert first["forecast_date"] == ("DATE", dt.date(2025, 6, 1)) and first["as_of_date"] == ("DATE", dt.date(2025, 5, 31))
    assert first["yhat_lower_95"] == ("FLOAT64", None) and first["model_version"] == ("STRING", "3")
    kind, moment = first["published_at"]
    assert kind == "TIMESTAMP" and moment.tzinfo is not None and moment.utcoffset() == dt.timedelta(0)
    assert [name for name, _, _ in typed[1]] == publish.FORECAST_COLUMNS


def test_values_convert_to_their_columns_type_or_are_refused_by_name():
    value = bigquery_rows.typed_value
    assert value(pd.Timestamp("2025-06-01"), "DATE", "d") == dt.date(2025, 6, 1) == value("2025-06-01", "DATE", "d")
    assert value(pd.NaT, "DATE", "d") is None and value(float("nan"), "FLOAT64", "x") is None and value(None, "STRING", "s") is None
    assert value(np.int64(3), "INT64", "n") == 3 and value(3.0, "INT64", "n") == 3 and value(np.float32(1.5), "FLOAT64", "x") == 1.5
    assert value(np.bool_(True), "BOOL", "b") is True and value(7, "STRING", "s") == "7"
    aware = value(pd.Timestamp("2025-06-01 12:00", tz="Europe/Berlin"), "TIMESTAMP", "t")
    assert aware == dt.datetime(2025, 6, 1, 10, 0, tzinfo=dt.UTC)
    for bad, kind in ((1.5, "DATE"), (3.5, "INT64"), ("3", "FLOAT64"), (dt.date(2025, 1, 1), "FLOAT64"), ("yes", "BOOL")):
        with pytest.raises(TypeError, match=f"column c is {kind}"):
            value(bad, kind, "c")
    with pytest.raises(KeyError, match="as_of_date"):
        bigquery_rows.typed_rows(pd.DataFrame({"series_id": ["A"]}), {"series_id": "STRING", "as_of_date": "DATE"})
