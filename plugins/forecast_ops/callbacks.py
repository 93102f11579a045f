"""Alert wiring shared by the DAGs: failure notifiers attached through default_args.

DAG-level on_failure_callback is unreliable in Airflow 3.1-3.2 (apache/airflow#63374), so every task
carries the notifier; the DAG-level one only reports run-level reasons (timeouts, deadlocks).
"""

from __future__ import annotations

from typing import Any

from forecast_ops.notifiers.slack import ForecastAlertNotifier, dag_failure_callback


def default_args_with_alerts(base: dict[str, Any]) -> dict[str, Any]:
    """Return `base` plus the task-level Slack failure notifier."""
    return {**base, "on_failure_callback": [ForecastAlertNotifier()]}


def dag_failure_callbacks() -> list[Any]:
    """DAG-level failure callbacks (run-level reasons only)."""
    return [dag_failure_callback]
