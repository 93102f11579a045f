"""The distributed deployment file: valid against the Compose specification, and the topology we promise.

No Docker engine runs here, so the file is checked against the official compose-spec JSON schema
(vendored by check-jsonschema) and for what the README promises about it.
"""

from __future__ import annotations

import json
import re
from importlib.resources import files

import jsonschema
import yaml
from conftest import ROOT

from include.forecasting.config import load_config

COMPOSE = ROOT / "docker-compose.yml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_valid_against_the_compose_specification():
    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())
    jsonschema.validate(compose(), schema)


def test_celery_topology_with_healthchecks():
    services = compose()["services"]
    expected = {"postgres", "redis", "mlflow", "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer", "airflow-worker"}
    assert expected <= set(services)
    for name, service in services.items():
        if name != "airflow-init":
            assert "healthcheck" in service, f"{name} has no healthcheck"
            assert service.get("restart") == "unless-stopped", f"{name} is not restarted when it exits"
    assert services["airflow-init"]["restart"] == "no"  # a one-shot job: done once it succeeded
    worker_env = services["airflow-worker"]["environment"]
    assert worker_env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker_env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis")
    assert "postgres" in worker_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "--backend-store-uri postgresql" in " ".join(services["mlflow"]["command"].split())
    assert "ports" not in services["airflow-worker"]  # scalable with --scale: no fixed host port


def test_no_hard_coded_secrets():
    text = COMPOSE.read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|TOKEN|FERNET)[A-Z_]*:\s*\S", line) and "${" not in line:
            raise AssertionError(f"hard-coded secret: {line.strip()}")
    assert "hooks.slack.com" not in text and "xoxb-" not in text


def test_compose_config_is_valid_and_uses_the_shared_volume():
    config = load_config(ROOT / "include" / "config" / "forecast.compose.yaml")
    assert str(config.storage_root).startswith("/shared") and config.mlflow.tracking_uri == "http://mlflow:5000"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-r requirements.txt" in dockerfile and "-c constraints.txt" in dockerfile and "FROM python:3.11" in dockerfile
