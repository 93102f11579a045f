"""The steps of the sales_forecast DAG as plain functions: each DAG task is a few lines around one of
these. They take the validated Config, small references (snapshot, versions) and an MlflowClient, and
return JSON-ready dicts for XCom. No Airflow import, so the whole chain runs in unit tests too."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from include.forecasting import evaluation, gate, registry, training
from include.forecasting.config import Config
from include.forecasting.extract import SnapshotRef, read_snapshot
from include.forecasting.publish import forecast_rows
from include.forecasting.validation import DataValidationError, save_report, validate_frame

log = logging.getLogger(__name__)


def check_config_matches(config: Config, ref: SnapshotRef) -> None:
    """Refuse to go on if the config changed between extract and this task (a run uses one config)."""
    if ref.config_sha256 != config.sha256:
        raise RuntimeError(
            f"config {config.path} changed since extract (hash {config.sha256[:12]} != {ref.config_sha256[:12]}): "
            "rerun the whole DAG run"
        )


def validate_snapshot(config: Config, ref: SnapshotRef) -> dict[str, Any]:
    """Validate a snapshot; save the full report; raise DataValidationError naming failures."""
    frame = read_snapshot(ref)
    report = validate_frame(frame, config, dt.date.fromisoformat(ref.window_end), ref.sha256)
    path = save_report(report, config.storage_root)
    if not report.success:
        raise DataValidationError(report)
    return {**report.to_dict(), "report_path": str(path)}


def plan_chunks(config: Config, ref: SnapshotRef) -> list[list[str]]:
    """Series to train, in chunks of `series_per_task`, grown so there are at most `max_chunks` chunks.

    One mapped task per chunk: the scheduler's task count stays bounded (and below Airflow's
    max_map_length) however many series there are. Order is the snapshot's sorted order: stable.
    """
    series = [s for s in ref.series if config.series is None or s in config.series]
    size = max(config.forecast.series_per_task, -(-len(series) // config.forecast.max_chunks))
    return [series[i : i + size] for i in range(0, len(series), size)]


def prepare_tracking(config: Config, tracking_uri: str | None = None) -> str:
    """Create the tracking store's schema and the experiment (idempotent); return the experiment id."""
    client = _client(config, tracking_uri)
    return registry.ensure_experiment(client.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)


