"""The distributed topology without containers (`make test-integration`, run by .ci/run).

What docker-compose.yml runs, as processes on 127.0.0.1: PostgreSQL (Airflow metadata + MLflow backend),
Redis (Celery broker), an MLflow tracking server with a proxied artifact store, and Airflow with the
CeleryExecutor (api-server, scheduler, dag-processor, one Celery worker). sales_forecast is triggered
through the REST API; the champion is then read through the MLflow server's REST API. Every process the
test started is stopped by process group, and the test checks that none is left.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from conftest import RUN_DAY, slack_webhook_conn, write_config
from support.slack_standin import SlackStandIn

from scripts.airflow_stack import AirflowStack, Processes, mlflow_server, postgres, redis

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]
SERIES = ["BLACK VELVET", "FIREBALL CINNAMON WHISKEY", "FIVE O'CLOCK VODKA", "HAWKEYE VODKA", "TITOS HANDMADE VODKA"]


def mlflow_get(base: str, path: str, **params: str) -> dict:
    """GET an MLflow REST endpoint (the server's own API, not the Python client)."""
    with urllib.request.urlopen(f"{base}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}", timeout=10) as response:
        return json.loads(response.read())


def test_celery_postgres_redis_mlflow_server(tmp_path: Path):
    import duckdb

    from include.forecasting.config import load_config
    from include.forecasting.extract import load_seed_csv
    from include.forecasting.registry import model_name

    procs = Processes(tmp_path / "logs")
    started: list[int] = []
    try:
        with postgres(procs, ("airflow", "mlflow")) as pg, redis(procs) as broker, SlackStandIn() as slack:
            try:
                tracking = mlflow_server(procs, f"{pg.replace('postgresql://', 'postgresql+psycopg2://')}/mlflow", tmp_path / "mlflow-artifacts")
                config_path = write_config(tmp_path, **{"mlflow.tracking_uri": tracking})
                config = load_config(config_path)
                con = duckdb.connect(str(config.warehouse.path))
                load_seed_csv(con, config.source)
                con.close()
                host, port = tracking.removeprefix("http://").split(":")
                db = pg.replace("postgresql://", "postgresql+psycopg2://")
                env = {
                    "FORECAST_CONFIG": str(config_path),
                    "FORECAST_RETRY_DELAY_S": "1",
                    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                    "AIRFLOW__CORE__PARALLELISM": "8",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{db}/airflow",
                    "AIRFLOW__CELERY__BROKER_URL": broker,
                    "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{db}/airflow",
                    "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "http", "host": host, "port": int(port), "schema": "http"}),
                    "AIRFLOW_CONN_SLACK_DEFAULT": slack_webhook_conn(slack.webhook_url),
                    "AIRFLOW_CONN_SLACK_API_DEFAULT": "",
                    # A 30 s run deadline, which the run misses: the late-run callback runs on the Celery worker.
                    "FORECAST_RUN_DEADLINE_MINUTES": "0.5",
                }
                airflow = AirflowStack(tmp_path / "airflow", env, procs, celery_workers=1)
                airflow.start({"training": 2})
                started = [p.pid for _, p in procs.started]
                airflow.wait_for_dag("sales_forecast")
                run_id = airflow.trigger("sales_forecast", RUN_DAY)
                run = airflow.wait_for_run("sales_forecast", run_id, 900)
                if run["state"] != "success":
                    states = {(t["task_id"], t["map_index"]): t["state"] for t in airflow.task_instances("sales_forecast", run_id)}
                    pytest.fail(f"run {run_id} {run['state']}: {states}\n{procs.tail('celery-worker-0', 60)}")

                # Tasks ran on the Celery worker (the scheduler only queued them).
                tis = airflow.task_instances("sales_forecast", run_id)
                assert len([t for t in tis if t["task_id"] == "train_series"]) == 5
                assert all(t["state"] == "success" for t in tis)
                assert "execute_workload" in (tmp_path / "logs" / "celery-worker-0.log").read_text()

                # The run missed its 30 s deadline: the deadline callback (an executor callback, run by the
                # Celery worker) posted one "run is late" message for it.
                assert pd.Timestamp(run["end_date"]) > pd.Timestamp(run["queued_at"]) + pd.Timedelta(seconds=30), run
                late = [r.body["text"] for r in slack.requests if f"run is late: sales_forecast ({RUN_DAY})" in str(r.body.get("text", ""))]
                assert len(late) == 1, [r.body.get("text") for r in slack.requests]

                # The champion, read through the MLflow server's REST API; artifacts in its store.
                for series_id in SERIES:
                    name = model_name(config.mlflow.model_prefix, series_id)
                    version = mlflow_get(tracking, "registered-models/alias", name=name, alias="champion")["model_version"]
                    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
                    assert tags["logical_date"] == RUN_DAY and tags["gate_passed"] == "true", (series_id, tags)
                    assert version["source"].startswith(("mlflow-artifacts:", "models:/")), version["source"]
                assert any((tmp_path / "mlflow-artifacts").rglob("MLmodel")), "no model artifact reached the server's store"
            finally:
                procs.stop()  # newest first: Airflow, MLflow, Redis, then PostgreSQL
    finally:
        procs.stop()
    for pid in started:  # stopped by process group: nothing left behind
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)
