"""One monitor run, from frames to table rows: what the forecast_monitor DAG's task calls.

The DAG reads the inputs (published forecasts, the actuals window, model versions' recorded backtests)
through hooks and writes the outputs through hooks; everything between is here, testable without Airflow.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from include.forecasting import charts, monitoring
from include.forecasting.config import Config
from include.forecasting.frequency import Cadence, CadenceError, detect_cadence
from include.forecasting.validation import negatives_as_configured


@dataclass
class MonitorResult:
    """The rows for the three monitor tables plus the run's summary."""

    accuracy: pd.DataFrame
    health: pd.DataFrame
    actuals: pd.DataFrame
    summary: dict[str, Any]
    cadence: str


def history_cadence(config: Config, history: pd.DataFrame) -> Cadence | None:
    """The cadence of the actuals window (`history`), or None when it is empty or has none (`assess`
    then says why). Detected once per monitor run: at 1,000 daily series it takes ~1 s."""
    if history.empty:
        return None
    try:
        return detect_cadence(history, config.source.frequency, config.source.week_dated_on)
    except CadenceError:
        return None


def lookback(config: Config, monitor_date: dt.date, cadence: Cadence | None = None) -> tuple[dt.date, dt.date]:
    """Logical dates of the forecasts a monitor run scores: the last `monitor.lookback_days` days, and at
    least `monitor.min_scored` + 1 periods of the panel's `cadence` (`history_cadence`).

    Why: a verdict needs `min_scored` scored periods. Daily and weekly forecasts published over 60 days
    hold that many; monthly ones published over 60 days hold two months, so no monthly series would
    ever be judged. Without a cadence the configured days stand.
    """
    days = config.monitor.lookback_days
    if cadence is not None:
        days = max(days, (config.monitor.min_scored + 1) * cadence.period_days)
    return monitor_date - dt.timedelta(days=days), monitor_date


def assess(
    config: Config,
    forecasts: pd.DataFrame,
    history: pd.DataFrame,
    monitor_date: dt.date,
    backtest_of: Callable[[str, str], dict[str, Any] | None],
    cadence: Cadence | None = None,
) -> MonitorResult:
    """Score published forecasts against arrived actuals, judge degradation and drift per series.

    `history` is the extract of the training window ending at `monitor_date` (sales_date, series_id,
    value); `backtest_of(model_name, version)` returns the version's recorded backtest (or None);
    `cadence` is `history_cadence` of it when the caller has it (detected here otherwise, which raises
    naming the cadences found when there is none).
    """
    if history.empty:
        empty = monitoring.combine(pd.DataFrame(columns=["series_id", "degraded", "reasons", "scored_periods", "model_version"]), pd.DataFrame(columns=["series_id", "drift_statistic", "drift_p_value", "drifted", "drift_reason"]), monitor_date)
        return MonitorResult(pd.DataFrame(columns=monitoring.ACCURACY_COLUMNS), empty, pd.DataFrame(columns=monitoring.ACTUALS_COLUMNS), monitoring.summary(empty), "unknown")
    history = negatives_as_configured(history, config)[0]  # actuals as training saw them
    cadence = cadence or detect_cadence(history, config.source.frequency, config.source.week_dated_on)
    # Where a few series' rows run ahead of the day most series' rows end on (validation's ragged end), the
    # others' actuals have arrived only through that day.
    ragged = (config.anomaly, config.validation.max_staleness_periods)
    shared = monitoring.arrived_through(history, monitor_date, cadence, *ragged)
    actuals = monitoring.series_through(history, cadence, shared)
    raw = monitoring.arrived_through(history, monitor_date, cadence)
    arrived = monitoring.arrived_through(history, monitor_date) if shared == raw else shared
    accuracy = monitoring.accuracy_rows(forecasts, actuals, shared)
    expectations: dict[tuple[str, str], dict[str, float | None]] = {}
    if not accuracy.empty:
        names = forecasts.drop_duplicates("series_id").set_index("series_id")["model_name"].to_dict()
        for series_id, version in accuracy[["series_id", "model_version"]].drop_duplicates().itertuples(index=False):
            expectations[(series_id, version)] = monitoring.expectation(backtest_of(str(names.get(series_id, "")), str(version)))
    settings = config.monitor.settings(config.forecast.interval_levels[0])
    rule = config.anomaly.spike_rule()
    health = monitoring.series_health(accuracy, actuals, expectations, cadence, monitor_date, settings, rule)
    training_periods = max(len(cadence.grid(pd.Timestamp(monitor_date) - pd.Timedelta(days=config.forecast.history_days), pd.Timestamp(monitor_date))), settings.drift_recent_periods)
    drifted = monitoring.drift(actuals, training_periods, settings)
    combined = monitoring.combine(health, drifted, monitor_date)
    chart_rows = [
        pd.DataFrame({"series_id": series_id, "date": y.index[-config.monitor.chart_periods :].date, "actual": y.to_numpy(dtype=float)[-config.monitor.chart_periods :]})
        for series_id, y in actuals.items()
    ]
    actual_rows = pd.concat(chart_rows, ignore_index=True) if chart_rows else pd.DataFrame(columns=monitoring.ACTUALS_COLUMNS)
    return MonitorResult(accuracy, combined, actual_rows, monitoring.summary(combined, arrived=arrived), cadence.label)


