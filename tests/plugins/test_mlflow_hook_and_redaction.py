"""Secrets stay where they belong: the MLflow hook's credentials in its own client's URI (not in the
process environment), and alert causes masked with public APIs only."""

from __future__ import annotations

import json
import os

from forecast_ops.hooks.mlflow_registry import MlflowRegistryHook
from forecast_ops.notifiers.slack import _redact


def test_basic_auth_goes_into_the_uri_not_the_environment(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    conn = {"conn_type": "http", "host": "mlflow.internal", "port": 5000, "login": "ci bot", "password": "p@ss:word/1"}
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(conn))
    uri = MlflowRegistryHook().tracking_uri
    assert uri == "http://ci%20bot:p%40ss%3Aword%2F1@mlflow.internal:5000"
    assert "MLFLOW_TRACKING_PASSWORD" not in os.environ and "MLFLOW_TRACKING_USERNAME" not in os.environ
    # The MLflow UI link the promote task shows in the Airflow UI carries the server, never the credentials.
    assert MlflowRegistryHook().ui_url == "http://mlflow.internal:5000"


def test_the_ui_link_of_an_embedded_store_is_the_local_mlflow_ui(monkeypatch):
    """Without a tracking server the link goes where `make mlflow-ui` serves the store."""
    monkeypatch.delenv("AIRFLOW_CONN_MLFLOW_DEFAULT", raising=False)
    monkeypatch.delenv("MLFLOW_UI_HOST", raising=False)
    monkeypatch.delenv("MLFLOW_UI_PORT", raising=False)
    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    assert MlflowRegistryHook(fallback_uri="sqlite:////tmp/mlflow.db").ui_url == "http://127.0.0.1:5000"
    monkeypatch.setenv("MLFLOW_UI_PORT", "5055")
    assert MlflowRegistryHook(fallback_uri="sqlite:////tmp/mlflow.db").ui_url == "http://127.0.0.1:5055"
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "http", "host": "mlflow.internal", "schema": "https", "extra": {"tracking_uri": "https://mlflow.example.com/tracking/"}}))
    assert MlflowRegistryHook().ui_url == "https://mlflow.example.com/tracking"
    # A deployment whose workers reach the server by an internal name says where browsers reach it.
    monkeypatch.setenv("MLFLOW_UI_URL", "http://127.0.0.1:5000/")
    assert MlflowRegistryHook().ui_url == "http://127.0.0.1:5000"


def test_alert_causes_are_masked(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SLACK_API_DEFAULT", json.dumps({"conn_type": "slack", "password": "my-very-own-bot-secret"}))
    text = _redact("HTTPError: 401 for https://bot:hunter22@mlflow.internal/api token=abc123; sent my-very-own-bot-secret and xoxb-1-2-3")
    assert "hunter22" not in text and "abc123" not in text and "my-very-own-bot-secret" not in text and "xoxb-1-2-3" not in text
    assert text.startswith("HTTPError: 401 for https://***@mlflow.internal/api token=***")
