"""Publishing replaces by (series, logical date) in one transaction."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest

from include.forecasting.monitor_tables import forecasts_between
from include.forecasting.publish import forecast_rows, latest_published_duckdb, publish_duckdb, read_forecasts, series_id_type

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


def test_the_readmes_current_forecast_query(tmp_path):
    """README "Reading the current forecast": each series' rows of its own newest logical date, in DuckDB
    as written and in BigQuery's dialect (sqlglot reads it back); the `forecasts_current` view holds the
    same rows."""
    import re

    import sqlglot
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("**Reading the current forecast.**") :]
    query = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    publish_duckdb(con, "forecasts", pd.concat([rows("A", 10, version="3"), rows("B", 20, version="5")]), DAY)
    later = DAY + dt.timedelta(days=1)
    publish_duckdb(con, "forecasts", rows("A", 11, later, version="4"), later)  # B quarantined on the later run
    current = con.execute(query).df()
    assert current.groupby("series_id")["model_version"].unique().map(list).to_dict() == {"A": ["4"], "B": ["5"]}
    assert len(current) == 6 and not current.duplicated(["series_id", "forecast_date"]).any()
    sqlglot.parse_one(query, read="bigquery")
    # The view publishing creates next to the table holds the same rows (include/sql/create_forecasts_current.sql).
    view = con.execute("SELECT series_id, forecast_date, yhat, yhat_lower, yhat_upper, model_version, logical_date FROM forecasts_current ORDER BY series_id, forecast_date").df()
    pd.testing.assert_frame_equal(view, current.reset_index(drop=True))
    sqlglot.parse_one((ROOT / "include" / "sql" / "create_forecasts_current.sql").read_text(), read="bigquery")


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


def test_series_id_type_follows_the_ids():
    assert series_id_type(["1", "17", "45"]) == "INT64"
    assert series_id_type(["-3", "0"]) == "INT64"
    # Written differently from the number they read as: the text is the id.
    for odd in (["017"], ["17.0"], ["1e3"], [" 1"], ["TITOS"], ["1", "A"], ["1" * 19], []):
        assert series_id_type(odd) == "STRING", odd
    assert series_id_type(["1"], "string") == "STRING"
    assert series_id_type(["A"], "integer") == "INT64"


def test_integer_series_ids_are_published_as_integers_and_read_as_text(tmp_path):
    """Store numbers 1..45: the table keys them as integers (a user's frame or join sees the numbers of
    their file), every reader of the project still gets the ids as text, reruns replace by key."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    publish_duckdb(con, "forecasts", pd.concat([rows("7", 10), rows("45", 20)]), DAY)
    publish_duckdb(con, "forecasts", rows("7", 11, version="2"), DAY)  # rerun for 7 only
    raw = con.execute("SELECT * FROM forecasts ORDER BY series_id, forecast_date").df()
    assert str(raw["series_id"].dtype) == "int64" and sorted(set(raw["series_id"])) == [7, 45]
    assert len(raw) == 6 and raw.groupby("series_id")["yhat"].first().to_dict() == {7: 11, 45: 20}
    today = read_forecasts(con, "forecasts", DAY)
    assert set(today["series_id"]) == {"7", "45"}
    assert latest_published_duckdb(con, "forecasts", ["7", "8"]).set_index("series_id")["model_version"].to_dict() == {"7": "2"}
    assert set(forecasts_between(con, "forecasts", DAY, DAY).query("series_id == '45'")["yhat"]) == {20}


def test_an_integer_keyed_table_refuses_a_text_id_and_keeps_its_rows(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    publish_duckdb(con, "forecasts", rows("7", 10), DAY)
    with pytest.raises(ValueError, match=r"keys series by integers.*\['A-1', 'B'\]"):
        publish_duckdb(con, "forecasts", pd.concat([rows("7", 99), rows("A-1", 1), rows("B", 2)]), DAY)
    assert read_forecasts(con, "forecasts", DAY)["yhat"].tolist() == [10, 10, 10]


def test_text_ids_keep_a_text_table(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    publish_duckdb(con, "forecasts", rows("017", 10), DAY)  # a leading zero: text
    publish_duckdb(con, "forecasts", rows("17", 10), DAY)  # the table keeps its type
    assert con.execute("SELECT series_id FROM forecasts ORDER BY 1").df()["series_id"].unique().tolist() == ["017", "17"]
    publish_duckdb(con, "other", rows("5", 1), DAY, id_type="string")
    assert con.execute("SELECT series_id FROM other").df()["series_id"].unique().tolist() == ["5"]
