"""A champion served outside Airflow: `make serve-model` (`scripts/models.py serve`, which runs `mlflow
models serve` on the registry's `champion` alias), asked over real HTTP on 127.0.0.1 for a forecast from
newer data, as a client of the model would (the scoring server, uvicorn, the version's own copy of the
forecasting code; the MLflow store is a real sqlite one)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pandas as pd
import pytest
from conftest import ROOT, read_seed, write_config

from include.forecasting import registry, training
from include.forecasting.config import load_config
from include.forecasting.frequency import DAILY

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_champion_serves_forecasts_from_newer_data_over_http(tmp_path):
    config_path = write_config(tmp_path)
    config = load_config(config_path)
    frame = read_seed()
    y = training.daily_series(frame, "TITOS HANDMADE VODKA", pd.Timestamp("2025-05-17"))
    full = training.daily_series(frame, "TITOS HANDMADE VODKA", pd.Timestamp("2025-05-31"))
    fitted = training.fit_series(y, training.settings_for(config.forecast, DAILY))
    client = registry.open_client(config.mlflow.tracking_uri)
    exp = registry.ensure_experiment(config.mlflow.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)
    name = registry.model_name(config.mlflow.model_prefix, "TITOS HANDMADE VODKA")
    version = registry.log_candidate(
        client, exp, name, "TITOS HANDMADE VODKA", fitted, y, fitted.forecast(7), {registry.TAG_KEY: "k-serve", "logical_date": "2025-05-17"}, {}, 7, (0.8, 0.95),
    )
    registry.promote(client, name, "TITOS HANDMADE VODKA", str(version.version), "champion", "2025-05-17", "test")

    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    # The series named as a user types it (case and spaces do not matter); the script finds the model.
    server = subprocess.Popen(
        [sys.executable, "scripts/models.py", "serve", "--series", "titos  handmade vodka", "--port", str(port)],
        cwd=ROOT, env={**os.environ, "FORECAST_CONFIG": str(config_path)}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()[-3000:]
                time.sleep(1)
        newer = full[full.index > y.index.max()]
        records = [{"date": f"{d:%Y-%m-%d}", "value": int(v)} for d, v in newer.items()]
        status, body = _post(f"http://127.0.0.1:{port}/invocations", {"dataframe_records": records, "params": {"horizon": 10}})
        assert status == 200, body
        served = pd.DataFrame(body["predictions"])
        expected = training.forecast_with_spec(full, fitted.spec, 10, (0.8, 0.95))
        assert list(pd.to_datetime(served["forecast_date"])) == list(expected["forecast_date"])
        for column in ("yhat", "yhat_lower", "yhat_upper", "yhat_upper_95"):
            assert served[column].to_numpy() == pytest.approx(expected[column].to_numpy(), rel=1e-9, abs=1e-9)
        # A bad row is refused with its date and the rule, and nothing is forecast.
        status, body = _post(f"http://127.0.0.1:{port}/invocations", {"dataframe_records": [{"date": "2025-05-20", "value": -5}]})
        assert status == 400 and "value on 2025-05-20 is -5: a value must be a finite number, not negative" in json.dumps(body)
    finally:
        os.killpg(server.pid, 15)  # the server and its uvicorn worker, by PID
        server.wait(timeout=30)
        log.close()
    printed = (tmp_path / "serve.log").read_text()
    assert f"Serving TITOS HANDMADE VODKA (models:/{name}@champion) on http://127.0.0.1:{port}/invocations" in printed

