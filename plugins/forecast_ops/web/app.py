"""FastAPI app behind Airflow's own login: the Forecasts page and its data as JSON.

Airflow does not authenticate plugin apps (a mounted app inherits none of the API's dependencies), so
every route here depends on `airflow_user`: the same JWT the Airflow UI holds (its `_token` cookie) or
an `Authorization: Bearer` token from `POST /auth/token`, checked by Airflow's auth manager, plus read
access to the sales_forecast DAG. Anonymous requests get 401 (JSON) or a redirect to the login (page).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

DAG_ID = "sales_forecast"
COOKIE = "_token"  # Airflow UI's JWT cookie (airflow.api_fastapi.auth.managers.base_auth_manager)
_CHAMPIONS: dict[str, Any] = {"at": 0.0, "value": ({}, {})}
CHAMPION_TTL_S = 30.0


class NotAuthenticated(Exception):
    """No valid Airflow token on the request."""


async def airflow_user(request: Request) -> Any:
    """The Airflow user of this request (401 without a valid token, 403 without read access to the DAG)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    if not token:
        raise NotAuthenticated("no Airflow token")
    manager = get_auth_manager()
    try:
        user = await manager.get_user_from_token(token)
    except Exception as exc:  # expired or invalid: the same answer as no token
        raise NotAuthenticated(str(exc)) from exc
    if not manager.is_authorized_dag(method="GET", details=DagDetails(id=DAG_ID), user=user):
        raise HTTPException(status_code=403, detail=f"no read access to DAG {DAG_ID}")
    return user


def _config() -> Any:
    from include.forecasting.config import load_config

    return load_config()


def _champions(config: Any, series: list[str]) -> tuple[dict[str, str | None], dict[str, str]]:
    """Champion version per series from the registry, and its page in the MLflow UI (the promote task's
    link's address, `MlflowRegistryHook.ui_url`); cached briefly: one lookup per series."""
    if time.monotonic() - _CHAMPIONS["at"] < CHAMPION_TTL_S and set(series) <= set(_CHAMPIONS["value"][0]):
        return _CHAMPIONS["value"]
    from forecast_ops.hooks.mlflow_registry import MlflowRegistryHook
    from include.forecasting import forecasts_page, registry

    hook = MlflowRegistryHook(fallback_uri=config.mlflow.tracking_uri)
    found: dict[str, str | None] = {}
    urls: dict[str, str] = {}
    for series_id in series:
        name = registry.model_name(config.mlflow.model_prefix, series_id)
        version = registry.get_alias_version(hook.client, name, config.mlflow.champion_alias)
        found[series_id] = str(version.version) if version is not None else None
        if version is not None:
            urls[series_id] = forecasts_page.model_version_url(hook.ui_url, name, str(version.version))
    _CHAMPIONS.update(at=time.monotonic(), value=(found, urls))
    return found, urls


def _rows(run_id: str | None) -> tuple[Any, list[dict[str, Any]], str | None]:
    from forecast_ops.hooks.warehouse import read_monitor_table
    from include.forecasting import forecasts_page

    config = _config()
    published = read_monitor_table(config, "forecasts", "WHERE logical_date = (SELECT max(logical_date) FROM {forecasts})", lock_timeout=10)
    newest = "coalesce((SELECT max(monitor_date) FROM {health} WHERE scored_periods > 0), (SELECT max(monitor_date) FROM {health}))"
    health = read_monitor_table(config, "health", f"WHERE monitor_date >= {newest}", lock_timeout=10)
    gate_run, gate = forecasts_page.latest_gate(config.storage_root / "gate", run_id)
    series = sorted(set(published.get("series_id", [])) | set(health.get("series_id", [])) | set(gate))
    return config, forecasts_page.series_rows(published, health, gate, *_champions(config, series)), gate_run


def _chart(config: Any, series_id: str) -> dict[str, Any]:
    from forecast_ops.hooks.warehouse import read_monitor_table
    from include.forecasting import charts

    actuals = read_monitor_table(config, "actuals", "WHERE series_id = $s ORDER BY date", {"s": series_id}, lock_timeout=10)
    forecasts = read_monitor_table(config, "forecasts", "WHERE series_id = $s ORDER BY logical_date, forecast_date", {"s": series_id}, lock_timeout=10)
    return charts.chart_data(series_id, actuals, forecasts)


def create_app() -> FastAPI:
    """The app Airflow mounts at /forecasts (see forecasts_plugin.py)."""
    app = FastAPI(title="Forecasts", description="Published forecasts, gate decisions and realized accuracy per series")

    @app.exception_handler(NotAuthenticated)
    async def _refuse(request: Request, exc: NotAuthenticated) -> Any:
        if request.url.path.rstrip("/").endswith(("/api/series",)) or "/api/" in request.url.path:
            return JSONResponse({"detail": "Not authenticated: log in to Airflow or send a Bearer token"}, status_code=401)
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=302)

    @app.get("/", response_class=HTMLResponse)
    def page(series: str | None = Query(None), run_id: str | None = Query(None), user: Any = Depends(airflow_user)) -> str:
        """The Forecasts page (HTML)."""
        from include.forecasting import forecasts_page

        config, rows, gate_run = _rows(run_id)
        selected = series if series in {r["series_id"] for r in rows} else (rows[0]["series_id"] if rows else None)
        chart = _chart(config, selected) if selected else None
        return forecasts_page.page_html(rows, selected, chart, gate_run)

    @app.get("/api/series")
    def api_series(run_id: str | None = Query(None), user: Any = Depends(airflow_user)) -> dict[str, Any]:
        """Every series: champion, published version, last gate decision, realized accuracy."""
        _, rows, gate_run = _rows(run_id)
        return {"gate_run": gate_run, "series": rows}

    @app.get("/api/series/{series_id}")
    def api_one(series_id: str, user: Any = Depends(airflow_user)) -> dict[str, Any]:
        """One series' chart data: actuals and the newest published forecasts with intervals."""
        config = _config()
        data = _chart(config, series_id)
        if not data["actuals"] and not data["forecasts"]:
            raise HTTPException(status_code=404, detail=f"no series {series_id!r}")
        return data

    return app
