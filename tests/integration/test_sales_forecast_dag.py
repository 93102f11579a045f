"""End to end: the real sales_forecast DAG under dag.test() on a real Airflow DB, DuckDB file, MLflow
sqlite store and a Slack stand-in on 127.0.0.1 (real HTTP from the Slack provider's clients)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import RUN_DAY, SEED, slack_webhook_conn
from support.slack_standin import SlackStandIn
from support.stores import champions, forecasts, task_states, version_counts

from scripts.demo import run_dag

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]
DAY = dt.date.fromisoformat(RUN_DAY)
SERIES = 5
HORIZON = 7


def corrupt_seed(tmp_path: Path) -> Path:
    """The real panel with three realistic faults: a negative count, a duplicated row, a blank value."""
    frame = pd.read_csv(SEED, dtype=str)
    frame.loc[10, "total_amount_sold"] = "-40"
    frame.loc[20, "total_amount_sold"] = ""
    frame = pd.concat([frame, frame.iloc[[30]]], ignore_index=True)
    path = tmp_path / "corrupted.csv"
    frame.to_csv(path, index=False)
    return path


def test_run_rerun_and_corrupted_input(airflow_db, config_factory, tmp_path, monkeypatch):
    """Champions + forecasts for every series; a rerun changes nothing; bad data stops at validate."""
    config = config_factory()
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))

        # 1. First run: every series gets a champion and HORIZON forecast rows.
        run = run_dag("sales_forecast", DAY)
        assert run.state == "success", task_states(run)
        first_champions = champions(config)
        assert len(first_champions) == SERIES and all(first_champions.values())
        published = forecasts(config, DAY)
        assert len(published) == SERIES * HORIZON
        assert published.groupby("series_id")["model_version"].first().to_dict() == first_champions
        # Trained through the day before the logical date, forecasting from the logical date on.
        assert published["forecast_date"].min() == pd.Timestamp(DAY)
        assert set(published["as_of_date"]) == {pd.Timestamp(DAY - dt.timedelta(days=1))}
        assert (published["yhat_lower"] <= published["yhat"]).all() and (published["yhat"] <= published["yhat_upper"]).all()
        assert (published["yhat_lower_95"] <= published["yhat_lower"]).all()
        # One "champions updated" notice, nothing else.
        assert len(slack.requests) == 1 and "champions updated" in slack.texts()[0]

        # 2. Rerun of the same date: same data + config + code -> no refit, no new version, same rows.
        versions_before = version_counts(config)
        run = run_dag("sales_forecast", DAY)
        assert run.state == "success", task_states(run)
        assert version_counts(config) == versions_before
        assert champions(config) == first_champions
        again = forecasts(config, DAY)
        cols = ["series_id", "forecast_date", "yhat", "yhat_lower", "yhat_upper", "model_version"]
        pd.testing.assert_frame_equal(again[cols].reset_index(drop=True), published[cols].reset_index(drop=True))
        assert len(slack.requests) == 1  # nothing changed, nothing said

        # 3. Corrupted source: the run fails at validate_sales, training never starts, nothing changes.
        config_factory(seed=corrupt_seed(tmp_path))
        run = run_dag("sales_forecast", DAY)
        states = task_states(run)
        assert run.state == "failed"
        assert states["validate_sales"] == "failed"
        assert states["extract_sales"] == "success"
        assert all(s in ("upstream_failed", "skipped") for k, s in states.items() if k.startswith(("train_series", "promote", "publish")))
        assert champions(config) == first_champions
        assert version_counts(config) == versions_before
        pd.testing.assert_frame_equal(forecasts(config, DAY)[cols], published[cols])
        # Exactly one alert, naming the failed expectations with what was observed.
        assert len(slack.requests) == 2
        alert = slack.requests[1].body
        text = json.dumps(alert["blocks"])
        assert "data validation failed" in alert["text"]
        # (The duplicated source row is summed by the SQL's GROUP BY, so it is not a duplicate key.)
        for expectation in ("expect_column_values_to_be_between", "expect_column_values_to_not_be_null", "expect_column_values_to_be_in_type_list"):
            assert expectation in text
        assert "-40" in text  # the observed bad value
        assert "validate_sales" in text and "runs/" in text  # task and a log link


def test_gate_rejection_keeps_champions_and_warns_once(airflow_db, config_factory, monkeypatch):
    """An impossible gate rejects every candidate: no champion moves, one warning with the metrics."""
    config = config_factory(**{"gate.min_improvement_vs_naive": 0.9})
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", DAY)
    assert run.state == "success", task_states(run)  # a rejection is a decision, not a failure
    assert all(v is None for v in champions(config).values())
    assert forecasts(config, DAY).empty
    assert len(slack.requests) == 1
    body = slack.requests[0].body
    assert "quality gate rejected" in body["text"]
    text = json.dumps(body["blocks"])
    assert "5 series kept their champion" in text
    assert "does not beat seasonal naive" in text and "MASE" in text and "limit" in text


def test_mlflow_down_fails_fast_before_training_with_one_alert(airflow_db, config_factory, monkeypatch):
    """plan_series opens the tracking store before the fan-out: MLflow down stops the run there, once."""
    config = config_factory()
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 9}))
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", DAY)
    states = task_states(run)
    assert run.state == "failed"
    assert states["plan_series"] == "failed" and states["validate_sales"] == "success"
    assert not any(k.startswith("train_series[") for k in states)  # the fan-out never happened
    assert len(slack.requests) == 1, slack.texts()
    text = json.dumps(slack.requests[0].body)
    assert "plan_series" in text and "Try*\\n3 of 3" in text  # after its retries, once
    assert "MlflowException" in text or "ConnectionError" in text or "Connection refused" in text
    assert forecasts(config).empty and not champions(config)


def test_failed_mapped_task_gives_one_aggregated_alert(airflow_db, config_factory, tmp_path, monkeypatch):
    """Two products whose names map to the same registry name: the second one's training task fails
    after its retries; one aggregated message names the series and the cause; nothing is promoted."""
    frame = pd.read_csv(SEED, dtype=str)
    twin = frame[frame["item_name"] == "FIVE O'CLOCK VODKA"].assign(item_name="FIVE O CLOCK VODKA")
    seed = tmp_path / "twins.csv"
    pd.concat([frame, twin], ignore_index=True).to_csv(seed, index=False)
    config = config_factory(seed=seed)
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run = run_dag("sales_forecast", DAY)
    states = task_states(run)
    assert run.state == "failed"
    # Whichever twin registers first owns the name; the other one's task fails after its retries.
    failed = [k for k, s in states.items() if k.startswith("train_series") and s == "failed"]
    assert failed in (["train_series[2]"], ["train_series[3]"]), states
    assert states["alert_failed_series"] == "success"
    assert len(slack.requests) == 1, slack.texts()
    text = json.dumps(slack.requests[0].body["blocks"])
    assert "1 mapped task(s) failed" in text and "slug collision" in text
    assert "FIVE O CLOCK VODKA" in text or "FIVE O'CLOCK VODKA" in text
    assert forecasts(config).empty and all(v is None for v in champions(config).values())
