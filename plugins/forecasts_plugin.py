"""Airflow plugin: the Forecasts page in the Airflow UI (navigation entry and a link on sales_forecast runs).

The FastAPI app is mounted by the API server at /forecasts; the external views put it in the UI's
navigation and on each sales_forecast run (showing that run's gate decisions). See README "Monitoring".
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from forecast_ops.web.app import create_app


class ForecastsPlugin(AirflowPlugin):
    """Registers the Forecasts app and its two entry points in the UI."""

    name = "forecasts"
    fastapi_apps = [{"app": create_app(), "url_prefix": "/forecasts", "name": "Forecasts"}]
    external_views = [
        # Relative hrefs: the UI resolves them against its base URL (works behind a proxy prefix).
        {"name": "Forecasts", "href": "forecasts/", "destination": "nav", "url_route": "forecasts"},
        {"name": "Forecasts", "href": "forecasts/?run_id={RUN_ID}", "destination": "dag_run", "url_route": "forecasts_run"},
    ]
