"""
### sales_forecast: daily retraining of per-product sales forecasts

The run for logical date D (scheduled at D 03:00 UTC) trains on sales dated before D, i.e. through D-1
("as of" D-1), forecasts the next periods (days, or weeks / months for a weekly / monthly panel, dated
on the data's own weekday or month day) and publishes under the key D. The timetable is a plain trigger
(CronTriggerTimetable, no interval): scheduled runs, manual runs, `dag.test()` and backfills all have
logical date = data_interval_end for the same D, so a rerun of D always sees the same data and never
anything at or after `data_interval_end`.

1. **extract_sales**: `include/sql/daily_sales.sql` on DuckDB (default) or BigQuery, bound parameters;
   writes a content-addressed snapshot and passes its path + hash downstream.
2. **validate_sales**: detects the cadence; Great Expectations suites in `include/expectations/`. A row
   rule failure stops the run (no retry) naming rule, config key, series and date, except bad rows (a
   negative or empty value, ...) in a few series, which quarantine those series; a series failing a
   per-series rule (too little history, a hole in the data) is quarantined, not the run.
3. **train_series** (mapped, one task per series chunk): SARIMA on log sales with guarded order
   selection; each fit is an MLflow run and a registered version (reused if data/config/code unchanged).
4. **evaluate_series** (mapped): rolling-origin backtest of candidate, seasonal naive and champion.
5. **gate_models**: per series, must beat seasonal naive and not degrade vs the champion.
6. **promote_champion**: moves the MLflow alias `champion` to passing versions (atomic per series).
7. **publish_forecasts**: champion forecasts into the warehouse table, replaced by (series, logical date);
   a series with no champion yet gets a flagged seasonal-naive fallback (`model_version` says so).
8. **report_series**: one report and one Slack message for every quarantined series, failed mapped task and
   spike newly left out of training, after every mapped try is final. **all_series_published** is *skipped* when anything was quarantined:
   a green run with that task skipped is a *partial* run (see README "Partial runs").

With FORECAST_RUN_DEADLINE_MINUTES set (`make airflow`, compose: 60), a run still queued or running that long
after it was queued posts one "run is late" Slack message (deadline alert; README "Slack alerts").

Config: `include/config/forecast.yaml` (or `$FORECAST_CONFIG`). Runbook: `docs/RUNBOOK.md`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, get_current_context, task
from forecast_ops.assets import PUBLISHED_FORECASTS
from forecast_ops.callbacks import dag_failure_callbacks, default_args_with_alerts, run_deadline
from forecast_ops.operators.promote import PromoteChampionOperator


def _config() -> Any:
    """Load the validated config inside a task (never at parse time); invalid fails at once."""
    from forecast_ops.exceptions import load_task_config

    return load_task_config()


def _run_date(context: Any) -> Any:
    """The one date a run is about (every task uses it): its logical date; for a run created without one
    (Airflow 3 allows it for manual and asset-triggered runs), the moment it was asked to run. Data is
    taken strictly before this date and forecasts start on it."""
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.date()


# The same rule for templated operator arguments.
RUN_DATE_TEMPLATE = "{{ (logical_date or dag_run.run_after).strftime('%Y-%m-%d') }}"
RUN_TIMEOUT = timedelta(hours=2)


def _tracking_uri(config: Any) -> str:
    """MLflow tracking URI: the `mlflow_default` connection if it exists, else the config's store."""
    from forecast_ops.hooks.mlflow_registry import MlflowRegistryHook

    return MlflowRegistryHook(fallback_uri=config.mlflow.tracking_uri).tracking_uri


