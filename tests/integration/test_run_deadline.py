"""The run deadline (`forecast_ops.callbacks.run_deadline`) through the real scheduler and LocalExecutor
(api-server, dag-processor on 127.0.0.1; SQLite metadata; DuckDB; MLflow sqlite) and real HTTP to a Slack
stand-in: a run still going when its deadline passes posts one "run is late" message and goes on to
publish; a run that failed before its deadline posts its failure, never a late message.

The deadline is shortened to 30 s (FORECAST_RUN_DEADLINE_MINUTES) so that a normal run misses it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from conftest import load_seeded, slack_webhook_conn, write_config
from support.slack_standin import SlackStandIn
from support.stores import champions, forecasts

from scripts.airflow_stack import AirflowStack, Processes, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
DEADLINE_S = 30


def _texts(slack: SlackStandIn) -> list[str]:
    return [str(r.body.get("text", "")) for r in slack.requests]


def test_a_run_past_its_deadline_posts_one_late_message_and_still_publishes(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    config = load_seeded(config_path)
    procs = Processes(tmp_path / "logs")
    with SlackStandIn() as slack:
        airflow = AirflowStack.embedded(
            tmp_path / "airflow", config_path, procs, parallelism=4, FORECAST_RETRY_DELAY_S="1",
            FORECAST_RUN_DEADLINE_MINUTES=str(DEADLINE_S / 60), AIRFLOW_CONN_SLACK_DEFAULT=slack_webhook_conn(slack.webhook_url),
        )
        try:
            airflow.start({"training": 2})
            # Unpausing also creates the scheduled run for today, which fails validation as stale (the shipped
            # panel ends 2025-05-30): the run that ends before its deadline.
            airflow.wait_for_dag("sales_forecast")
            run_id = airflow.trigger("sales_forecast", "2025-05-31")
            run = airflow.wait_for_run("sales_forecast", run_id, 600)
            # What the UI's run page shows: the run's deadline, missed (the UI's own endpoint).
            shown = airflow.api("GET", f"/ui/dags/sales_forecast/dagRuns/{quote(run_id, safe='')}/deadlines")["deadlines"]
            scheduled = wait_for(lambda: [r for r in airflow.runs("sales_forecast") if r["run_type"] == "scheduled" and r["state"] == "failed"] or None, 300, "the stale scheduled run to fail")[0]
            # Past the scheduled run's deadline, plus a few scheduler loops for any callback to arrive.
            deadline = pd.Timestamp(scheduled["queued_at"]) + pd.Timedelta(seconds=DEADLINE_S)
            wait_for(lambda: pd.Timestamp.now(tz="UTC") > deadline + pd.Timedelta(seconds=20), 120, "the scheduled run's deadline to pass")
        except BaseException:
            for name in ("scheduler", "api-server", "dag-processor"):
                print(f"--- {name} log ---\n{procs.tail(name, 80)}")
            raise
        finally:
            procs.stop()

    # The manual run missed its deadline (a run takes longer than 30 s) and went on to publish every series.
    assert run["state"] == "success", run
    assert pd.Timestamp(run["end_date"]) > pd.Timestamp(run["queued_at"]) + pd.Timedelta(seconds=DEADLINE_S)
    assert [(d["alert_name"], d["missed"]) for d in shown] == [("sales_forecast run late", True)], shown
    assert pd.Timestamp(shown[0]["deadline_time"]) - pd.Timestamp(run["queued_at"]) == pd.Timedelta(seconds=DEADLINE_S)
    assert len(champions(config)) == 5
    assert forecasts(config, "2025-05-31")["series_id"].nunique() == 5
    late = [r for r in slack.requests if "run is late: sales_forecast (2025-05-31)" in str(r.body.get("text", ""))]
    assert len(late) == 1, _texts(slack)
    text = str(late[0].body["text"])
    assert "sales_forecast (2025-05-31)" in text and "manual run" in text, text
    assert "Still running 0.5 min after it was queued" in text.replace("*", ""), text
    assert "120-minute timeout" in text, text
    button = late[0].body["blocks"][-1]["elements"][0]
    assert button["text"]["text"] == "Open run"
    assert button["url"].endswith(f"/dags/sales_forecast/runs/{quote(run_id, safe='')}"), button
    # The stale scheduled run failed within its deadline: its failure was posted, and no late message.
    if pd.Timestamp(scheduled["end_date"]) < pd.Timestamp(scheduled["queued_at"]) + pd.Timedelta(seconds=DEADLINE_S):
        assert not [t for t in _texts(slack) if f"run is late: sales_forecast ({scheduled['logical_date'][:10]})" in t], _texts(slack)
    assert any("data validation failed" in t for t in _texts(slack)), _texts(slack)
