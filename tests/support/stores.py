"""Read the real stores a DAG run wrote: MLflow registry and the DuckDB forecasts table."""

from __future__ import annotations

from typing import Any

import pandas as pd


def champions(config: Any) -> dict[str, str]:
    """series_id -> champion version for every registered series model."""
    from mlflow import MlflowClient

    from include.forecasting.registry import registry_overview

    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    return {row["series_id"]: row["champion"] for row in registry_overview(client, config.mlflow.model_prefix, config.mlflow.champion_alias)}


def version_counts(config: Any) -> dict[str, int]:
    """Registered model name -> number of versions."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=config.mlflow.tracking_uri)
    return {m.name: len(client.search_model_versions(f"name = '{m.name}'")) for m in client.search_registered_models()}


def forecasts(config: Any, logical_date: Any = None) -> pd.DataFrame:
    """The published forecasts table (optionally one logical date)."""
    import duckdb

    from include.forecasting.publish import read_forecasts

    con = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        return read_forecasts(con, config.warehouse.forecasts_table, logical_date)
    finally:
        con.close()


def task_states(dag_run: Any) -> dict[str, str]:
    """task_id (with [map_index] for mapped) -> final state of a finished DagRun."""
    out = {}
    for ti in dag_run.get_task_instances():
        key = ti.task_id + (f"[{ti.map_index}]" if ti.map_index >= 0 else "")
        out[key] = str(ti.state)
    return out
