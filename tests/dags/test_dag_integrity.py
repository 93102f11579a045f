"""DAG integrity: every DAG file imports cleanly, fast, without heavy imports or connections at parse."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

HEAVY = ("mlflow", "statsmodels", "great_expectations", "pandas", "duckdb", "google.cloud.bigquery", "sklearn")


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "sales_forecast" in dagbag.dag_ids


def test_tags_retries_docs(dagbag):
    for dag_id in dagbag.dag_ids:
        dag = dagbag.get_dag(dag_id)
        assert dag.tags, dag_id
        assert dag.doc_md, dag_id
        assert dag_id in ("sales_forecast", "forecast_monitor") or dag.schedule is None  # rollback is manual only
        # Runs are capped (max_active_runs): a stuck run without a timeout would hold a slot for ever.
        assert dag.dagrun_timeout, dag_id
        for task in dag.tasks:
            if task.task_id not in ("validate_sales", "report_series"):  # fail-fast by design
                assert task.retries >= 2, f"{dag_id}.{task.task_id}"
            if task.task_id != "report_series":  # it sends the run's one aggregated alert itself
                assert task.on_failure_callback, f"{dag_id}.{task.task_id} has no failure alert"


def test_shape_of_sales_forecast(dagbag):
    dag = dagbag.get_dag("sales_forecast")
    assert dag.catchup is False
    assert dag.get_task("train_series").pool == "training"
    assert dag.get_task("validate_sales").retries == 0
    # Nothing that trains, promotes or publishes can run without validated data upstream.
    assert dag.get_task("validate_sales").downstream_task_ids == {"plan_series", "train_series", "evaluate_series", "publish_forecasts"}
    assert "validate_sales" in dag.get_task("promote_champion").get_flat_relative_ids(upstream=True)
    assert {"extract_sales", "validate_sales", "train_series", "evaluate_series", "gate_models", "promote_champion", "publish_forecasts"} <= set(dag.task_ids)
    # The report waits for every try of every task (all_done) and is the only way to the partial-run leaf.
    report = dag.get_task("report_series")
    assert report.trigger_rule == "all_done" and report.retries == 0 and not report.on_failure_callback
    assert {"publish_forecasts", "evaluate_series"} <= report.upstream_task_ids
    assert report.downstream_task_ids == {"all_series_published"} and dag.get_task("all_series_published").downstream_task_ids == set()
    assert dag.start_date.year <= 1970  # any history a user brings has a runnable logical date
    # The run deadline comes from the services' environment (forecast_ops.callbacks.run_deadline), never
    # past the run timeout.
    from forecast_ops.callbacks import run_deadline

    expected = run_deadline(dag.dagrun_timeout)
    assert dag.deadline == ([expected] if expected else None)


def test_run_deadline_is_set_by_the_services_environment(monkeypatch):
    from datetime import timedelta

    from forecast_ops.callbacks import DEADLINE_ENV, run_deadline

    for off in ("", "0"):
        monkeypatch.setenv(DEADLINE_ENV, off)
        assert run_deadline(timedelta(hours=2)) is None
    monkeypatch.delenv(DEADLINE_ENV)
    assert run_deadline(timedelta(hours=2)) is None
    monkeypatch.setenv(DEADLINE_ENV, "an hour")
    with pytest.raises(ValueError, match="FORECAST_RUN_DEADLINE_MINUTES='an hour': minutes as a number"):
        run_deadline(timedelta(hours=2))
    monkeypatch.setenv(DEADLINE_ENV, "60")
    deadline = run_deadline(timedelta(hours=2))
    assert type(deadline.reference).__name__ == "DagRunQueuedAtDeadline"
    assert deadline.interval == timedelta(minutes=60)
    assert type(deadline.callback).__name__ == "SyncCallback" and deadline.callback.path == "forecast_ops.notifiers.slack.late_run_callback"
    assert deadline.callback.kwargs == {"limit_minutes": 60.0, "timeout_minutes": 120.0}


def test_compose_turns_the_run_deadline_on():
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["x-airflow"]["environment"]["FORECAST_RUN_DEADLINE_MINUTES"] == "${FORECAST_RUN_DEADLINE_MINUTES:-60}"


def test_shape_of_forecast_monitor(dagbag):
    """Runs on each publish (the asset sales_forecast's publish task emits) and daily; one writer at a time."""
    monitor = dagbag.get_dag("forecast_monitor")
    publisher = dagbag.get_dag("sales_forecast").get_task("publish_forecasts")
    assert [o.name for o in publisher.outlets] == ["published_forecasts"]
    assert "published_forecasts" in repr(monitor.timetable.asset_condition)
    assert monitor.max_active_runs == 1 and monitor.catchup is False
    assert monitor.get_task("assess_forecasts").downstream_task_ids == {"warn_flagged", "health_report"}
    sales = dagbag.get_dag("sales_forecast")
    assert set(sales.params.keys()) == {"series", "force_retrain"} and sales.description
    assert sales.get_task("retrain_requests").downstream_task_ids == {"train_series"}


def test_parse_imports_nothing_heavy_and_needs_no_connection():
    """Parse each DAG file in a fresh interpreter with connection lookups forbidden."""
    code = f"""
import json, sys, time, importlib.util
import airflow.sdk
from airflow.sdk import BaseHook
def forbidden(*a, **k): raise RuntimeError("connection looked up at parse time")
BaseHook.get_connection = classmethod(forbidden)
out = {{}}
for path in sorted(__import__('pathlib').Path({str(ROOT / 'dags')!r}).glob('*.py')):
    before = set(sys.modules)
    t = time.perf_counter()
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    out[path.name] = {{"seconds": time.perf_counter() - t, "heavy": sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {[h.split('.')[0] for h in HEAVY]!r})}}
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    parsed = json.loads(result.stdout.strip().splitlines()[-1])
    assert parsed, "no DAG files parsed"
    for name, info in parsed.items():
        assert info["heavy"] == [], f"{name} imports {info['heavy']} at parse time"
        assert info["seconds"] < 1.0, f"{name} took {info['seconds']:.2f}s to parse"
