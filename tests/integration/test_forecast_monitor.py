"""End to end: sales_forecast publishes, forecast_monitor scores the forecasts against the actuals that
arrived, reruns give the same rows, and a degraded series is refit at the next run with the reason on
the new version. Real Airflow (dag.test), DuckDB file, MLflow store; Slack to a stand-in on 127.0.0.1."""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd
import pytest
from conftest import RUN_DAY, slack_webhook_conn
from support.slack_standin import SlackStandIn

from include.forecasting import monitor_tables
from scripts.demo import run_dag

pytestmark = pytest.mark.e2e
DAY = dt.date.fromisoformat(RUN_DAY)


def _tables(config) -> dict[str, pd.DataFrame]:
    names = monitor_tables.table_names(config.warehouse)
    con = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        return {role: monitor_tables.read_table(con, table) for role, table in names.items()}
    finally:
        con.close()


def test_monitor_scores_reruns_identically_and_triggers_retraining(airflow_db, config_factory, monkeypatch):
    # A tight margin, so that real forecasts count as degraded: the retraining hook must fire.
    config = config_factory(**{"monitor": {"mase_margin": 0.0, "rmse_margin": None, "degradation_periods": 1, "min_scored": 3}})
    for day in (DAY - dt.timedelta(days=14), DAY - dt.timedelta(days=7)):
        assert run_dag("sales_forecast", day).state == "success"

    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        assert run_dag("forecast_monitor", DAY).state == "success"
        texts = slack.texts()
        monkeypatch.delenv("AIRFLOW_CONN_SLACK_DEFAULT")
    first = _tables(config)
    accuracy, health = first["accuracy"], first["health"]
    # 5 series x 2 publishing dates x 7 days, all arrived by DAY (data through DAY-1).
    assert len(accuracy) == 70 and accuracy["horizon"].between(1, 7).all()
    assert set(pd.to_datetime(accuracy["logical_date"]).dt.date) == {DAY - dt.timedelta(days=14), DAY - dt.timedelta(days=7)}
    assert health["scored_periods"].eq(14).all() and health["expected_mase"].notna().all()
    flagged = sorted(health.loc[health["degraded"] | health["drifted"], "series_id"])
    assert flagged, health[["series_id", "mase", "expected_mase", "naive_mase"]]

    # The daily report and the warning went to Slack with the numbers.
    assert any("accuracy degraded" in t and flagged[0] in t for t in texts)
    assert any("health" in t and "Realized MASE" in t for t in texts)
    assert (config.storage_root / "reports" / f"health_{DAY}.html").read_text().count("<svg") == 5

    # A rerun gives the same rows: keyed and replaced, never appended.
    assert run_dag("forecast_monitor", DAY).state == "success"
    again = _tables(config)
    for role in ("accuracy", "health", "actuals"):
        pd.testing.assert_frame_equal(
            first[role].sort_values(list(first[role].columns[:3])).reset_index(drop=True),
            again[role].sort_values(list(again[role].columns[:3])).reset_index(drop=True),
        )

    # The next sales_forecast run refits the flagged series and records why on the new version.
    run = run_dag("sales_forecast", DAY)
    assert run.state == "success"
    from mlflow import MlflowClient

    from include.forecasting import registry

    client = MlflowClient(config.mlflow.tracking_uri)
    for series_id in flagged:
        newest = max(client.search_model_versions(f"name='{registry.model_name(config.mlflow.model_prefix, series_id)}'"), key=lambda v: int(v.version))
        assert newest.tags.get("retrain_reason", "").startswith(f"monitor {DAY}"), (series_id, newest.tags)
    # Versions carry a signature (input: newer periods and the horizon; param: horizon; output: the
    # forecast frame with its intervals).
    import mlflow.models

    mlflow.set_tracking_uri(config.mlflow.tracking_uri)
    signature = mlflow.models.get_model_info(f"models:/{newest.name}/{newest.version}").signature
    assert signature.inputs.input_names() == ["date", "value", "horizon"] and "yhat_upper_95" in signature.outputs.input_names()
    assert [p.name for p in signature.params] == ["horizon"]

    # A model version deleted from the registry loses its expectation (warning), not the monitor run.
    client.delete_model_version("sales_forecast.black_velvet", "2")
    assert run_dag("forecast_monitor", DAY).state == "success"
    health = _tables(config)["health"].set_index("series_id")
    assert health.loc["BLACK VELVET", "model_version"] == "2" and pd.isna(health.loc["BLACK VELVET", "expected_mase"])
    assert health.loc["BLACK VELVET", "scored_periods"] == 14
