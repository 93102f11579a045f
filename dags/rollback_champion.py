"""
### rollback_champion: move the MLflow `champion` alias back, by hand

Trigger from the UI with params (no default series: rolling back every series takes typing `all`):
- **series**: a series id (case and extra spaces do not matter; a miss lists the closest names), or `all`
- **target**: `previous` (the version the champion replaced), `last-passed` (newest other version that
  passed the gate: the emergency switch), or a version number (a newer one rolls forward)
- **reason**: recorded on the version with who and when

The version rolled back from is tagged `withdrawn`: no rerun, older date or backfill serves it again
unless it is explicitly rolled forward. Nothing to roll back to fails at once, without retries.

Each rolled-back version is verified by loading it from the registry and forecasting; the newest
published forecasts of each rolled-back series are then replaced by that version's forecast for the same
logical date (the warehouse shows what the registry serves); a Slack notice says what moved. The CLI
equivalent is `make rollback SERIES=... VERSION=...`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task
from forecast_ops.callbacks import dag_failure_callbacks, default_args_with_alerts

log = logging.getLogger(__name__)


@dag(
    dag_id="rollback_champion",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # One active run: a stuck one would hold back the next rollback. It fails (and alerts) instead.
    dagrun_timeout=timedelta(hours=1),
    description="Move the MLflow champion alias of one series (or all) back or forward, verified, with a reason.",
    params={
        # No default: rolling back every series must be typed, never one click away. (A Param with no
        # default at all fails Airflow's own param processing inside the task, so the default is null.)
        "series": Param(None, type=["null", "string"], minLength=1, title="Series", description="Series id as in `make models` (case-insensitive), or all for every series. Required."),
        "target": Param(
            "previous", type="string", pattern=r"^(previous|last-passed|[0-9]+)$", title="Target version",
            description="previous: the version the champion replaced; last-passed: newest other version that passed the gate; or a version number.",
        ),
        "reason": Param(None, type=["null", "string"], minLength=3, title="Reason", description="Why (recorded on the version with who and when, and sent to Slack). Required."),
    },
    default_args=default_args_with_alerts({"owner": "forecasting", "retries": 2, "retry_delay": timedelta(seconds=10)}),
    on_failure_callback=dag_failure_callbacks(),
    tags=["forecasting", "mlflow", "operations"],
    doc_md=__doc__,
)
def rollback_champion() -> None:
    """One task: roll back, verify, notify."""

    @task
    def roll_back() -> list[dict[str, Any]]:
        """Move the alias for the chosen series and verify each target by forecasting with it."""
        from forecast_ops.exceptions import load_task_config
        from forecast_ops.hooks.mlflow_registry import MlflowRegistryHook
        from forecast_ops.hooks.warehouse import republish_served
        from forecast_ops.notifiers.slack import run_info, send_payload

        from include.forecasting import alerts, registry

        context = get_current_context()
        params = context["params"]
        config = load_task_config()
        hook = MlflowRegistryHook(fallback_uri=config.mlflow.tracking_uri)
        rows = registry.registry_overview(hook.client, config.mlflow.model_prefix, config.mlflow.champion_alias)
        try:
            if not params.get("series") or not params.get("reason"):
                raise ValueError("give a series (or all) and a reason: nothing was rolled back")
            wanted = set(registry.match_series([r["series_id"] for r in rows], params["series"]))
            actor = f"airflow:{context['run_id']}"
            results = []
            for row in [r for r in rows if r["series_id"] in wanted]:
                result = registry.rollback(hook.client, row["model"], row["series_id"], config.mlflow.champion_alias, params["target"], actor, params["reason"])
                registry.verify_version(hook.tracking_uri, row["model"], result.version, config.forecast.horizon)
                results.append(result.to_dict())
        except (LookupError, ValueError) as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(exc)) from exc  # a retry cannot create a version to roll back to
        # The newest published rows of each rolled-back series are replaced by the restored version's
        # forecast: the warehouse shows what the registry serves. A failure here must not fail the task:
        # its retry would roll back once more ("previous" of the restored version). The notice says so,
        # and the next sales_forecast run publishes with the restored version anyway.
        try:
            republished = republish_served(config, [r["series_id"] for r in results], context["run_id"], hook.tracking_uri)
        except Exception as exc:  # noqa: BLE001 (any warehouse error: reported, never retried)
            log.exception("rollback done, republishing failed")
            republished = {r["series_id"]: {"logical_date": "the newest date", "from": None, "error": f"{type(exc).__name__}: {exc}"} for r in results}
        results = [{**r, "republished": republished.get(r["series_id"])} for r in results]
        send_payload(context, alerts.rollback_notice(run_info(context, config.alerts.airflow_base_url), results, actor, params["reason"]), config.alerts.channel)
        return results

    roll_back()


rollback_champion()
