"""MlflowRegistryHook: resolves the MLflow tracking server from an Airflow connection and hands out an
MlflowClient. Credentials stay in the connection and this hook's client (login/password -> basic auth in the URI)."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException


class MlflowRegistryHook(BaseHook):
    """Thin wrapper around `mlflow.MlflowClient`.

    Connection `mlflow_default` (type http): host/port/schema give the server URL, or extra
    `{"tracking_uri": "..."}` gives any MLflow URI (e.g. `sqlite:////abs/mlflow.db`). Without the
    connection the hook uses `fallback_uri` (the config's embedded default).
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = "mlflow_default"
    conn_type = "http"
    hook_name = "MLflow registry"

    def __init__(self, *, mlflow_conn_id: str = default_conn_name, fallback_uri: str | None = None) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id
        self.fallback_uri = fallback_uri

    @cached_property
    def tracking_uri(self) -> str:
        """The tracking URI from the connection, else the fallback."""
        try:
            conn = self.get_connection(self.mlflow_conn_id)
        except AirflowNotFoundException:
            if not self.fallback_uri:
                raise
            self.log.info("no connection %r: using the configured tracking URI %s", self.mlflow_conn_id, self.fallback_uri)
            return self.fallback_uri
        extra = conn.extra_dejson
        if extra.get("tracking_uri"):
            uri = str(extra["tracking_uri"])
        else:
            scheme = conn.schema or "http"
            uri = f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")
        if conn.login:
            # Basic auth travels in the URI's userinfo (requests sends it as the Authorization header), so
            # the credentials stay with this hook's client: nothing is written into os.environ, which every
            # child process would inherit.
            scheme, _, rest = uri.partition("://")
            userinfo = quote(conn.login, safe="") + ":" + quote(conn.password or "", safe="")
            uri = f"{scheme}://{userinfo}@{rest}"
        return uri

    @cached_property
    def ui_url(self) -> str:
        """Where a person opens the MLflow UI of this store: MLFLOW_UI_URL when set (the address a browser
        reaches, where the workers' tracking URI is an internal one: compose's `http://mlflow:5000`), else a
        tracking server's own URL (without the connection's credentials), else the local UI `make
        mlflow-ui` serves over the embedded store (MLFLOW_UI_HOST / MLFLOW_UI_PORT, default 127.0.0.1:5000)."""
        if os.environ.get("MLFLOW_UI_URL"):
            return os.environ["MLFLOW_UI_URL"].rstrip("/")
        parts = urlsplit(self.tracking_uri)
        if parts.scheme in ("http", "https") and parts.hostname:
            host = parts.hostname + (f":{parts.port}" if parts.port else "")
            return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"
        return f"http://{os.environ.get('MLFLOW_UI_HOST', '127.0.0.1')}:{os.environ.get('MLFLOW_UI_PORT', '5000')}"

    @cached_property
    def client(self) -> Any:
        """An MlflowClient bound to the tracking URI (mlflow is imported only when used)."""
        from include.forecasting.registry import open_client

        return open_client(self.tracking_uri)

    def get_conn(self) -> Any:
        """Airflow's hook protocol: the client."""
        return self.client

    def recorded_backtest(self, name: str, version: str) -> dict[str, Any] | None:
        """The backtest recorded on a model version (its `backtest` tag), or None: a fallback forecast
        has no version, and a deleted version loses its expectation with a warning, not the caller's run."""
        import json

        if not name or not str(version).isdigit():
            return None
        try:
            return json.loads(self.client.get_model_version(name, str(version)).tags.get("backtest") or "null")
        except Exception as exc:  # noqa: BLE001 - e.g. RESOURCE_DOES_NOT_EXIST for a deleted version
            self.log.warning("no recorded backtest for %s v%s: %s", name, version, exc)
            return None
