"""Slack transport through the provider's notifiers against a real HTTP stand-in on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from conftest import slack_api_conn, slack_webhook_conn
from forecast_ops.notifiers.slack import TIMEOUT_S, send_payload
from support.slack_standin import SlackStandIn

PAYLOAD = {"text": "hello", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}]}


@pytest.fixture(autouse=True)
def no_slack_connections(monkeypatch, airflow_db):
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SLACK_API_DEFAULT", raising=False)


def test_webhook_sends_blocks(monkeypatch):
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        assert send_payload({}, PAYLOAD) == "webhook"
    assert len(slack.requests) == 1
    assert slack.requests[0].path == "/services/T000/B000/XXXX"
    assert slack.requests[0].body["blocks"] == PAYLOAD["blocks"] and slack.requests[0].body["text"] == "hello"


def test_web_api_posts_to_the_channel(monkeypatch):
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", slack_api_conn(slack.api_base_url))
        assert send_payload({}, PAYLOAD, "#forecasts") == "web_api"
    assert slack.requests[0].path == "/api/chat.postMessage"
    assert slack.requests[0].body["channel"] == "#forecasts"
    assert slack.requests[0].headers.get("Authorization") == "Bearer xoxb-test-token"


def test_no_connection_only_logs(caplog):
    assert send_payload({}, PAYLOAD) == "log"
    assert "SLACK NOT CONFIGURED" in caplog.text


@pytest.mark.parametrize("mode", ["error", "slow", "down"])
def test_slack_failures_never_raise_or_hang(monkeypatch, caplog, mode):
    slack = SlackStandIn(mode=mode, delay=TIMEOUT_S + 5)
    if mode != "down":
        slack.__enter__()
    try:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        started = time.monotonic()
        assert send_payload({}, PAYLOAD) == "error"
        assert time.monotonic() - started < TIMEOUT_S + 4
    finally:
        if mode != "down":
            slack.__exit__(None, None, None)
        else:
            slack.server.server_close()
    assert "Slack alert FAILED" in caplog.text
    assert len(slack.requests) == (0 if mode == "down" else 1)  # one attempt, no retry storm


def test_a_message_that_cannot_be_built_is_logged_not_raised(monkeypatch, caplog):
    """The report must not fail the task that reports: a decision the gate warning cannot format (here a
    decision without its reasons) is logged with its traceback, nothing is sent, and the caller goes on."""
    from types import SimpleNamespace

    from forecast_ops.notifiers.slack import send_gate_warning

    config = SimpleNamespace(alerts=SimpleNamespace(airflow_base_url="http://127.0.0.1:8080", channel="#forecasts"))
    odd = {"series_id": "A", "passed": False, "thresholds": {"naive_mase_limit": "n/a"}, "champion_version": None}
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        assert send_gate_warning({}, [odd], config) == "error"
        assert send_gate_warning({}, [{**odd, "reasons": ["MASE undefined"]}], config) == "webhook"  # "n/a" shows as "-"
    assert "could not build the gate warning message" in caplog.text and len(slack.requests) == 1


def test_late_run_callback_posts_once_for_a_running_run_and_never_raises(monkeypatch, caplog):
    from forecast_ops.notifiers.slack import late_run_callback

    run = {"dag_id": "sales_forecast", "dag_run_id": "manual__2025-05-31", "logical_date": "2025-05-31T00:00:00Z", "queued_at": "2025-05-31T00:00:01Z", "state": "running", "run_type": "manual"}
    with SlackStandIn() as slack:
        monkeypatch.setenv("AIRFLOW_CONN_SLACK_DEFAULT", slack_webhook_conn(slack.webhook_url))
        late_run_callback({"dag_run": run, "deadline": {"id": "d1", "deadline_time": "2025-05-31T01:00:01Z"}}, limit_minutes=60, timeout_minutes=120)
        late_run_callback({"dag_run": {**run, "state": "failed"}, "deadline": {}}, limit_minutes=60)
        late_run_callback({}, limit_minutes=60)  # nothing usable: logged, not raised
    assert len(slack.requests) == 1
    assert "run is late: sales_forecast (2025-05-31)" in slack.requests[0].body["text"]
    assert "now failed: no late-run alert" in caplog.text
