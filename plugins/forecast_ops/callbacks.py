"""Alert wiring shared by the DAGs: failure notifiers attached through default_args.

DAG-level on_failure_callback is unreliable in Airflow 3.1-3.2 (apache/airflow#63374), so every task
carries the notifier; the DAG-level one only reports run-level reasons (timeouts, deadlocks).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from airflow.sdk import DeadlineAlert, DeadlineReference, SyncCallback

from forecast_ops.notifiers.slack import ForecastAlertNotifier, dag_failure_callback


def default_args_with_alerts(base: dict[str, Any]) -> dict[str, Any]:
    """Return `base` plus the task-level Slack failure notifier."""
    return {**base, "on_failure_callback": [ForecastAlertNotifier()]}


def dag_failure_callbacks() -> list[Any]:
    """DAG-level failure callbacks (run-level reasons only)."""
    return [dag_failure_callback]


# The variable that turns the run deadline on (minutes; unset, empty or 0: off). The services' environment
# sets it (`make airflow` and docker-compose.yml: 60). Off by default because Airflow 3.3's dag.test()
# (also `airflow dags test`, `make demo`, the end-to-end tests) crashes at the end of a successful run of a
# DAG with a deadline alert: its DAG, rebuilt from serialized form, lists the alerts as dicts where the
# success path expects their ids ("'dict' object has no attribute 'hex'").
DEADLINE_ENV = "FORECAST_RUN_DEADLINE_MINUTES"


def run_deadline(timeout: timedelta) -> DeadlineAlert | None:
    """With FORECAST_RUN_DEADLINE_MINUTES set (the services' environment: 60), a run still unfinished that
    many minutes after it was queued posts one "run is late" message (`notifiers.slack.late_run_callback`),
    well before `timeout` (the DAG's dagrun_timeout) fails it: a stuck or slow task is seen while the day's
    forecasts can still be published. A SyncCallback runs in the executor (LocalExecutor, CeleryExecutor),
    which reads the Slack connection like a task does; no triggerer needed. None (no deadline) when unset."""
    raw = os.environ.get(DEADLINE_ENV) or "0"
    try:
        minutes = float(raw)
    except ValueError:
        raise ValueError(f"{DEADLINE_ENV}={raw!r}: minutes as a number (60, 0.5), or 0 / unset for no run deadline") from None
    if minutes <= 0:
        return None
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=minutes),
        callback=SyncCallback(
            "forecast_ops.notifiers.slack.late_run_callback",
            kwargs={"limit_minutes": minutes, "timeout_minutes": timeout.total_seconds() / 60},
        ),
        name="sales_forecast run late",
    )
