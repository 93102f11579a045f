"""BigQuerySalesHook through the official client against the BigQuery stand-in on 127.0.0.1 (real HTTP;
the jobs run on DuckDB, transpiled, with BigQuery's type rules): the BigQuery extract returns what the
embedded path does on the same rows, and a row typed otherwise than its table is refused with nothing
half-written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from conftest import write_config
from google.api_core.exceptions import BadRequest
from support.bigquery_standin import PUBLIC_SALES, BigQueryStandIn, load_public_sales

from include.forecasting import extract, monitor_tables, publish
from include.forecasting.config import load_config

WINDOW = (dt.date(2025, 1, 1), dt.date(2025, 3, 1))


@pytest.fixture
def stand_in(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stand-in with the embedded config's source rows in the public table's shape, the monitor's
    actuals table from its DDL, the connection pointing at it, and the two configs (DuckDB, BigQuery)."""
    embedded = load_config(write_config(tmp_path))
    con = duckdb.connect()
    extract.load_seed_csv(con, embedded.source)
    with BigQueryStandIn(duckdb.connect()) as bq:
        load_public_sales(bq, con.execute(f"SELECT date, item_description, bottles_sold FROM {embedded.source.table}").df())
        bq.create(extract.render_sql("monitor_tables", "bigquery", accuracy_table="m.accuracy", health_table="m.health", actuals_table="m.actuals"))
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", bq.connection())
        overrides = {"source.kind": "bigquery", "source.table": PUBLIC_SALES, "source.unique_key": ["invoice_and_item_number"], "warehouse.kind": "bigquery",
                     "warehouse.accuracy_table": "m.accuracy", "warehouse.health_table": "m.health", "warehouse.actuals_table": "m.actuals"}
        (tmp_path / "bq").mkdir()
        yield bq, con, embedded, load_config(write_config(tmp_path / "bq", **overrides))


# The client's pending deprecation of RowIterator.to_dataframe would warn in every extract's task log.
@pytest.mark.filterwarnings("error::PendingDeprecationWarning")
def test_the_bigquery_extract_returns_what_the_embedded_one_does(stand_in: Any) -> None:
    """daily_sales.sql as written (BigQuery) and transpiled (DuckDB) on the same rows: the same frame, the
    window and series bound as DATE and ARRAY<STRING> parameters, never in the text; read without the
    client's deprecated DataFrame path."""
    from forecast_ops.hooks.warehouse import extract_daily_sales

    bq, con, embedded, config = stand_in
    for series in (None, ("BLACK VELVET", "HAWKEYE VODKA")):
        expected = extract.normalise(extract.extract_duckdb(con, embedded.source.table, WINDOW, series))
        got = extract_daily_sales(config.model_copy(update={"series": list(series) if series else "all"}), WINDOW)
        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)
        assert len(got) and (series is None or set(got["series_id"]) == set(series))
    job = bq.jobs[-1]
    assert "2025" not in job.query and {k: d["type"] for k, (d, _) in job.parameters.items()} == {"window_start": "DATE", "window_end": "DATE", "series": "ARRAY"}


def test_a_field_typed_otherwise_than_its_column_is_refused_and_nothing_is_half_written(stand_in: Any) -> None:
    """The monitor's replace script with rows typed from the table's DDL writes them and, run again,
    replaces them; with one field typed otherwise (a date column sent as text, as the publish path once
    sent as_of_date) BigQuery refuses the INSERT, and the script's transaction leaves the rows as they were
    (its DELETE is rolled back)."""
    from forecast_ops.hooks.bigquery_sales import BigQuerySalesHook

    bq, _, _, config = stand_in
    hook = BigQuerySalesHook()
    sql = monitor_tables.bigquery_replace_sql("m.actuals", "actuals")
    types = monitor_tables.bigquery_types("actuals")
    rows = pd.DataFrame({"series_id": ["A", "A"], "date": pd.to_datetime(["2025-05-01", "2025-05-02"]), "actual": [1.0, 2.0]})
    assert hook.replace_rows(sql, rows, types) == 2
    assert hook.replace_rows(sql, rows.assign(actual=[3.0, 4.0]), types) == 2
    stored = bq.con.execute("SELECT date, actual FROM m.actuals ORDER BY date").fetchall()
    assert stored == [(dt.date(2025, 5, 1), 3.0), (dt.date(2025, 5, 2), 4.0)]
    with pytest.raises(BadRequest, match="type STRING which cannot be inserted into column date, which has type DATE"):
        hook.replace_rows(sql, rows.assign(actual=[5.0, 6.0]), {**types, "date": "STRING"})
    assert bq.con.execute("SELECT date, actual FROM m.actuals ORDER BY date").fetchall() == stored
    with pytest.raises(BadRequest, match="No matching signature"):
        hook.query_frame("SELECT * FROM `m.actuals` WHERE date = @d", {"d": 20250501})  # an INT64 against a DATE
    assert publish.bigquery_forecast_types()["as_of_date"] == "DATE"


def test_a_source_row_delivered_twice_is_found_on_bigquery(stand_in: Any) -> None:
    """The duplicates query of the source's own grain (`source.unique_key`: the invoice line) on BigQuery:
    an invoice line loaded twice is named with its series and date; the per-delivery volume runs too
    (a transaction-grain source)."""
    from forecast_ops.hooks.warehouse import source_checks

    bq, _, _, config = stand_in
    assert source_checks(config, WINDOW)[0] == []
    bq.con.execute(
        'INSERT INTO "bigquery-public-data".iowa_liquor_sales.sales SELECT * FROM "bigquery-public-data".iowa_liquor_sales.sales '
        "WHERE item_description = 'HAWKEYE VODKA' AND date = DATE '2025-02-03'"
    )
    duplicates, volume = source_checks(config, WINDOW)
    assert duplicates == [{"series_id": "HAWKEYE VODKA", "n_keys": 1, "max_rows": 2, "first_date": "2025-02-03", "last_date": "2025-02-03"}]
    assert {v["sales_date"] for v in volume} >= {"2025-02-03"}
