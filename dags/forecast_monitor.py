"""
### forecast_monitor: how the published forecasts are doing

Runs when `sales_forecast` publishes (the `published_forecasts` asset) and daily at 06:00 UTC, for the
monitor date D (the published run's logical date, else the run's logical date): actuals through D-1.

1. **assess_forecasts**: joins the forecasts published in the last `monitor.lookback_days` with the actuals
   that have arrived, into `forecast_accuracy` (one row per series, logical date and forecast date:
   yhat, interval, actual, model version). Per series: rolling realized MASE / RMSE / MAPE / bias /
   coverage vs the backtest recorded on the model version and vs seasonal naive (degradation), and a KS
   test of the recent periods against the training window (drift), into `forecast_health`. Rows are
   replaced by key: reruns and backfills give the same rows.
2. **warn_flagged**: one Slack warning listing degraded / drifted series with the numbers. Those series
   are refit at the next `sales_forecast` run even if their data is unchanged (task `retrain_requests`),
   with the reason recorded on the new model version.
3. **health_report**: the daily Block Kit message (runs ok / failed, series published / quarantined /
   fallback, worst series, drift flags, links), sent by the scheduled (and manual) runs only, so a day
   gets one; every run writes the HTML report with a chart per series.

The Forecasts page (Airflow UI navigation, "Forecasts") shows the same tables. Thresholds: config section
`monitor` (README "Monitoring").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task
from forecast_ops.assets import PUBLISHED_FORECASTS
from forecast_ops.callbacks import dag_failure_callbacks, default_args_with_alerts


def _monitor_date(context: Any) -> Any:
    """The date a monitor run is about: the published run's logical date when an asset event triggered
    it, else the run's logical date (scheduled, manual, backfill), else when it was asked to run."""
    import datetime as dt

    events = context.get("triggering_asset_events") or {}
    dates = [
        event.extra["logical_date"]
        for asset_events in events.values()
        for event in asset_events
        if (getattr(event, "extra", None) or {}).get("logical_date")
    ]
    if dates:
        return dt.date.fromisoformat(max(dates))
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.date()


@dag(
    dag_id="forecast_monitor",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 6 * * *", timezone="UTC"), assets=PUBLISHED_FORECASTS),
    start_date=pendulum.datetime(1970, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # the tables are replaced by key; one writer at a time keeps the DuckDB file free
    # With one active run, a stuck run would hold back every later one: it fails (and alerts) instead.
    dagrun_timeout=timedelta(hours=1),
    default_args=default_args_with_alerts({"owner": "forecasting", "retries": 2}),
    on_failure_callback=dag_failure_callbacks(),
    tags=["forecasting", "monitoring"],
    description="Realized accuracy of published forecasts, degradation and drift alerts, daily health report",
    doc_md=__doc__,
)
def forecast_monitor() -> None:
    """Wire assess -> warn -> report."""

    @task
    def assess_forecasts() -> dict[str, Any]:
        """Score forecasts against actuals; write forecast_accuracy, forecast_health, forecast_actuals."""
        import datetime as dt

        from forecast_ops.exceptions import load_task_config
        from forecast_ops.hooks.mlflow_registry import MlflowRegistryHook
        from forecast_ops.hooks.warehouse import extract_daily_sales, read_forecasts_between, replace_monitor_rows

        from include.forecasting.extract import history_window
        from include.forecasting.monitor_pipeline import assess, flagged, history_cadence, lookback, write_report

        config = load_task_config()
        monitor_date: dt.date = _monitor_date(get_current_context())
        history = extract_daily_sales(config, history_window(monitor_date, config.forecast.history_days))
        cadence = history_cadence(config, history)
        forecasts = read_forecasts_between(config, *lookback(config, monitor_date, cadence))
        backtest_of = MlflowRegistryHook(fallback_uri=config.mlflow.tracking_uri).recorded_backtest
        result = assess(config, forecasts, history, monitor_date, backtest_of, cadence)
        written = {role: replace_monitor_rows(config, role, rows) for role, rows in (("accuracy", result.accuracy), ("actuals", result.actuals), ("health", result.health))}
        report = write_report(config.storage_root / "reports" / f"health_{monitor_date.isoformat()}.html", monitor_date, result, forecasts)
        return {
            "monitor_date": monitor_date.isoformat(),
            "cadence": result.cadence,
            "rows": written,
            "summary": result.summary,
            "flagged": flagged(result.health, config.monitor.retrain_on),
            "report": str(report),
        }

    @task
    def warn_flagged(assessed: dict[str, Any]) -> str:
        """One Slack warning with the numbers for every degraded or drifted series (none: no message)."""
        from forecast_ops.exceptions import load_task_config
        from forecast_ops.notifiers.slack import run_info, send_payload

        from include.forecasting import alerts

        if not assessed["flagged"]:
            return "nothing flagged"
        config = load_task_config()
        context = get_current_context()
        info = run_info(context, config.alerts.airflow_base_url)
        return send_payload(context, alerts.monitor_warning(info, assessed["flagged"], f"{config.alerts.airflow_base_url}/forecasts/"), config.alerts.channel)

    @task
    def health_report(assessed: dict[str, Any]) -> dict[str, Any]:
        """The daily health message (Block Kit) with the runs of the day and a link to the HTML report."""
        import datetime as dt

        from forecast_ops.exceptions import load_task_config
        from forecast_ops.notifiers.slack import run_info, send_payload

        from include.forecasting import alerts
        from include.forecasting.monitor_pipeline import run_outcomes

        config = load_task_config()
        context = get_current_context()
        runs = run_outcomes(config.storage_root / "runs", dt.date.fromisoformat(assessed["monitor_date"]))
        run_type = context["dag_run"].run_type
        if getattr(run_type, "value", run_type) == "asset_triggered":
            # One message a day: the 06:00 run sends it. Runs on each publish score, warn and write the
            # HTML report, but do not repeat the daily message.
            return {"sent": "not sent: asset-triggered run (the daily 06:00 run reports)", "runs": runs}
        info = run_info(context, config.alerts.airflow_base_url)
        payload = alerts.health_report(info, assessed["summary"], runs, f"{config.alerts.airflow_base_url}/forecasts/", assessed["report"])
        return {"sent": send_payload(context, payload, config.alerts.channel), "runs": runs}

    assessed = assess_forecasts()
    warn_flagged(assessed)
    health_report(assessed)


forecast_monitor()
