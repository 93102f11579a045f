"""Pick the warehouse backend named in the config: the embedded DuckDB file or BigQuery."""

from __future__ import annotations

import datetime as dt
from typing import Any

from forecast_ops.hooks.bigquery_sales import BigQuerySalesHook
from forecast_ops.hooks.duckdb_warehouse import DuckDBWarehouseHook


def extract_daily_sales(config: Any, window: tuple[dt.date, dt.date]) -> Any:
    """Run include/sql/daily_sales.sql on the configured source for the window; return the frame."""
    from include.forecasting import extract

    if config.source.kind == "duckdb":
        with DuckDBWarehouseHook(path=config.warehouse.path).connection(read_only=True) as con:
            return extract.extract_duckdb(con, config.source.table, window, config.series_ids)
    hook = BigQuerySalesHook(billing_project=config.source.billing_project)
    sql = extract.render_sql("daily_sales", "bigquery", source_table=config.source.table)
    return extract.normalise(hook.query_frame(sql, extract.query_parameters(window, config.series_ids)))


def source_checks(config: Any, window: tuple[dt.date, dt.date]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """On the raw source rows, before aggregation: keys of its own grain (source.unique_key) that repeat
    inside the window, and, for a transaction-grain source, rows per date (the size of each delivery).
    A source with one row per date and series has no delivery size of its own (its rows per date are the
    number of selling series, which the per-series rules judge), so its volume is not measured."""
    from include.forecasting import extract

    params = extract.query_parameters(window, config.series_ids)
    transactions = extract.is_transaction_grain(config.source.unique_key)
    if config.source.kind == "duckdb":
        with DuckDBWarehouseHook(path=config.warehouse.path).connection(read_only=True) as con:
            duplicates = extract.source_duplicates_duckdb(con, config.source.table, config.source.unique_key, window, config.series_ids)
            volume = extract.delivery_volume_duckdb(con, config.source.table, window, config.series_ids) if transactions else []
            return duplicates, volume
    hook = BigQuerySalesHook(billing_project=config.source.billing_project)
    duplicates = extract.duplicate_records(hook.query_frame(extract.duplicates_sql("bigquery", config.source.table, config.source.unique_key), params))
    if not transactions:
        return duplicates, []
    volume = hook.query_frame(extract.render_sql("delivery_volume", "bigquery", source_table=config.source.table), params)
    return duplicates, extract.volume_records(volume)


def publish_forecasts(config: Any, rows: Any, logical_date: dt.date) -> int:
    """Replace this logical date's forecasts in the configured warehouse; return rows written."""
    from include.forecasting import extract, publish

    if config.warehouse.kind == "duckdb":
        with DuckDBWarehouseHook(path=config.warehouse.path).connection() as con:
            return publish.publish_duckdb(con, config.warehouse.forecasts_table, rows, logical_date, config.warehouse.series_id_type)
    sql = extract.render_sql("publish_forecasts.bigquery", "bigquery", forecasts_table=config.warehouse.forecasts_table)
    return BigQuerySalesHook(billing_project=config.source.billing_project).replace_forecasts(sql, rows, logical_date, publish.bigquery_forecast_types())


def latest_published(config: Any, series: list[str]) -> Any:
    """Per series: the newest logical date with published forecasts and their model version."""
    from include.forecasting import extract, publish

    table = config.warehouse.forecasts_table
    if config.warehouse.kind == "duckdb":
        with DuckDBWarehouseHook(path=config.warehouse.path).connection(read_only=True) as con:
            return publish.latest_published_duckdb(con, table, series)
    sql = extract.render_sql("latest_published", "bigquery", forecasts_table=table)
    return BigQuerySalesHook(billing_project=config.source.billing_project).query_frame(sql, {"series": list(series)})


def republish_served(config: Any, series: list[str], run_id: str, tracking_uri: str) -> dict[str, dict[str, Any]]:
    """After a rollback: for each series, replace the rows of its newest published logical date with a
    forecast by the version that serves that date now, from that date's history window, so the warehouse
    never shows a version the registry stopped serving. Series whose rows already carry that version are
    left alone. Returns per series {"logical_date", "from", "to"} (or "error" when it could not forecast:
    its rows then stay as they were)."""
    from include.forecasting import extract, pipeline

    latest = latest_published(config, series)
    out: dict[str, dict[str, Any]] = {}
    for day, group in latest.groupby("logical_date"):
        logical_date = _as_date(day)
        published = {str(r.series_id): str(r.model_version) for r in group.itertuples(index=False)}
        frame = extract_daily_sales(config, extract.history_window(logical_date, config.forecast.history_days))
        rows, outcomes = pipeline.served_forecasts(config, frame, logical_date, sorted(published), run_id, tracking_uri)
        changed = [s for s, o in outcomes.items() if o["status"] == "champion" and o["version"] != published[s]]
        if changed:
            publish_forecasts(config, rows[rows["series_id"].isin(changed)], logical_date)
        for series_id, outcome in outcomes.items():
            if series_id in changed:
                out[series_id] = {"logical_date": logical_date.isoformat(), "from": published[series_id], "to": outcome["version"]}
            elif outcome["status"] != "champion":
                out[series_id] = {"logical_date": logical_date.isoformat(), "from": published[series_id], "error": outcome.get("reason") or outcome["status"]}
    return out


def _as_date(value: Any) -> dt.date:
    """A date from what a warehouse query returns (date, datetime or pandas Timestamp)."""
    import pandas as pd

    return pd.Timestamp(value).date()


def read_forecasts_between(config: Any, first: dt.date, last: dt.date) -> Any:
    """Published forecasts with a logical date in [first, last], from the configured warehouse."""
    from include.forecasting import monitor_tables, publish

    table = config.warehouse.forecasts_table
    if config.warehouse.kind == "duckdb":
        with DuckDBWarehouseHook(path=config.warehouse.path).connection(read_only=True) as con:
            return monitor_tables.forecasts_between(con, table, first, last)
    sql = f"SELECT * FROM (SELECT {publish.TEXT_IDS} FROM `{table}`) WHERE logical_date BETWEEN @first AND @last ORDER BY series_id, logical_date, forecast_date"
    return BigQuerySalesHook(billing_project=config.source.billing_project).query_frame(sql, {"first": first, "last": last})


def replace_monitor_rows(config: Any, role: str, rows: Any) -> int:
    """Replace the monitor's rows by key (accuracy, health or actuals table); return rows written."""
    from include.forecasting import monitor_tables

    names = monitor_tables.table_names(config.warehouse)
    if config.warehouse.kind == "duckdb":
        with DuckDBWarehouseHook(path=config.warehouse.path).connection() as con:
            return monitor_tables.replace_duckdb(con, names, role, rows)
    sql = monitor_tables.bigquery_replace_sql(names[role], role)
    return BigQuerySalesHook(billing_project=config.source.billing_project).replace_rows(sql, rows, monitor_tables.bigquery_types(role))


def read_monitor_table(config: Any, role: str, where: str = "", params: dict[str, Any] | None = None, lock_timeout: float = 120.0) -> Any:
    """Rows of one monitor table, or of the forecasts table (role "forecasts"); `where` is code-defined
    SQL with named parameters ($name) that names the project's tables by role in braces ({forecasts},
    {health}, {accuracy}, {actuals}): each is filled in quoted as the warehouse quotes a name (DuckDB
    "dataset"."table", BigQuery `dataset.table`; to BigQuery a double-quoted name is a string)."""
    from include.forecasting import monitor_tables, publish

    names = {**monitor_tables.table_names(config.warehouse), "forecasts": config.warehouse.forecasts_table}
    columns = publish.FORECAST_COLUMNS if role == "forecasts" else monitor_tables.TABLES[role][0]
    if config.warehouse.kind == "duckdb":
        quoted = {r: publish.duckdb_name(name) for r, name in names.items()}
        with DuckDBWarehouseHook(path=config.warehouse.path, lock_timeout=lock_timeout).connection(read_only=True) as con:
            return monitor_tables.read_table(con, names[role], where.format(**quoted), params, columns)
    where = where.format(**{r: f"`{name}`" for r, name in names.items()}).replace("$", "@")
    sql = f"SELECT * FROM (SELECT {publish.TEXT_IDS} FROM `{names[role]}`) {where}"
    return BigQuerySalesHook(billing_project=config.source.billing_project).query_frame(sql, params or {})
