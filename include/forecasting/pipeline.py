"""The steps of the sales_forecast DAG as plain functions: each DAG task is a few lines around one of
these. They take the validated Config, small references (snapshot, versions) and an MlflowClient, and
return JSON-ready dicts for XCom. No Airflow import, so the whole chain runs in unit tests too."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.forecasting import anomaly, evaluation, gate, holiday_effects, registry, training
from include.forecasting.config import Config
from include.forecasting.extract import SnapshotRef, history_window, normalise, read_snapshot, write_snapshot
from include.forecasting.frequency import Cadence, detect_cadence, from_name
from include.forecasting.publish import FALLBACK_VERSION, forecast_rows
from include.forecasting.validation import DataValidationError, negatives_as_no_sale, rows_from, save_report, validate_frame

# What a per-series failure of the modelling code can raise: caught per series (that series is quarantined,
# the others go on). Store and network errors are not in this list: they fail the task, which retries.
SERIES_ERRORS = (training.ModelFitError, ArithmeticError, ValueError, KeyError, IndexError, np.linalg.LinAlgError)

log = logging.getLogger(__name__)


def check_config_matches(config: Config, ref: SnapshotRef) -> None:
    """Refuse to go on if the config changed between extract and this task (a run uses one config)."""
    if ref.config_sha256 != config.run_sha256:
        raise RuntimeError(
            f"config {config.path} changed since extract (hash {config.run_sha256[:12]} != {ref.config_sha256[:12]}): "
            "rerun the whole DAG run"
        )


def validate_snapshot(config: Config, ref: SnapshotRef) -> tuple[SnapshotRef, dict[str, Any]]:
    """Validate a snapshot; save the full report; raise DataValidationError naming failures that block the
    run. Returns the reference completed with the panel's cadence and the series quarantined by per-series
    rules (too little history, stale, gaps), and the report summary."""
    frame = read_snapshot(ref)
    report = validate_frame(frame, config, dt.date.fromisoformat(ref.window_end), ref.sha256, ref.raw_duplicates, ref.delivery_rows)
    path = save_report(report, config.storage_root)
    if not report.success:
        raise DataValidationError(report)
    if report.history_start is not None or report.negatives_zeroed:
        # What trains is what was validated (a snapshot of its own, content-addressed like extract's): after
        # a long hole in the panel, the rows after it; with validation.negative_values "zero", negative
        # values as no sale.
        kept = negatives_as_no_sale(frame)[0] if report.negatives_zeroed else frame
        if report.history_start is not None:
            kept = rows_from(kept, pd.Timestamp(report.history_start), from_name(report.cadence or "daily"))
        window = (dt.date.fromisoformat(ref.window_start), dt.date.fromisoformat(ref.window_end))
        ref = write_snapshot(kept, config.storage_root, window, ref.config_sha256, ref.raw_duplicates, ref.delivery_rows)
    checked = SnapshotRef.from_dict({**ref.to_dict(), "cadence": report.cadence, "quarantined": report.quarantined, "bad_rows": report.bad_rows})
    return checked, {**report.to_dict(), "report_path": str(path)}


def selected_series(config: Config, ref: SnapshotRef) -> list[str]:
    """The snapshot's series that the config selects (all, or the configured list)."""
    wanted = config.series_ids
    return [s for s in ref.series if wanted is None or s in wanted]


def plan_chunks(config: Config, ref: SnapshotRef, only: list[str] | None = None) -> list[list[str]]:
    """Series to train, in chunks of `series_per_task`, grown so there are at most `max_chunks` chunks.

    One mapped task per chunk: the scheduler's task count stays bounded (and below Airflow's
    max_map_length) however many series there are. Order is the snapshot's sorted order: stable.
    Series quarantined by validation are not trained. `only` (names as a user types them: case and
    spacing forgiven) narrows the run; an unknown name raises LookupError naming the closest.
    """
    series = [s for s in selected_series(config, ref) if s not in (ref.quarantined or {})]
    if only:
        from include.forecasting.overview import match_series

        wanted = {found for name in only for found in match_series(selected_series(config, ref), name)}
        series = [s for s in series if s in wanted]
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


def cadence_of(ref: SnapshotRef) -> Cadence:
    """The panel cadence validation recorded on the reference (daily for references written before it)."""
    return from_name(ref.cadence or "daily")


