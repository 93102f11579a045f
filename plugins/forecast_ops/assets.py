"""Assets shared by the DAGs: `publish_forecasts` emits PUBLISHED_FORECASTS, `forecast_monitor` runs on it."""

from __future__ import annotations

from airflow.sdk import Asset

# The published forecasts table (whichever warehouse the config names). Each event's extra carries the
# publishing run's logical date and run id.
PUBLISHED_FORECASTS = Asset(name="published_forecasts", uri="sales-forecast://warehouse/forecasts", group="forecasts")
