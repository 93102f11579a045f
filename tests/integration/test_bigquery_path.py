"""The BigQuery path end to end: `sales_forecast` and `forecast_monitor` under dag.test() with
`source.kind: bigquery` and `warehouse.kind: bigquery`. `BigQuerySalesHook` builds the official
google-cloud-bigquery client from the `google_cloud_default` connection, pointed (extra `api_endpoint`) at
the BigQuery stand-in on 127.0.0.1 (tests/support/bigquery_standin.py): real HTTP, the client's own job
and parameter serialisation, and the project's BigQuery SQL run on DuckDB by transpiling it, with BigQuery's
type rules for parameters and INSERTs enforced. The stand-in's tables are created from the project's
BigQuery DDL (include/sql/create_forecasts.sql, monitor_tables.sql), as README "BigQuery in production"
asks a user to."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from conftest import RUN_DAY, SEED, write_config
from support.bigquery_standin import PUBLIC_SALES, BigQueryStandIn, load_public_sales
from support.stores import champions, task_states

from include.forecasting import extract
from include.forecasting.config import load_config
from scripts.demo import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
DAY = dt.date.fromisoformat(RUN_DAY)
TABLES = {
    "warehouse.kind": "bigquery",
    "warehouse.forecasts_table": "forecasting.forecasts",
    "warehouse.accuracy_table": "forecasting.forecast_accuracy",
    "warehouse.health_table": "forecasting.forecast_health",
    "warehouse.actuals_table": "forecasting.forecast_actuals",
}


def standin_warehouse(bq: BigQueryStandIn) -> None:
    """The public source table (the columns the project reads, with BigQuery's types, one row per invoice
    line: here one per day and product of the shipped panel) and the project's tables from its DDL."""
    seed = pd.read_csv(SEED)
    load_public_sales(bq, seed.rename(columns={"item_name": "item_description", "total_amount_sold": "bottles_sold"}))
    bq.create(extract.render_sql("create_forecasts", "bigquery", forecasts_table=TABLES["warehouse.forecasts_table"], series_type="STRING"))
    bq.create(extract.render_sql("create_forecasts_current", "bigquery", forecasts_table=TABLES["warehouse.forecasts_table"]))
    bq.create(extract.render_sql(
        "monitor_tables", "bigquery", accuracy_table=TABLES["warehouse.accuracy_table"],
        health_table=TABLES["warehouse.health_table"], actuals_table=TABLES["warehouse.actuals_table"],
    ))


@pytest.fixture
def bigquery(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The stand-in serving the Iowa panel, the connection pointing at it and a BigQuery config."""
    with BigQueryStandIn(duckdb.connect()) as bq:
        standin_warehouse(bq)
        monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", bq.connection())
        path = write_config(tmp_path, **{"source.kind": "bigquery", "source.table": PUBLIC_SALES, "source.unique_key": ["invoice_and_item_number"], **TABLES})
        monkeypatch.setenv("FORECAST_CONFIG", str(path))
        yield bq, load_config(path)


def published(bq: BigQueryStandIn, day: dt.date | None = None) -> pd.DataFrame:
    """The stand-in's forecasts table (one logical date, or all)."""
    where = "WHERE logical_date = $d" if day else ""
    return bq.con.execute(f"SELECT * FROM forecasting.forecasts {where} ORDER BY series_id, forecast_date", {"d": day} if day else {}).df()


def test_forecast_and_monitor_runs_on_bigquery(bigquery: Any) -> None:
    """Extract, source checks, publish and the monitor's reads and writes all go through the client and
    the stand-in: forecasts for every series dated from the logical date, the registry's champions in
    them, a rerun replacing rather than appending, and the monitor's tables written by key. Every value
    reaches BigQuery as a bound, typed parameter: no query text holds a date."""
    bq, config = bigquery
    earlier = DAY - dt.timedelta(days=7)
    for day in (earlier, DAY):
        run = run_dag("sales_forecast", day)
        assert run.state == "success", task_states(run)
    rows = published(bq, DAY)
    assert len(rows) == 5 * config.forecast.horizon and rows["series_id"].nunique() == 5
    assert rows["forecast_date"].min() == pd.Timestamp(DAY) and set(rows["as_of_date"]) == {pd.Timestamp(DAY - dt.timedelta(days=1))}
    assert rows.groupby("series_id")["model_version"].first().to_dict() == champions(config)
    assert (rows["yhat_lower"] <= rows["yhat"]).all() and (rows["yhat"] <= rows["yhat_upper"]).all()

    current = bq.con.execute("SELECT logical_date, count(*) FROM forecasting.forecasts_current GROUP BY ALL").fetchall()
    assert current == [(DAY, 5 * config.forecast.horizon)]  # the view: each series' newest date only

    before = published(bq)
    assert run_dag("sales_forecast", DAY).state == "success"  # a rerun: the same rows, replaced by key
    after = published(bq)
    assert len(after) == len(before)
    pd.testing.assert_frame_equal(after.drop(columns=["published_at", "run_id"]), before.drop(columns=["published_at", "run_id"]))

    monitor = run_dag("forecast_monitor", DAY)
    assert monitor.state == "success", task_states(monitor)
    accuracy = bq.con.execute("SELECT * FROM forecasting.forecast_accuracy").df()
    # The forecasts of the earlier run whose dates have actuals (through DAY - 1) are scored.
    assert set(accuracy["logical_date"]) == {pd.Timestamp(earlier)} and len(accuracy) == 5 * config.forecast.horizon
    assert bq.con.execute("SELECT count(*) FROM forecasting.forecast_health").fetchone()[0] == 5
    assert bq.con.execute("SELECT count(*) FROM forecasting.forecast_actuals").fetchone()[0] > 0
    assert run_dag("forecast_monitor", DAY).state == "success"
    assert len(bq.con.execute("SELECT * FROM forecasting.forecast_accuracy").df()) == len(accuracy)

    # The Forecasts page's reads (the plugin's queries, through read_monitor_table).
    from forecast_ops.web import app

    _, page, _ = app._rows(None)
    assert sorted(row["series_id"] for row in page) == sorted(champions(config))
    chart = app._chart(config, "BLACK VELVET")
    assert chart["actuals"] and len(chart["forecasts"]) == 2  # the two published dates

    # A rollback through the DAG republishes the newest date's rows of the series from the restored
    # version: latest_published, the extract and the publish script, all on BigQuery.
    served = champions(config)
    run = run_dag("rollback_champion", DAY, {"series": "BLACK VELVET", "target": "previous", "reason": "test rollback"})
    assert run.state == "success", task_states(run)
    restored = champions(config)["BLACK VELVET"]
    assert restored != served["BLACK VELVET"]
    rows = published(bq, DAY)
    assert set(rows.loc[rows.series_id == "BLACK VELVET", "model_version"]) == {restored}
    assert set(rows.loc[rows.series_id != "BLACK VELVET", "model_version"]) == {v for s, v in served.items() if s != "BLACK VELVET"}

    assert bq.jobs and not [job.error for job in bq.jobs if job.error]
    assert not [job.query for job in bq.jobs if "2025-" in job.query]
    kinds = {name: descriptor["type"] for job in bq.jobs for name, (descriptor, _) in job.parameters.items()}
    assert kinds["window_start"] == kinds["window_end"] == kinds["logical_date"] == "DATE" and kinds["rows"] == "ARRAY"
