"""Two consecutive dates, an older date rerun after a newer one, then a rollback through the DAG."""

from __future__ import annotations

import datetime as dt
import json
import time

import pandas as pd
import pytest
from conftest import RUN_DAY, slack_webhook_conn
from support.slack_standin import SlackStandIn
from support.stores import champions, forecasts, task_states, version_counts

from scripts.demo import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
NEWER = dt.date.fromisoformat(RUN_DAY)
OLDER = NEWER - dt.timedelta(days=1)


def test_dates_do_not_leak_or_demote_and_rollback_works(airflow_db, config_factory, monkeypatch):
    config = config_factory()
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        assert run_dag("sales_forecast", OLDER).state == "success"
        older = champions(config)
        assert run_dag("sales_forecast", NEWER).state == "success"
        newer = champions(config)
        # Each date trained on its own window: new data -> new versions, promoted for the newer date.
        assert all(int(newer[s]) > int(older[s]) for s in newer), (older, newer)
        assert forecasts(config, OLDER)["forecast_date"].min().date() == OLDER  # no leak from the future
        assert forecasts(config, NEWER)["forecast_date"].min().date() == NEWER

        # Rerun the older date (a backfill with reprocess): reuses its versions, never demotes.
        counts = version_counts(config)
        run = run_dag("sales_forecast", OLDER)
        assert run.state == "success", task_states(run)
        assert champions(config) == newer and version_counts(config) == counts

        published = forecasts(config, NEWER)
        before = len(slack.requests)
        started = time.monotonic()
        run = run_dag("rollback_champion", NEWER, {"series": "BLACK VELVET", "target": "previous", "reason": "test rollback"})
        elapsed = time.monotonic() - started
        assert run.state == "success", task_states(run)
        after = champions(config)
        assert after["BLACK VELVET"] == older["BLACK VELVET"]
        assert {s: v for s, v in after.items() if s != "BLACK VELVET"} == {s: v for s, v in newer.items() if s != "BLACK VELVET"}
        assert len(slack.requests) == before + 1 and "champion rollback" in slack.requests[-1].body["text"]
        # The warehouse shows what the registry serves: the newer date's rows of the rolled-back series were
        # republished by the restored version, from the same history window; the other series' rows were
        # not touched.
        republished = forecasts(config, NEWER)
        velvet = republished[republished.series_id == "BLACK VELVET"]
        assert set(velvet["model_version"]) == {older["BLACK VELVET"]} and len(velvet) == 7
        assert velvet["forecast_date"].min().date() == NEWER and set(velvet["as_of_date"]) == {pd.Timestamp(NEWER - dt.timedelta(days=1))}
        was = published[published.series_id == "BLACK VELVET"]
        assert set(was["model_version"]) == {newer["BLACK VELVET"]} and not (velvet["yhat"].to_numpy() == was["yhat"].to_numpy()).all()
        others = ["series_id", "forecast_date", "yhat", "model_version", "run_id"]
        pd.testing.assert_frame_equal(
            republished[republished.series_id != "BLACK VELVET"][others].reset_index(drop=True),
            published[published.series_id != "BLACK VELVET"][others].reset_index(drop=True),
        )
        assert f"republished with v{older['BLACK VELVET']} (were v{newer['BLACK VELVET']})" in json.dumps(slack.requests[-1].body)
        # `make models` shows how the alias moved, and the rolled-back version is withdrawn: a rerun of the
        # newer date keeps serving the older champion instead of falling back to it.
        from mlflow import MlflowClient

        from include.forecasting.registry import registry_overview

        [row] = [r for r in registry_overview(MlflowClient(tracking_uri=config.mlflow.tracking_uri), config.mlflow.model_prefix, "champion") if r["series_id"] == "BLACK VELVET"]
        assert row["moved"]["rolled_back_from"] == newer["BLACK VELVET"] and row["withdrawn"] == [newer["BLACK VELVET"]]
        assert run_dag("sales_forecast", NEWER).state == "success"
        assert champions(config)["BLACK VELVET"] == older["BLACK VELVET"]
        served = forecasts(config, NEWER)
        assert set(served[served.series_id == "BLACK VELVET"]["model_version"]) == {older["BLACK VELVET"]}
        print(f"rollback_champion run (parse + verify + notify): {elapsed:.1f}s")
        assert elapsed < 120