def _series(frames: dict[str, pd.DataFrame], series_id: str, ref: SnapshotRef) -> pd.Series:
    rows = frames.get(series_id)
    if rows is None:
        raise KeyError(f"series {series_id!r} has no rows in snapshot {ref.sha256[:12]}")
    return training.period_series(rows, series_id, pd.Timestamp(ref.window_end), cadence_of(ref))


def settings(config: Config, ref: SnapshotRef) -> training.ModelSettings:
    """The model settings for this snapshot's cadence."""
    return training.settings_for(config.forecast, cadence_of(ref), config.anomaly)


def _client(config: Config, tracking_uri: str | None) -> Any:
    return registry.open_client(tracking_uri or config.mlflow.tracking_uri)


def train_chunk(
    config: Config,
    ref: SnapshotRef,
    series_ids: list[str],
    logical_date: str,
    run_id: str,
    tracking_uri: str | None = None,
    retrain: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Fit (or reuse) one candidate per series; each new fit is an MLflow run and a registered version.

    `retrain` maps series to a reason (the monitor flagged it, or an operator forced it): those are refit
    even when a version with the same key exists, and the reason is recorded on the new version."""
    retrain = retrain or {}
    check_config_matches(config, ref)
    client = _client(config, tracking_uri)
    experiment_id = registry.ensure_experiment(client.tracking_uri, config.mlflow.experiment, config.mlflow.artifact_root)
    frames = _by_series(read_snapshot(ref))
    model_settings = settings(config, ref)
    code = registry.code_version()
    out = []
    for series_id in series_ids:
        name = registry.model_name(config.mlflow.model_prefix, series_id)
        y = _series(frames, series_id, ref)
        data_sha = registry.series_sha256(y)
        key = registry.idempotency_key(data_sha, config.sha256, code)
        listed = registry.versions(client, name)
        existing = registry.find_version_by_key(client, name, key, listed)
        reason = retrain.get(series_id)
        if existing is not None and reason:
            log.info("%s: refitting although v%s has the same key: %s", series_id, existing.version, reason)
        elif existing is not None:
            log.info("%s: reusing v%s (same data, config and code: no refit)", series_id, existing.version)
            out.append({"series_id": series_id, "model_name": name, "version": str(existing.version), "reused": True, "error": None})
            continue
        champion = registry.production_version(client, name, config.mlflow.champion_alias, ref.window_end)
        champion_spec = registry.spec_of(champion)
        warm = training.warm_start_params(champion_spec) if config.forecast.warm_start else None
        try:
            fitted = training.fit_series(y, model_settings, start_params=warm)
            forecast = fitted.forecast(model_settings.horizon, model_settings.interval_levels)
        except SERIES_ERRORS as exc:
            # One unfit series must not sink the others: it is quarantined and its champion stays.
            log.warning("%s: quarantined: %s", series_id, exc)
            out.append({"series_id": series_id, "model_name": name, "version": None, "reused": False, "error": f"fit failed: {exc}"})
            continue
        tags = {
            registry.TAG_KEY: key,
            "logical_date": logical_date,
            "airflow_run_id": run_id,
            "snapshot_sha256": ref.sha256,
            "data_sha256": data_sha,
            "config_sha256": config.sha256,
            "code_version": code,
            "warm_start": str(warm is not None).lower(),
            **({"retrain_reason": reason[:4000]} if reason else {}),
        }
        params = {
            "model": fitted.spec.label, "order": list(fitted.spec.order), "seasonal_order": list(fitted.spec.seasonal_order),
            "closed_weekdays": list(fitted.spec.closed_weekdays), "history_start": str(y.index.min().date()),
            "history_end": str(y.index.max().date()), "horizon": model_settings.horizon, "cadence": fitted.spec.cadence,
            "transform": fitted.spec.transform, "interval_z": fitted.spec.z,
        }
        try:
            version = registry.log_candidate(
                client, experiment_id, name, series_id, fitted, y, forecast, tags, params,
                model_settings.horizon, model_settings.interval_levels, source=ref.path,
            )
        except registry.SlugCollisionError as exc:
            # Not retriable, and only this series' problem: quarantine it, train the others.
            log.warning("%s: quarantined: %s", series_id, exc)
            out.append({"series_id": series_id, "model_name": name, "version": None, "reused": False, "error": str(exc)})
            continue
        out.append(
            {
                "series_id": series_id, "model_name": name, "version": str(version.version), "reused": False, "error": None,
                "fit_seconds": fitted.fit_seconds,
                # Against the newest earlier version too: a candidate the gate rejects has still reported.
                "new_spikes": new_spikes(fitted.spec, champion_spec, registry.spec_of(listed[0]) if listed else None),
            }
        )
    return out


def new_spikes(spec: training.ModelSpec, *earlier: training.ModelSpec | None) -> dict[str, float]:
    """The periods (date -> value) this fit left out as spikes that none of the `earlier` fits (the
    champion, the series' newest version) had: what the run reports, once, when a spike is first seen."""
    known = {d for e in earlier if e is not None for d in e.spikes_left_out}
    return {d: v for d, v in spec.spikes_left_out.items() if d not in known}


def spikes_by_series(trained: list[list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """series -> its newly left-out spike periods, from every training chunk's records (the run report's
    "spikes_left_out"; chunks that failed for good are None)."""
    return {r["series_id"]: r["new_spikes"] for chunk in trained if chunk for r in chunk if r.get("new_spikes")}


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
        model_settings = settings(config, ref)
        folds, horizon, m = config.backtest.folds, model_settings.horizon, model_settings.cadence.naive_lag
        spikes = spike_mask(y, model_settings)  # one MASE scale for every method of the series
        try:
            metrics: dict[str, Any] = {
                "candidate": _backtest_spec(y, registry.spec_of(version), model_settings, folds, spikes).to_dict(),
                "naive": _backtest(y, evaluation.seasonal_naive(m), folds, horizon, m, spikes).to_dict(),
                "champion": None,
                "champion_version": result["champion_version"],
            }
            if champion is not None and str(champion.version) != str(version.version):
                # The champion as the model it is: its own orders and holiday calendar, re-estimated on
                # each fold's history only, so a worse candidate configuration loses to it.
                metrics["champion"] = _backtest_spec(y, registry.spec_of(champion), model_settings, folds, spikes).to_dict()
                recorded = json.loads(champion.tags.get("backtest", "null") or "null") or {}
                metrics["champion_recorded"] = recorded.get("candidate")
        except SERIES_ERRORS as exc:
            # A backtest that cannot run (a fold refit with no stable order, too short a history for the
            # folds) quarantines this series only.
            log.warning("%s: quarantined: backtest failed: %s", series_id, exc)
            out.append({**result, "error": f"backtest failed: {exc}"})
            continue
        registry.record_evaluation(client, version, metrics)
        result["metrics"] = metrics
        out.append(result)
    return out


def spike_mask(y: pd.Series, model_settings: training.ModelSettings) -> np.ndarray | None:
    """The periods of `y` the configured spike rule flags, as a mask for the MASE scale; None without a
    rule. These are the periods training leaves out, up to holidays (training judges the series with its
    holidays already left out, so the two can differ around a holiday; every method's scale uses this
    one mask). The rule judges each period by the periods before it only, so the mask
    of the whole series holds for every fold's history."""
    return anomaly.spike_mask(y, model_settings.cadence, model_settings.spike_rule)


def _backtest_spec(
    y: pd.Series, spec: training.ModelSpec, model_settings: training.ModelSettings, folds: int, spikes: np.ndarray | None = None
) -> evaluation.Metrics:
    """Backtest a recorded model as the model it is: its orders, seasonal order and holiday calendar,
    re-estimated on each fold's history. No parameter ever saw a fold's test periods: the first fold
    starts cold and each later fold warm-starts from the fold before it (whose history it contains).
    A fold where that order is rejected falls back through the guarded candidate search."""
    calendar = tuple(spec.holidays) if holiday_effects.is_package_calendar(tuple(spec.holidays)) else None
    members = spec.member_specs()
    orders = tuple(tuple(m.order) for m in members)
    own = dataclasses.replace(
        model_settings,
        seasonal_order=tuple(spec.seasonal_order),
        combine=len(members),
        holidays=calendar or (model_settings.holidays if spec.holiday_effect else None),
    )
    previous: dict[str, Any] = {}

    def forecaster(train: pd.Series, horizon: int) -> pd.DataFrame:
        # The model's own orders first; the configured candidates, then the safe orders, stand in for
        # one rejected on a fold, as in training.
        fitted = training.fit_series(train, own, start_params=previous.get("start"), orders=orders)
        previous["start"] = training.warm_start_params(fitted.spec)
        return fitted.forecast(horizon, own.interval_levels)

    return _backtest(y, forecaster, folds, own.horizon, own.cadence.naive_lag, spikes)


def _backtest(y: pd.Series, forecaster: evaluation.Forecaster, folds: int, horizon: int, m: int, spikes: np.ndarray | None = None) -> evaluation.Metrics:
    """A backtest on the folds every method of a series is scored on (candidate, seasonal naive, champion):
    each fold trains on at least what a fit needs, in periods and in periods with a sale; the MASE scale
    leaves out the `spikes` periods."""
    return evaluation.backtest(y, forecaster, folds, horizon, m, training.MIN_FIT_PERIODS, training.MIN_FIT_PERIODS, spikes)


def gate_all(config: Config, evaluated: list[dict[str, Any]], tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """Apply the gate to every series and record the outcome on each candidate version."""
    client = _client(config, tracking_uri)
    decisions = []
    for item in sorted(evaluated, key=lambda i: i["series_id"]):
        metrics = item.get("metrics") or {}
        try:
            decision = gate.decide(
                item["series_id"], item["model_name"], item.get("version"), metrics.get("candidate"), metrics.get("naive"),
                item.get("champion_version"), metrics.get("champion"), config.gate, error=item.get("error"),
                champion_recorded=metrics.get("champion_recorded"),
            )
        except SERIES_ERRORS as exc:
            # Metrics the gate cannot read (a malformed record): that series has no candidate to judge, is
            # quarantined and keeps its champion; the others are decided.
            log.warning("%s: quarantined: gate failed: %s", item["series_id"], exc)
            decision = gate.decide(
                item["series_id"], item["model_name"], item.get("version"), None, None, item.get("champion_version"), None,
                config.gate, error=f"gate failed: {type(exc).__name__}: {exc}",
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
    config: Config,
    ref: SnapshotRef,
    logical_date: dt.date,
    run_id: str,
    tracking_uri: str | None = None,
    errors: dict[str, str] | None = None,
    only: list[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Forecast every selected series with the model that serves `logical_date` (registry.production_version):
    the champion, or for a backfilled older date the newest gate-passed version trained for it or earlier.

    Per series, the outcome says what was published: `champion` (with its version), `fallback` (no champion
    yet: a seasonal-naive forecast with empirical intervals, model_version "fallback:seasonal_naive"), or
    `quarantined` (nothing new published; its earlier rows and its champion stay as they were).
    A series is quarantined by validation (`ref.quarantined`), by a failed fit or backtest (`errors`, from
    the gate decisions) or by a failed forecast here; with no champion it still gets the fallback, unless
    validation found bad or anomalous rows in it (`ref.bad_rows`).
    `only` limits the work to these series (a republish after a rollback).
    """
    client = _client(config, tracking_uri)
    frames = _by_series(read_snapshot(ref))
    model_settings = settings(config, ref)
    horizon, levels = model_settings.horizon, model_settings.interval_levels
    quarantined = {**(ref.quarantined or {}), **(errors or {})}
    parts, outcomes = [], {}
    for series_id in selected_series(config, ref):
        if only is not None and series_id not in only:
            continue
        name = registry.model_name(config.mlflow.model_prefix, series_id)
        champion = registry.production_version(client, name, config.mlflow.champion_alias, logical_date.isoformat())
        owner = champion.tags.get("series_id", series_id) if champion is not None else series_id
        if owner != series_id:  # the registered name belongs to another series (slug collision)
            champion = None
            quarantined.setdefault(series_id, f"registered model {name} belongs to series {owner!r} (slug collision)")
        if series_id in quarantined and (champion is not None or series_id in (ref.bad_rows or ())):
            # A champion keeps serving its published rows; a series whose rows are known bad or flagged as
            # anomalous gets no fallback either (it would be computed from those rows).
            outcomes[series_id] = {"status": "quarantined", "reason": quarantined[series_id], "version": str(champion.version) if champion else None}
            continue
        try:
            y = _series(frames, series_id, ref)
            if champion is None:
                forecast = fallback_forecast(y, model_settings)
                version, status = FALLBACK_VERSION, "fallback"
            else:
                forecast = training.forecast_with_spec(y, registry.spec_of(champion), horizon, levels)
                version, status = str(champion.version), "champion"
            values = forecast[[c for c in forecast.columns if c.startswith("yhat")]].to_numpy(dtype=float)
            if not np.isfinite(values).all() or (values < 0).any():
                raise ValueError(f"forecast has non-finite or negative values: {values.min():.3g}..{values.max():.3g}")
        except SERIES_ERRORS as exc:
            log.warning("%s: quarantined at publish: %s", series_id, exc)
            outcomes[series_id] = {"status": "quarantined", "reason": f"forecast failed: {exc}", "version": str(champion.version) if champion else None}
            continue
        parts.append(forecast_rows(series_id, forecast, name, version, logical_date, run_id, as_of=y.index.max()))
        outcomes[series_id] = {"status": status, "version": version, "reason": quarantined.get(series_id)}
    rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return rows, outcomes


def served_forecasts(
    config: Config, frame: pd.DataFrame, logical_date: dt.date, series_ids: list[str], run_id: str, tracking_uri: str | None = None
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Forecast `series_ids` for `logical_date` with the versions that serve that date now, from `frame`
    (that date's history window, as extract returns it): what a rollback republishes, so the warehouse
    shows what the registry serves. Rows and per-series outcomes as `champion_forecasts` returns them."""
    frame = normalise(frame)
    window = history_window(logical_date, config.forecast.history_days)
    ref = write_snapshot(frame, config.storage_root, window, config.run_sha256)
    ref = SnapshotRef.from_dict({**ref.to_dict(), "cadence": detect_cadence(frame, config.source.frequency, config.source.week_dated_on).label})
    return champion_forecasts(config, ref, logical_date, run_id, tracking_uri, only=list(series_ids))


def fallback_forecast(y: pd.Series, model_settings: training.ModelSettings) -> pd.DataFrame:
    """Seasonal naive with empirical intervals, on the series' own future period dates.

    Periods the spike rule flags are left out, as training leaves them out: each takes the value of the
    same period one season before it (0 if there is none). Copied as they are, a spike within the last
    season would be forecast again, and any spike in the error window would widen every interval."""
    cadence = model_settings.cadence
    spikes = spike_mask(y, model_settings)
    if spikes is not None and spikes.any():
        phase = np.arange(len(y)) % max(cadence.naive_lag, 1)
        y = y.mask(spikes).groupby(phase).ffill().fillna(0.0)
    frame = evaluation.seasonal_naive(cadence.naive_lag, model_settings.interval_levels)(y, model_settings.horizon)
    return frame.assign(forecast_date=cadence.future(y.index.max(), model_settings.horizon))


def series_outcomes(published: dict[str, dict[str, Any]], failures: list[dict[str, Any]]) -> dict[str, Any]:
    """Every selected series' fate in one run, for the report and the aggregated alert.

    `published` is champion_forecasts' outcome per series; `failures` are mapped tasks that failed for good
    (their series never reached publishing, so they are quarantined with the task's cause).
    """
    quarantined = {s: o["reason"] or "quarantined" for s, o in published.items() if o["status"] == "quarantined"}
    quarantined.update({s: o["reason"] for s, o in published.items() if o["status"] == "fallback" and o.get("reason")})
    for f in failures:
        for series_id in f.get("series") or []:
            quarantined.setdefault(series_id, f"{f.get('task_id')} failed: {f.get('cause')}")
    return {
        "published": sorted(s for s, o in published.items() if o["status"] in ("champion", "fallback")),
        "fallback": sorted(s for s, o in published.items() if o["status"] == "fallback"),
        "quarantined": dict(sorted(quarantined.items())),
    }


def decision_errors(decisions: list[dict[str, Any]]) -> dict[str, str]:
    """series -> why it had no candidate to judge (fit or backtest failed), from the gate decisions."""
    return {d["series_id"]: d["error"] for d in decisions if d.get("error")}
