"""Backfill 3 consecutive dates through the real scheduler (LocalExecutor, api-server, dag-processor on
127.0.0.1; SQLite metadata; DuckDB; MLflow sqlite), three runs at once, then reprocess them.

Checks the issue's operating rules on the real stores: no leakage (each date trains on data before it
and forecasts from it), rows keyed and replaced by logical date, concurrent runs do not corrupt the
registry or the table, the newest date's champion wins whatever order the runs finish in, and a
reprocess registers nothing new, moves no alias and republishes identical rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from conftest import write_config
from support.stores import champions, forecasts, version_counts

from scripts.airflow_stack import AirflowStack, Processes, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]
DATES = [dt.date(2025, 5, 29), dt.date(2025, 5, 30), dt.date(2025, 5, 31)]
VALUES = ["series_id", "forecast_date", "logical_date", "as_of_date", "yhat", "yhat_lower", "yhat_upper", "model_version"]


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest):
    """A running Airflow stack over a config whose stores all live in tmp_path; the services' log tails
    are printed when the setup or the test fails."""
    import duckdb

    from include.forecasting.config import load_config
    from include.forecasting.extract import load_seed_csv

    config_path = write_config(tmp_path)
    config = load_config(config_path)
    con = duckdb.connect(str(config.warehouse.path))
    load_seed_csv(con, config.source)
    con.close()
    procs = Processes(tmp_path / "logs")
    airflow = AirflowStack.embedded(tmp_path / "airflow", config_path, procs, parallelism=4, FORECAST_RETRY_DELAY_S="1")
    try:
        airflow.start({"training": 2})
        airflow.wait_for_dag("sales_forecast")
        yield airflow, config
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print_logs(procs)
    except BaseException:
        print_logs(procs)
        raise
    finally:
        procs.stop()


def print_logs(procs: Processes) -> None:
    """The tail of each service's log (captured by pytest and shown with the failure)."""
    for name in ("scheduler", "api-server", "dag-processor"):
        print(f"--- {name} log ---\n{procs.tail(name, 80)}")


def backfill_runs(airflow: AirflowStack) -> list[dict]:
    """The backfill runs (unpausing also creates today's scheduled run, which has no data: ignored)."""
    return [r for r in airflow.runs("sales_forecast") if r["run_type"] == "backfill"]


def test_backfill_three_dates_concurrently_then_reprocess(stack):
    airflow, config = stack
    # 1. The operator's command (README "Operations"): three logical dates, all active at once.
    airflow.airflow(
        "backfill", "create", "--dag-id", "sales_forecast", "--from-date", DATES[0].isoformat(),
        "--to-date", f"{DATES[-1].isoformat()}T03:00:00+00:00", "--max-active-runs", "3",
    )
    wait_for(lambda: len([r for r in backfill_runs(airflow) if r["state"] in ("success", "failed")]) == 3, 900, "3 backfill runs", 3.0)
    runs = backfill_runs(airflow)
    assert [r["state"] for r in runs] == ["success"] * 3, runs
    assert sorted(pd.Timestamp(r["logical_date"]).date() for r in runs) == DATES
    # They really ran at the same time (so the concurrency rules were exercised, not just stated).
    starts = [pd.Timestamp(r["start_date"]) for r in runs]
    ends = [pd.Timestamp(r["end_date"]) for r in runs]
    assert max(starts) < min(ends), list(zip(starts, ends, strict=True))

    # 2. Each date: trained on data before it, forecasts from it, keyed by it; no duplicate keys.
    published = forecasts(config)
    assert not published.duplicated(["series_id", "logical_date", "forecast_date"]).any()
    for day in DATES:
        rows = published[published["logical_date"] == pd.Timestamp(day)]
        assert len(rows) == 5 * 7, day
        assert rows["forecast_date"].min() == pd.Timestamp(day)
        assert set(rows["as_of_date"]) == {pd.Timestamp(day - dt.timedelta(days=1))}

    # 3. One version per (series, date): each date's data differ. The newest date's version is champion
    #    for every series, whatever order the three concurrent runs finished in.
    from mlflow import MlflowClient

    from include.forecasting import registry

    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    counts = version_counts(config)
    assert sorted(counts.values()) == [3] * 5, counts
    for series_id, version in champions(config).items():
        name = registry.model_name(config.mlflow.model_prefix, series_id)
        assert client.get_model_version(name, version).tags["logical_date"] == DATES[-1].isoformat(), series_id
        dates = sorted(v.tags["logical_date"] for v in registry.versions(client, name))
        assert dates == [d.isoformat() for d in DATES], dates
    before_champions = champions(config)
    before_rows = published[VALUES].reset_index(drop=True)

    # 4. Reprocess the same range through the REST API (what the UI's Backfill dialog calls), once the
    #    scheduler has closed the first backfill (only one backfill per DAG may run at a time).
    first = airflow.api("GET", "/api/v2/backfills?dag_id=sales_forecast")["backfills"][0]
    wait_for(lambda: airflow.api("GET", f"/api/v2/backfills/{first['id']}")["completed_at"], 120, "first backfill closed", 2.0)
    backfill = airflow.api(
        "POST", "/api/v2/backfills",
        {"dag_id": "sales_forecast", "from_date": f"{DATES[0]}T00:00:00Z", "to_date": f"{DATES[-1]}T03:00:00Z",
         "max_active_runs": 3, "reprocess_behavior": "completed"},
    )
    wait_for(lambda: airflow.api("GET", f"/api/v2/backfills/{backfill['id']}")["completed_at"], 900, "reprocess backfill", 3.0)
    rerun = [r for r in backfill_runs(airflow) if pd.Timestamp(r["logical_date"]).date() in DATES]
    assert rerun and all(r["state"] == "success" for r in rerun), rerun
    assert version_counts(config) == counts  # no duplicate version
    assert champions(config) == before_champions  # no alias moved
    pd.testing.assert_frame_equal(forecasts(config)[VALUES].reset_index(drop=True), before_rows)  # same rows, replaced
