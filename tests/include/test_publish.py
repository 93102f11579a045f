"""Publishing replaces by (series, logical date) in one transaction."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from include.forecasting.publish import forecast_rows, latest_published_duckdb, publish_duckdb, read_forecasts

DAY = dt.date(2025, 5, 31)


def rows(series: str, value: float, day: dt.date = DAY, version: str = "1") -> pd.DataFrame:
    fc = pd.DataFrame({"forecast_date": pd.date_range(day, periods=3), "yhat": value, "yhat_lower": value - 1, "yhat_upper": value + 1})
    return forecast_rows(series, fc, f"p.{series.lower()}", version, day, "run")


def test_replace_by_key_and_keep_other_dates(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    publish_duckdb(con, "forecasts", pd.concat([rows("A", 10), rows("B", 20)]), DAY)
    publish_duckdb(con, "forecasts", rows("A", 11, DAY - dt.timedelta(days=1)), DAY - dt.timedelta(days=1))
    publish_duckdb(con, "forecasts", rows("A", 12, version="2"), DAY)  # rerun for A only
    today = read_forecasts(con, "forecasts", DAY)
    assert len(today) == 6
    assert today.groupby("series_id")["yhat"].first().to_dict() == {"A": 12, "B": 20}
    assert today.set_index("series_id").loc["A", "model_version"].unique().tolist() == ["2"]
    assert len(read_forecasts(con, "forecasts")) == 9
    assert set(today["as_of_date"]) == {pd.Timestamp(DAY - dt.timedelta(days=1))}


def test_latest_published_per_series(tmp_path):
    """What a rollback republishes: each series' newest logical date and the version of its rows
    (include/sql/latest_published.sql, transpiled from BigQuery's dialect)."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert latest_published_duckdb(con, "forecasts", ["A"]).empty  # nothing published yet
    publish_duckdb(con, "forecasts", pd.concat([rows("A", 10, version="3"), rows("B", 20, version="5")]), DAY)
    publish_duckdb(con, "forecasts", rows("B", 21, DAY + dt.timedelta(days=1), version="6"), DAY + dt.timedelta(days=1))
    latest = latest_published_duckdb(con, "forecasts", ["A", "B", "C"]).set_index("series_id")
    assert latest["model_version"].to_dict() == {"A": "3", "B": "6"}
    assert [pd.Timestamp(d).date() for d in latest["logical_date"]] == [DAY, DAY + dt.timedelta(days=1)]
    assert list(latest_published_duckdb(con, "forecasts", ["B"]).series_id) == ["B"]


def test_failed_publish_leaves_the_table_as_it_was(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    publish_duckdb(con, "forecasts", rows("A", 10), DAY)
    bad = rows("A", 99)
    bad.loc[1, "yhat"] = None  # NOT NULL violation mid-insert
    with pytest.raises(duckdb.Error):
        publish_duckdb(con, "forecasts", bad, DAY)
    assert read_forecasts(con, "forecasts", DAY)["yhat"].tolist() == [10, 10, 10]


def test_rows_must_carry_the_run_date(tmp_path):
    con = duckdb.connect()
    with pytest.raises(ValueError, match="logical_date"):
        publish_duckdb(con, "forecasts", rows("A", 1), DAY + dt.timedelta(days=1))
    assert publish_duckdb(con, "forecasts", rows("A", 1).iloc[0:0], DAY) == 0