def _by_series(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The snapshot's rows per series, split once: filtering the whole frame for each series cost
    ~30 ms per series at 1,000 series (quadratic in the panel size)."""
    return {str(series_id): rows for series_id, rows in frame.groupby("series_id", sort=False)}


def _series(frames: dict[str, pd.DataFrame], series_id: str, ref: SnapshotRef) -> pd.Series:
    rows = frames.get(series_id)
    if rows is None:
        raise KeyError(f"series {series_id!r} has no rows in snapshot {ref.sha256[:12]}")
    return training.daily_series(rows, series_id, pd.Timestamp(ref.window_end))


def _client(config: Config, tracking_uri: str | None) -> Any:
    return registry.open_client(tracking_uri or config.mlflow.tracking_uri)


def train_chunk(
    config: Config, ref: SnapshotRef, series_ids: list[str], logical_date: str, run_id: str, tracking_uri: str | None = None
) -> list[dict[str, Any]]:
    """Fit (or reuse) one candidate per series; each new fit is an MLflow run and a registered version."""
    check_config_matches(config, ref)
    client = _client(config, tracking_uri)
    experiment_id = registry.ensure_experiment(client.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)
    frames = _by_series(read_snapshot(ref))
    code = registry.code_version()
    out = []
    for series_id in series_ids:
        name = registry.model_name(config.mlflow.model_prefix, series_id)
        y = _series(frames, series_id, ref)
        data_sha = registry.series_sha256(y)
        key = registry.idempotency_key(data_sha, config.sha256, code)
        existing = registry.find_version_by_key(client, name, key)
        if existing is not None:
            log.info("%s: reusing v%s (same data, config and code: no refit)", series_id, existing.version)
            out.append({"series_id": series_id, "model_name": name, "version": str(existing.version), "reused": True, "error": None})
            continue
        champion = registry.production_version(client, name, config.mlflow.champion_alias, ref.window_end)
        warm = training.warm_start_params(registry.spec_of(champion)) if config.forecast.warm_start else None
        try:
            fitted = training.fit_series(y, config.forecast, start_params=warm)
        except training.ModelFitError as exc:
            # One unfit series must not sink the others: the gate rejects it and its champion stays.
            log.error("%s", exc)
            out.append({"series_id": series_id, "model_name": name, "version": None, "reused": False, "error": str(exc)})
            continue
        forecast = fitted.forecast(config.forecast.horizon_days, config.forecast.interval_levels)
        tags = {
            registry.TAG_KEY: key,
            "logical_date": logical_date,
            "airflow_run_id": run_id,
            "snapshot_sha256": ref.sha256,
            "data_sha256": data_sha,
            "config_sha256": config.sha256,
            "code_version": code,
            "warm_start": str(warm is not None).lower(),
        }
        params = {
            "order": list(fitted.spec.order), "seasonal_order": list(fitted.spec.seasonal_order),
            "closed_weekdays": list(fitted.spec.closed_weekdays), "history_start": str(y.index.min().date()),
            "history_end": str(y.index.max().date()), "horizon_days": config.forecast.horizon_days,
            "transform": fitted.spec.transform, "interval_z": fitted.spec.z,
        }
        version = registry.log_candidate(
            client, experiment_id, name, series_id, fitted, y, forecast, tags, params,
            config.forecast.horizon_days, config.forecast.interval_levels,
        )
        out.append({"series_id": series_id, "model_name": name, "version": str(version.version), "reused": False, "error": None, "fit_seconds": fitted.fit_seconds})
    return out


def evaluate_chunk(config: Config, ref: SnapshotRef, trained: list[dict[str, Any]], tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Backtest candidate, seasonal naive and the current champion on the same folds, per series."""
    check_config_matches(config, ref)
    client = _client(config, tracking_uri)
    frames = _by_series(read_snapshot(ref))
    out = []
    for item in trained:
        series_id, name = item["series_id"], item["model_name"]
        # The champion this date is compared with: as of its own logical date (ref.window_end), so a
        # backfilled date is judged against the model that served it, not one fitted on its future.
        champion = registry.production_version(client, name, config.mlflow.champion_alias, ref.window_end)
        result = {**item, "champion_version": str(champion.version) if champion else None, "metrics": None}
        if item.get("version") is None:
            out.append(result)
            continue
        version = client.get_model_version(name, item["version"])
        previous = json.loads(version.tags.get("backtest", "null") or "null")
        if previous and (item.get("reused") or previous.get("champion_version") == result["champion_version"]):
            # Rerun (same data + config + code): the recorded evaluation stands, so the gate decision and
            # what is published cannot change because other runs moved the alias in the meantime.
            result["metrics"] = previous
            result["champion_version"] = previous.get("champion_version")
            out.append(result)
            continue
        y = _series(frames, series_id, ref)
        metrics: dict[str, Any] = {
            "candidate": _backtest_spec(y, registry.spec_of(version), config).to_dict(),
            "naive": evaluation.backtest(y, evaluation.seasonal_naive(config.backtest.season_length), config.backtest).to_dict(),
            "champion": None,
            "champion_version": result["champion_version"],
        }
        if champion is not None and str(champion.version) != str(version.version):
            metrics["champion"] = _backtest_spec(y, registry.spec_of(champion), config).to_dict()
        registry.record_evaluation(client, version, metrics)
        result["metrics"] = metrics
        out.append(result)
    return out


def _backtest_spec(y: pd.Series, spec: training.ModelSpec, config: Config) -> evaluation.Metrics:
    """Refit a recorded spec's order on each fold, warm-started from its parameters (same protocol for all)."""
    warm = training.warm_start_params(spec)

    def forecaster(train: pd.Series, horizon: int) -> pd.DataFrame:
        fitted = training.fit_series(train, config.forecast, start_params=warm, orders=(spec.order,))
        return fitted.forecast(horizon, config.forecast.interval_levels)

    return evaluation.backtest(y, forecaster, config.backtest)


def gate_all(config: Config, evaluated: list[dict[str, Any]], tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Apply the gate to every series and record the outcome on each candidate version."""
    client = _client(config, tracking_uri)
    decisions = []
    for item in sorted(evaluated, key=lambda i: i["series_id"]):
        metrics = item.get("metrics") or {}
        decision = gate.decide(
            item["series_id"], item["model_name"], item.get("version"), metrics.get("candidate"), metrics.get("naive"),
            item.get("champion_version"), metrics.get("champion"), config.gate, error=item.get("error"),
        )
        if decision.candidate_version:
            client.set_model_version_tag(decision.model_name, decision.candidate_version, "gate_passed", str(decision.passed).lower())
            client.set_model_version_tag(decision.model_name, decision.candidate_version, "gate_reasons", "; ".join(decision.reasons))
        decisions.append(decision.to_dict())
    return decisions


def save_json(config: Config, kind: str, name: str, payload: Any) -> Path:
    """Write a report (gate decisions, promotions) under storage.root/<kind>/<name>.json."""
    target = config.storage_root / kind / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, default=str))
    return target


def champion_forecasts(
    config: Config, ref: SnapshotRef, logical_date: dt.date, run_id: str, tracking_uri: str | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Forecast every series with the model that serves `logical_date` (registry.production_version):
    the champion, or for a backfilled older date the newest gate-passed version trained for it or earlier.

    Returns the rows to publish and the series that have no champion yet (nothing published for them).
    """
    client = _client(config, tracking_uri)
    frames = _by_series(read_snapshot(ref))
    parts, missing = [], []
    for series_id in [s for s in ref.series if config.series is None or s in config.series]:
        name = registry.model_name(config.mlflow.model_prefix, series_id)
        champion = registry.production_version(client, name, config.mlflow.champion_alias, logical_date.isoformat())
        if champion is None:
            missing.append(series_id)
            continue
        y = _series(frames, series_id, ref)
        forecast = training.forecast_with_spec(y, registry.spec_of(champion), config.forecast.horizon_days, config.forecast.interval_levels)
        parts.append(forecast_rows(series_id, forecast, name, str(champion.version), logical_date, run_id))
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return rows, missing