@dag(
    dag_id="sales_forecast",
    # Daily at 03:00 UTC, after Iowa's business day. No `interval`: with one, scheduled and backfill runs
    # get logical date = interval start (D-1) while manual runs get D, so one day's forecasts would be
    # published under two different keys depending on how the run was started.
    schedule=CronTriggerTimetable("0 3 * * *", timezone="UTC"),
    # Early enough for any history a user brings: a run for a logical date before start_date would run no task.
    start_date=pendulum.datetime(1970, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    max_active_tasks=8,
    dagrun_timeout=RUN_TIMEOUT,
    # With FORECAST_RUN_DEADLINE_MINUTES set (`make airflow`, compose: 60), a run still unfinished that long
    # after it was queued posts "run is late" to Slack (README "Slack alerts").
    deadline=run_deadline(RUN_TIMEOUT),
    default_args=default_args_with_alerts(
        {
            "owner": "forecasting",
            "retries": 2,
            # Doubled per try up to max_retry_delay. Tests set FORECAST_RETRY_DELAY_S=1.
            "retry_delay": timedelta(seconds=int(os.environ.get("FORECAST_RETRY_DELAY_S", "30"))),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=10),
        }
    ),
    on_failure_callback=dag_failure_callbacks(),
    tags=["forecasting", "mlflow", "sales"],
    description="Daily: extract sales, validate, train one SARIMA per series, gate, promote champions, publish forecasts",
    doc_md=__doc__,
    # Defaults are what a scheduled run uses; an operator can narrow or force a manual run from the
    # Trigger form. Logical date: the day after the newest data (README "Trigger from the UI").
    params={
        "series": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Series to retrain",
            description_md=(
                "**Logical date (above)**: the day *after* the newest sales you want used: the run trains on data "
                "before it and forecasts from it. With the shipped demo data (ends 2025-05-30) pick **2025-05-31** "
                "or earlier: the default (now) fails validation as stale. `make airflow` prints the date for your data.\n\n"
                "**Series to retrain**: only these series (names as in `make models`, case-insensitive), one per line. "
                "Empty: every series. Series not listed keep their champion and are published with it."
            ),
        ),
        "force_retrain": Param(
            False,
            type="boolean",
            title="Force retraining",
            description="Refit even when data, config and code are unchanged (the reason is recorded on each new version).",
        ),
    },
)
def sales_forecast() -> None:
    """Wire extract -> validate -> train (mapped) -> evaluate (mapped) -> gate -> promote -> publish."""

    @task
    def extract_sales() -> dict[str, Any]:
        """Extract the history window ending at the run date (exclusive) into a content-addressed snapshot."""
        from forecast_ops.hooks.warehouse import extract_daily_sales, source_checks

        from include.forecasting.extract import history_window, write_snapshot

        config = _config()
        window = history_window(_run_date(get_current_context()), config.forecast.history_days)
        frame = extract_daily_sales(config, window)
        duplicates, volume = source_checks(config, window)  # on the raw rows, before the SQL's SUM hides them
        return write_snapshot(frame, config.storage_root, window, config.run_sha256, duplicates, volume).to_dict()

    @task(retries=0)
    def validate_sales(snapshot: dict[str, Any]) -> dict[str, Any]:
        """Run the GX suites; on failure push the report and fail without retry."""
        from forecast_ops.exceptions import ValidationFailedException

        from include.forecasting.extract import SnapshotRef
        from include.forecasting.pipeline import validate_snapshot
        from include.forecasting.validation import DataValidationError

        try:
            checked, report = validate_snapshot(_config(), SnapshotRef.from_dict(snapshot))
        except DataValidationError as exc:
            summary = exc.report.to_dict()
            get_current_context()["ti"].xcom_push(key="validation_report", value=summary)
            raise ValidationFailedException(str(exc), summary) from exc
        get_current_context()["ti"].xcom_push(key="validation_report", value=report)
        return checked.to_dict()

    @task
    def plan_series(snapshot: dict[str, Any]) -> list[list[str]]:
        """Group the series into chunks (one mapped training task each); create the MLflow experiment once."""
        from airflow.sdk.exceptions import AirflowFailException

        from include.forecasting.extract import SnapshotRef
        from include.forecasting.pipeline import plan_chunks, prepare_tracking

        config = _config()
        # Here, before the fan-out: concurrent first writers would race to create a fresh store's schema.
        prepare_tracking(config, _tracking_uri(config))
        try:
            chunks = plan_chunks(config, SnapshotRef.from_dict(snapshot), get_current_context()["params"].get("series") or None)
        except LookupError as exc:  # a mistyped series name in the Trigger form: retrying cannot help
            raise AirflowFailException(str(exc)) from exc
        # Nothing to train (a panel of young series only): one empty chunk, because a mapping over no
        # chunks would skip gate, promote and publish, and the young series' fallbacks with them.
        return chunks or [[]]

    @task
    def retrain_requests(chunks: list[list[str]]) -> dict[str, str]:
        """Series to refit even if their data key is unchanged, with the reason: flagged by
        forecast_monitor (degraded / drifted while still champion) or forced from the Trigger form."""
        from forecast_ops.hooks.mlflow_registry import MlflowRegistryHook
        from forecast_ops.hooks.warehouse import read_monitor_table

        from include.forecasting import monitoring, registry

        config = _config()
        context = get_current_context()
        wanted = [s for chunk in chunks for s in chunk]
        if context["params"].get("force_retrain"):
            return {s: f"forced from the trigger form of {context['run_id']}" for s in wanted}
        if not config.monitor.retrain_on:
            return {}
        health = read_monitor_table(config, "health", "WHERE monitor_date <= $d", {"d": _run_date(context)})
        hook = MlflowRegistryHook(fallback_uri=config.mlflow.tracking_uri)  # its client opens on first use only

        def champion_of(series_id: str) -> str | None:
            name = registry.model_name(config.mlflow.model_prefix, series_id)
            version = registry.get_alias_version(hook.client, name, config.mlflow.champion_alias)
            return str(version.version) if version is not None else None

        return monitoring.flagged_for_retraining(health, wanted, config.monitor.retrain_on, champion_of)

    @task(pool="training", map_index_template="{{ (task.op_kwargs['series_ids'] | join(', ') | truncate(60)) or 'nothing to train' }}")
    def train_series(snapshot: dict[str, Any], requests: dict[str, str], series_ids: list[str]) -> list[dict[str, Any]]:
        """Fit (or reuse) one candidate model per series of the chunk (refit those in `requests`)."""

        from include.forecasting.extract import SnapshotRef
        from include.forecasting.pipeline import train_chunk

        config = _config()
        context = get_current_context()
        uri = _tracking_uri(config)
        run_date = _run_date(context).isoformat()
        return train_chunk(config, SnapshotRef.from_dict(snapshot), series_ids, run_date, context["run_id"], uri, retrain=requests)

    @task(pool="training")
    def evaluate_series(snapshot: dict[str, Any], trained: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Backtest candidate, seasonal naive and champion on the same folds."""

        from include.forecasting.extract import SnapshotRef
        from include.forecasting.pipeline import evaluate_chunk

        config = _config()
        uri = _tracking_uri(config)
        return evaluate_chunk(config, SnapshotRef.from_dict(snapshot), trained, uri)

    @task
    def gate_models(evaluated: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """Decide per series; rejected series keep their champion (a warning, not a failure)."""
        from forecast_ops.notifiers.slack import send_gate_warning

        from include.forecasting.pipeline import gate_all, save_json

        config = _config()
        context = get_current_context()
        uri = _tracking_uri(config)
        # Index by position (the count is known): iterating the mapped XCom probes one past the end and
        # the SDK logs that 404 as an ERROR line in a task that succeeds.
        chunks = [evaluated[i] for i in range(len(evaluated))]
        decisions = gate_all(config, [item for chunk in chunks for item in chunk], uri)
        save_json(config, "gate", context["run_id"].replace(":", "_"), decisions)
        if any(not d["passed"] for d in decisions):
            send_gate_warning(context, decisions, config)
        return decisions

    @task(outlets=[PUBLISHED_FORECASTS])
    def publish_forecasts(snapshot: dict[str, Any], promotions: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> dict[str, Any]:
        """Forecast with each series' champion (or a flagged fallback) and replace this logical date's rows."""
        from forecast_ops.hooks.warehouse import publish_forecasts as write
        from forecast_ops.notifiers.slack import send_champion_change

        from include.forecasting.extract import SnapshotRef
        from include.forecasting.pipeline import champion_forecasts, decision_errors

        config = _config()
        context = get_current_context()
        uri = _tracking_uri(config)
        logical = _run_date(context)
        ref = SnapshotRef.from_dict(snapshot)
        rows, outcomes = champion_forecasts(config, ref, logical, context["run_id"], uri, decision_errors(decisions))
        try:
            written = write(config, rows, logical)
        except Exception as exc:
            ti = context["ti"]
            if ti.try_number <= ti.max_tries:
                raise  # a retry may still publish: the new champions stay
            # Final try: move this run's champions back so the registry and the warehouse agree again.
            from forecast_ops.exceptions import PublishRevertedException
            from forecast_ops.hooks.mlflow_registry import MlflowRegistryHook

            from include.forecasting.registry import revert_promotions

            client = MlflowRegistryHook(fallback_uri=config.mlflow.tracking_uri).client
            reverted = revert_promotions(client, config.mlflow.champion_alias, promotions, f"publishing failed in {context['run_id']}")
            moved = ", ".join(f"{r['series_id']} v{r['from']}->v{r['to'] or '-'}" for r in reverted) or "none had moved"
            raise PublishRevertedException(
                f"publishing failed; champions moved back so the registry matches the unchanged warehouse: {moved}"
            ) from exc
        if any(p["changed"] for p in promotions):
            send_champion_change(context, promotions, config)
        # The asset event tells forecast_monitor which date was published (its run has no logical date).
        context["outlet_events"][PUBLISHED_FORECASTS].extra = {"logical_date": logical.isoformat(), "run_id": context["run_id"]}
        return {"rows": written, "series": outcomes, "logical_date": logical.isoformat()}

    @task(trigger_rule="all_done", retries=0, on_failure_callback=[])
    def report_series() -> dict[str, Any]:
        """After every task is final: one report and one Slack message naming each quarantined series and
        failed mapped task with its cause, and each spike training newly left out (series, date, value).
        Fails (without a second alert) if any upstream task failed."""
        from forecast_ops.notifiers.slack import send_series_report

        from include.forecasting.pipeline import save_json, series_outcomes, spikes_by_series

        context = get_current_context()
        ti = context["ti"]
        failures = [c for c in (ti.xcom_pull(task_ids=["train_series", "evaluate_series"], key="alert_cause") or []) if c]
        published = ti.xcom_pull(task_ids="publish_forecasts") or {}
        outcome = series_outcomes(published.get("series") or {}, failures)
        outcome["spikes_left_out"] = spikes_by_series(ti.xcom_pull(task_ids=["train_series"]) or [])
        config = _config()
        failed = ti.get_ti_count(dag_id=ti.dag_id, run_ids=[ti.run_id], states=["failed", "upstream_failed"])
        outcome.update(run_id=context["run_id"], logical_date=_run_date(context).isoformat(), failed_tasks=failed)
        save_json(config, "runs", context["run_id"].replace(":", "_"), outcome)  # the monitor's daily report reads these
        if outcome["quarantined"] or failures or outcome["spikes_left_out"]:
            send_series_report(context, outcome, failures, config)
        if failed:
            from forecast_ops.exceptions import RunFailedException

            raise RunFailedException(f"{failed} upstream task instance(s) failed or were upstream-failed; see the grid")
        return outcome

    @task
    def all_series_published(outcome: dict[str, Any]) -> int:
        """Skipped when any series was quarantined: the run was partial (README "Partial runs")."""
        from airflow.sdk.exceptions import AirflowSkipException

        if outcome["quarantined"]:
            raise AirflowSkipException(f"partial run: {len(outcome['quarantined'])} series quarantined: {', '.join(outcome['quarantined'])}")
        return len(outcome["published"])

    snapshot = validate_sales(extract_sales())
    chunks = plan_series(snapshot)
    trained = train_series.partial(snapshot=snapshot, requests=retrain_requests(chunks)).expand(series_ids=chunks)
    evaluated = evaluate_series.partial(snapshot=snapshot).expand(trained=trained)
    decisions = gate_models(evaluated)
    promoted = PromoteChampionOperator(task_id="promote_champion", decisions=decisions, logical_date=RUN_DATE_TEMPLATE)
    published = publish_forecasts(snapshot, promoted.output, decisions)
    report = report_series()
    # Every mapped try must be final before the report: evaluate_series is upstream-failed as soon as one
    # train_series instance fails, while other instances may still be retrying.
    [published, evaluated, trained] >> report
    all_series_published(report)


sales_forecast()