def flagged(health: pd.DataFrame, retrain_on: list[str]) -> list[dict[str, Any]]:
    """Health rows that warn (degraded or drifted, as `retrain_on` selects), JSON-ready, in series order."""
    rows = health[monitoring.flag_mask(health, retrain_on)].copy()
    return json.loads(rows.to_json(orient="records", date_format="iso"))


def run_outcomes(runs_dir: Path, monitor_date: dt.date) -> dict[str, Any]:
    """sales_forecast runs reported for the monitor date or the day before (report_series writes one JSON
    per run): how many ended ok / failed, and the series counts of the newest."""
    found = []
    for path in sorted(runs_dir.glob("*.json")) if runs_dir.exists() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        logical = data.get("logical_date")
        if logical and monitor_date - dt.timedelta(days=1) <= dt.date.fromisoformat(logical) <= monitor_date:
            found.append(data)
    newest = max(found, key=lambda d: d.get("logical_date", ""), default={})
    return {
        "ok": sum(1 for d in found if not d.get("failed_tasks")),
        "failed": sum(1 for d in found if d.get("failed_tasks")),
        "published": len(newest.get("published", [])),
        "quarantined": len(newest.get("quarantined", [])),
        "fallback": len(newest.get("fallback", [])),
    }


def report_series(result: MonitorResult, max_charts: int = 50) -> list[str]:
    """The series charted in the report: all of them up to `max_charts`; beyond that the flagged ones and
    then the worst by realized / expected MASE (1,000 charts make a report nobody opens)."""
    series = sorted(result.actuals["series_id"].unique()) if not result.actuals.empty else []
    if len(series) <= max_charts:
        return series
    health = result.health.assign(ratio=result.health["mase"] / result.health["expected_mase"])
    flagged = health[health["degraded"] | health["drifted"]]["series_id"].tolist()
    worst = health.sort_values("ratio", ascending=False, na_position="last")["series_id"].tolist()
    ordered = list(dict.fromkeys(flagged + worst))
    return sorted(s for s in ordered[:max_charts] if s in set(series))


def write_report(path: Path, monitor_date: dt.date, result: MonitorResult, forecasts: pd.DataFrame) -> Path:
    """The daily HTML report with a chart per series (history, forecasts with intervals, actuals); see
    `report_series` for which series are charted when there are many."""
    series = report_series(result)
    data = [charts.chart_data(s, result.actuals, forecasts) for s in series]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(charts.report_html(f"Sales forecast health {monitor_date}", result.summary, result.health, data))
    return path
