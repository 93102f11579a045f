"""Alert semantics under a real Airflow run: final failure only, and Slack trouble never changes the run.

A tiny probe DAG (written to a temporary dags folder) uses the project's own failure wiring
(`default_args_with_alerts`), so what is tested is the callback path Airflow really takes.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from conftest import slack_webhook_conn
from support.slack_standin import SlackStandIn

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PROBE = '''
from __future__ import annotations
import os
from datetime import timedelta
import pendulum
from airflow.sdk import dag, task
from forecast_ops.callbacks import default_args_with_alerts

@dag(schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, tags=["probe"],
     default_args=default_args_with_alerts({"retries": 2, "retry_delay": timedelta(seconds=1)}))
def alert_probe():
    @task
    def flaky() -> str:
        from airflow.sdk.log import mask_secret

        mask_secret(os.environ["PROBE_SECRET"])  # as a connection password or Variable would be
        marker = os.environ["PROBE_MARKER"]
        attempts = int(open(marker).read() or 0) if os.path.exists(marker) else 0
        open(marker, "w").write(str(attempts + 1))
        if attempts < int(os.environ["PROBE_FAILURES"]):
            raise RuntimeError(f"transient failure {attempts + 1} token=" + os.environ["PROBE_SECRET"])
        return "ok"
    flaky()

alert_probe()
'''


def run_probe(tmp_path, monkeypatch, failures: int):
    from airflow.dag_processing.dagbag import DagBag

    folder = tmp_path / "dags"
    folder.mkdir(exist_ok=True)
    (folder / "alert_probe.py").write_text(PROBE)
    import airflow.settings

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(folder))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(folder))
    monkeypatch.setenv("PROBE_MARKER", str(tmp_path / f"attempts-{failures}"))
    monkeypatch.setenv("PROBE_FAILURES", str(failures))
    monkeypatch.setenv("PROBE_SECRET", "s3cr3t-probe-value")
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, bag.import_errors
    run = bag.get_dag("alert_probe").test(logical_date=dt.datetime(2025, 5, 31, tzinfo=dt.UTC))
    attempts = int((tmp_path / f"attempts-{failures}").read_text())
    return run, attempts


def test_success_on_retry_sends_nothing(airflow_db, tmp_path, monkeypatch):
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run, attempts = run_probe(tmp_path, monkeypatch, failures=1)
    assert run.state == "success" and attempts == 2
    assert slack.requests == []


def test_exhausted_retries_send_exactly_one_message(airflow_db, tmp_path, monkeypatch):
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        run, attempts = run_probe(tmp_path, monkeypatch, failures=99)
    assert run.state == "failed" and attempts == 3
    assert len(slack.requests) == 1
    text = json.dumps(slack.requests[0].body["blocks"])
    assert "RuntimeError: transient failure 3" in text and "Try*\\n3 of 3" in text
    assert "alert_probe" in text and "flaky" in text
    assert "s3cr3t-probe-value" not in json.dumps(slack.requests[0].body) and "token=***" in text


@pytest.mark.parametrize("mode", ["error", "slow", "down"])
def test_slack_trouble_leaves_the_run_state_alone(airflow_db, tmp_path, monkeypatch, mode):
    slack = SlackStandIn(mode=mode, delay=15)
    if mode != "down":
        slack.__enter__()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        started = time.monotonic()
        run, attempts = run_probe(tmp_path, monkeypatch, failures=99)
        elapsed = time.monotonic() - started
    finally:
        if mode != "down":
            slack.__exit__(None, None, None)
        else:
            slack.server.server_close()
    assert run.state == "failed" and attempts == 3  # the task's own failure is recorded as usual
    assert elapsed < 60  # nothing hangs on a dead or slow Slack
    assert len(slack.requests) == (0 if mode == "down" else 1)
