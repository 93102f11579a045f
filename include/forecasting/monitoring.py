"""How published forecasts are doing: realized accuracy, degradation against the backtest, data drift.

Pure functions over frames (no Airflow, no warehouse): the `forecast_monitor` DAG reads the published
forecasts and the actuals that have arrived since, and calls these.

- `accuracy_rows`: one row per published forecast period whose actual has arrived (the warehouse table
  `forecast_accuracy`). A period counts as arrived once the panel has any row on or after it; a series
  with no row on an arrived period sold 0 (the same rule training uses).
- `series_health`: per series, rolling metrics over the last `window_periods` forecast periods (MASE with
  the training history's seasonal-naive scale, RMSE, MAPE, bias, interval coverage), the same metrics of
  seasonal naive from each forecast's own origin, and the expectation recorded on the model version that
  made the forecasts (its backtest). Degraded = worse than expected by the configured margin, worse
  than seasonal naive, or an interval that held too few actuals (a one-sided binomial test of its
  coverage against the nominal level, scipy), at each of the last `degradation_periods` scored periods
  (one bad day is noise).
- `drift`: two-sample Kolmogorov-Smirnov test (scipy) of the recent periods against the training window
  before them. KS compares whole distributions (level, spread, zero share) without binning choices.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from include.forecasting.anomaly import newest_rows, shared_end, spike_mask
from include.forecasting.evaluation import mase_scale
from include.forecasting.frequency import Cadence
from include.forecasting.training import period_label, period_series

ACCURACY_COLUMNS = [
    "series_id", "logical_date", "forecast_date", "horizon", "yhat", "yhat_lower", "yhat_upper", "actual", "model_version",
]
HEALTH_COLUMNS = [
    "series_id", "monitor_date", "model_version", "scored_periods", "mase", "expected_mase", "naive_mase",
    "rmse", "expected_rmse", "mape", "expected_mape", "bias", "coverage", "expected_coverage",
    "drift_statistic", "drift_p_value", "degraded", "drifted", "reasons",
]
ACTUALS_COLUMNS = ["series_id", "date", "actual"]


@dataclass(frozen=True)
class MonitorSettings:
    """The thresholds of the monitor (config section `monitor`), in periods of the panel's cadence."""

    window_periods: int = 14
    min_scored: int = 7
    degradation_periods: int = 3
    mase_margin: float | None = 0.5
    rmse_margin: float | None = 0.5
    mape_margin: float | None = None
    vs_naive: bool = True
    drift_recent_periods: int = 28
    drift_p_value: float = 0.01
    drift_min_statistic: float = 0.3
    # The published interval (the first of forecast.interval_levels) held fewer actuals than `coverage_level`
    # at p < this (None: off).
    coverage_p_value: float | None = 0.01
    coverage_level: float = 0.8


def actual_series(history: pd.DataFrame, cadence: Cadence, end_exclusive: dt.date, rules: Any = None, staleness: int = 0) -> dict[str, pd.Series]:
    """Each series' sales on its cadence grid through the newest date the panel has before `end_exclusive`
    (gaps inside are 0). Periods after the panel's newest row have not arrived: they are not zeros, or a
    late delivery would read as every series collapsing. `rules` / `staleness`: as `arrived_through`."""
    return series_through(history, cadence, arrived_through(history, end_exclusive, cadence, rules, staleness))


def series_through(history: pd.DataFrame, cadence: Cadence, arrived: pd.Timestamp | None) -> dict[str, pd.Series]:
    """`actual_series` with the newest arrived period already known (`arrived_through`; None: nothing)."""
    if arrived is None:
        return {}
    end = cadence.period_end(arrived)
    return {
        str(series_id): period_series(rows, str(series_id), end, cadence)
        for series_id, rows in history.groupby("series_id", sort=True)
    }


def arrived_through(
    history: pd.DataFrame, end_exclusive: dt.date, cadence: Cadence | None = None, rules: Any = None, staleness: int = 0
) -> pd.Timestamp | None:
    """The newest date with any row in the panel before `end_exclusive`: actuals up to it have arrived.

    With `cadence`, the newest period of it that has also ended by `end_exclusive`: a month dated on its
    first day is an actual only after its last day (`Cadence.last_period_before`). With `rules` (the
    `anomaly` config) too, where most series' rows end on an earlier period and a few series' rows run
    ahead of it (`anomaly.ragged_end`, `staleness` = `validation.max_staleness_periods`: a date typed
    ahead, a delivery of only some series), that period: the others' periods after it have not arrived,
    and scored as zeros they would read as every series collapsing."""
    dates = pd.to_datetime(history["sales_date"])
    dates = dates[dates < pd.Timestamp(end_exclusive)]
    if dates.empty or cadence is None:
        return None if dates.empty else dates.max()
    newest = period_label(pd.DatetimeIndex([dates.max()]), cadence)[0]
    arrived = cadence.last_period_before(min(cadence.period_end(newest), pd.Timestamp(end_exclusive)))
    if rules is not None:
        ends, periods = newest_rows(dates, history.loc[dates.index, "series_id"], cadence, arrived)
        shared = shared_end(ends, periods, cadence, rules, staleness)
        arrived = shared if shared is not None else arrived
    return arrived


def accuracy_rows(forecasts: pd.DataFrame, actuals: dict[str, pd.Series], arrived: pd.Timestamp | None) -> pd.DataFrame:
    """Published forecast periods joined with their actuals, for the periods that have arrived
    (`arrived`: `arrived_through` with the panel's cadence, so a month still running is not scored).

    `horizon` is the period's position in its forecast (1 = the first period after the data it saw).
    A forecast of a series the panel no longer has is scored against 0 only if the panel arrived past it
    (a product that stopped selling); a series never seen in the actuals window is left out.
    """
    if forecasts.empty or arrived is None:
        return pd.DataFrame(columns=ACCURACY_COLUMNS)
    frame = forecasts.copy()
    frame["forecast_date"] = pd.to_datetime(frame["forecast_date"])
    frame["logical_date"] = pd.to_datetime(frame["logical_date"]).dt.date
    frame = frame.sort_values(["series_id", "logical_date", "forecast_date"])
    frame["horizon"] = frame.groupby(["series_id", "logical_date"]).cumcount() + 1
    frame = frame[frame["forecast_date"] <= arrived]
    rows = []
    for series_id, part in frame.groupby("series_id", sort=True):
        y = actuals.get(str(series_id))
        if y is None:
            continue
        part = part.assign(actual=y.reindex(part["forecast_date"]).fillna(0.0).to_numpy())
        rows.append(part)
    if not rows:
        return pd.DataFrame(columns=ACCURACY_COLUMNS)
    out = pd.concat(rows, ignore_index=True)
    out["forecast_date"] = out["forecast_date"].dt.date
    out["model_version"] = out["model_version"].astype(str)
    return out[ACCURACY_COLUMNS].reset_index(drop=True)


def _naive_predictions(rows: pd.DataFrame, y: pd.Series, m: int) -> np.ndarray:
    """Seasonal naive (lag m) from each row's own origin: the day before its logical date's first period."""
    index = {ts: i for i, ts in enumerate(y.index)}
    values = y.to_numpy(dtype=float)
    out = np.full(len(rows), np.nan)
    for k, (forecast_date, horizon) in enumerate(zip(pd.to_datetime(rows["forecast_date"]), rows["horizon"], strict=True)):
        i = index.get(forecast_date)
        if i is None:
            continue
        origin = i - int(horizon)  # last period the forecast saw
        source = origin - m + 1 + ((int(horizon) - 1) % m)
        if source >= 0:
            out[k] = values[source]
    return out


def _window_metrics(rows: pd.DataFrame, naive: np.ndarray, scale: float) -> dict[str, float | None]:
    actual = rows["actual"].to_numpy(dtype=float)
    pred = rows["yhat"].to_numpy(dtype=float)
    err = actual - pred
    nonzero = actual != 0
    valid_naive = ~np.isnan(naive)
    inside = (actual >= rows["yhat_lower"].to_numpy(dtype=float)) & (actual <= rows["yhat_upper"].to_numpy(dtype=float))

    def finite(value: float) -> float | None:
        return float(value) if value is not None and math.isfinite(value) else None

    # Coverage counted per forecast period: a period forecast from several origins is one draw, not several
    # (their misses are the same surprise), so the binomial test is not fooled by repeats.
    per_period = pd.Series(inside).groupby(pd.to_datetime(rows["forecast_date"]).to_numpy()).mean()
    return {
        "coverage_periods": len(per_period),
        "covered_periods": int(round(float(per_period.sum()))),
        "mase": finite(np.mean(np.abs(err)) / scale) if scale == scale and scale > 0 else None,
        "naive_mase": finite(np.mean(np.abs(actual[valid_naive] - naive[valid_naive])) / scale)
        if valid_naive.any() and scale == scale and scale > 0
        else None,
        "rmse": finite(np.sqrt(np.mean(err**2))),
        "mape": finite(np.mean(np.abs(err[nonzero] / actual[nonzero]))) if nonzero.any() else None,
        "bias": finite((pred.sum() - actual.sum()) / actual.sum()) if actual.sum() > 0 else None,
        "coverage": finite(np.mean(inside)),
    }


def _over(value: float | None, expected: float | None, margin: float | None) -> bool:
    return margin is not None and value is not None and expected is not None and value > expected * (1 + margin)


def _reasons(metrics: dict[str, float | None], expected: dict[str, float | None], settings: MonitorSettings) -> list[str]:
    out = []
    for name, margin in (("mase", settings.mase_margin), ("rmse", settings.rmse_margin), ("mape", settings.mape_margin)):
        if _over(metrics[name], expected.get(name), margin):
            out.append(f"{name.upper()} {metrics[name]:.3g} > expected {expected[name]:.3g} x {1 + margin:.2f}")
    if settings.vs_naive and metrics["mase"] is not None and metrics["naive_mase"] is not None and metrics["mase"] > metrics["naive_mase"]:
        out.append(f"MASE {metrics['mase']:.3g} worse than seasonal naive {metrics['naive_mase']:.3g}")
    if settings.coverage_p_value is not None and metrics["coverage_periods"]:
        from scipy.stats import binomtest

        n, k, level = int(metrics["coverage_periods"]), int(metrics["covered_periods"]), settings.coverage_level
        p = binomtest(k, n, level, alternative="less").pvalue
        if p < settings.coverage_p_value:
            out.append(f"{level:.0%} interval held {k} of {n} periods ({k / n:.2f}; binomial p {p:.2g} < {settings.coverage_p_value:g})")
    return out


def expectation(backtest: dict[str, Any] | None) -> dict[str, float | None]:
    """The candidate's backtest metrics recorded on a model version (its `backtest` tag), or empty."""
    candidate = (backtest or {}).get("candidate") or {}
    return {k: candidate.get(k) for k in ("mase", "rmse", "mape", "coverage_80")}


def series_health(
    accuracy: pd.DataFrame,
    actuals: dict[str, pd.Series],
    expectations: dict[tuple[str, str], dict[str, float | None]],
    cadence: Cadence,
    monitor_date: dt.date,
    settings: MonitorSettings,
    spike_rule: tuple[float, ...] = (),
) -> pd.DataFrame:
    """Per series: rolling realized metrics, expectation, degradation verdict and its reasons.

    `spike_rule` (config anomaly.spike_ratio, spike_mad, spike_ratio_always): the periods it flags are left out of the MASE
    scale, as in the backtest that recorded the expectation, so the two MASEs are on one scale.

    `expectations` maps (series_id, model_version) -> expected metrics (see `expectation`); a fallback version has none
    and is judged against seasonal naive only.
    """
    m = max(cadence.naive_lag, 1)
    out = []
    for series_id, rows in accuracy.groupby("series_id", sort=True):
        y = actuals.get(str(series_id))
        if y is None:
            continue
        rows = rows.sort_values(["forecast_date", "logical_date"]).reset_index(drop=True)
        dates = sorted(pd.to_datetime(rows["forecast_date"]).unique())
        # The MASE scale from the history before the scored periods: what the models were trained on.
        before = y[y.index < pd.Timestamp(dates[0])]
        train = before.to_numpy(dtype=float)
        scale = mase_scale(train, m, spike_mask(before, cadence, spike_rule)) if len(train) > m else float("nan")
        naive = _naive_predictions(rows, y, m)
        version = str(rows["model_version"].iloc[-1])
        expected = expectations.get((str(series_id), version), {})
        verdicts = []
        for k in range(min(settings.degradation_periods, len(dates))):
            end = dates[len(dates) - 1 - k]
            start = dates[max(0, len(dates) - 1 - k - settings.window_periods + 1)]
            in_window = (pd.to_datetime(rows["forecast_date"]) >= start) & (pd.to_datetime(rows["forecast_date"]) <= end)
            window_rows = rows[in_window.to_numpy()]
            scored = window_rows["forecast_date"].nunique()
            metrics = _window_metrics(window_rows, naive[in_window.to_numpy()], scale)
            verdicts.append((metrics, _reasons(metrics, expected, settings) if scored >= settings.min_scored else [], scored))
        latest, latest_reasons, scored = verdicts[0]
        degraded = len(verdicts) >= settings.degradation_periods and all(reasons for _, reasons, _ in verdicts)
        out.append(
            {
                "series_id": str(series_id),
                "monitor_date": monitor_date,
                "model_version": version,
                "scored_periods": int(scored),
                "mase": latest["mase"],
                "expected_mase": expected.get("mase"),
                "naive_mase": latest["naive_mase"],
                "rmse": latest["rmse"],
                "expected_rmse": expected.get("rmse"),
                "mape": latest["mape"],
                "expected_mape": expected.get("mape"),
                "bias": latest["bias"],
                "coverage": latest["coverage"],
                "expected_coverage": expected.get("coverage_80"),
                "degraded": bool(degraded),
                "reasons": "; ".join(latest_reasons) if degraded else "",
            }
        )
    return pd.DataFrame(out, columns=[c for c in HEALTH_COLUMNS if c not in ("drift_statistic", "drift_p_value", "drifted")])


def drift(actuals: dict[str, pd.Series], training_periods: int, settings: MonitorSettings) -> pd.DataFrame:
    """Per series: KS statistic and p-value of the last `drift_recent_periods` periods against the
    `training_periods` before them; drifted when p < drift_p_value and the statistic >= drift_min_statistic
    (with a year of daily data a tiny, harmless shift is already "significant": the statistic is the size)."""
    from scipy.stats import ks_2samp

    rows = []
    recent_n = settings.drift_recent_periods
    for series_id, y in sorted(actuals.items()):
        values = y.to_numpy(dtype=float)
        recent, reference = values[-recent_n:], values[:-recent_n][-training_periods:]
        if len(recent) < recent_n or len(reference) < recent_n:
            rows.append({"series_id": series_id, "drift_statistic": None, "drift_p_value": None, "drifted": False, "drift_reason": ""})
            continue
        result = ks_2samp(recent, reference)
        drifted = bool(result.pvalue < settings.drift_p_value and result.statistic >= settings.drift_min_statistic)
        reason = (
            f"drift: KS {result.statistic:.2f} (p={result.pvalue:.1e}) of the last {recent_n} periods "
            f"(median {np.median(recent):.4g}) vs the {len(reference)} before (median {np.median(reference):.4g})"
            if drifted
            else ""
        )
        rows.append({"series_id": series_id, "drift_statistic": float(result.statistic), "drift_p_value": float(result.pvalue), "drifted": drifted, "drift_reason": reason})
    return pd.DataFrame(rows, columns=["series_id", "drift_statistic", "drift_p_value", "drifted", "drift_reason"])


def combine(health: pd.DataFrame, drifted: pd.DataFrame, monitor_date: dt.date) -> pd.DataFrame:
    """One health row per series (scored or not): realized accuracy verdict plus drift verdict."""
    merged = health.merge(drifted, on="series_id", how="outer")
    merged["monitor_date"] = monitor_date
    merged["degraded"] = merged["degraded"].astype("boolean").fillna(False).astype(bool)
    merged["drifted"] = merged["drifted"].astype("boolean").fillna(False).astype(bool)
    merged["scored_periods"] = merged["scored_periods"].fillna(0).astype(int)
    reasons = merged["reasons"].fillna("")
    drift_reason = merged["drift_reason"].fillna("")
    merged["reasons"] = [
        "; ".join(part for part in (a, b) if part) for a, b in zip(reasons, drift_reason, strict=True)
    ]
    merged["model_version"] = merged["model_version"].astype(object).where(merged["model_version"].notna(), None)
    return merged[HEALTH_COLUMNS].sort_values("series_id").reset_index(drop=True)


def retrain_requests(health: pd.DataFrame, champions: dict[str, str]) -> dict[str, str]:
    """Series to retrain even if their data key is unchanged, with the reason recorded on the new version:
    the newest health row says degraded or drifted, and the model it judged is still the champion (a
    series whose champion has changed since has been dealt with)."""
    if health.empty:
        return {}
    newest = health.sort_values("monitor_date").groupby("series_id").tail(1)
    out = {}
    for row in newest.itertuples(index=False):
        if not (row.degraded or row.drifted):
            continue
        current = champions.get(str(row.series_id))
        judged = None if row.model_version is None or pd.isna(row.model_version) else str(row.model_version)
        if judged is None or current is None or judged == current:
            out[str(row.series_id)] = f"monitor {pd.Timestamp(row.monitor_date).date()}: {row.reasons}"
    return out


def flag_mask(health: pd.DataFrame, retrain_on: list[str]) -> pd.Series:
    """Rows whose verdict is one of `retrain_on` (degradation: degraded; drift: drifted)."""
    mask = pd.Series(False, index=health.index)
    if "degradation" in retrain_on:
        mask |= health["degraded"].astype(bool)
    if "drift" in retrain_on:
        mask |= health["drifted"].astype(bool)
    return mask


def flagged_for_retraining(
    health: pd.DataFrame, series: list[str], retrain_on: list[str], champion_of: Callable[[str], str | None]
) -> dict[str, str]:
    """`retrain_requests` for the series of this run whose verdict (`retrain_on`: degradation, drift)
    asks for it; `champion_of` looks up the registry only for those."""
    if health.empty or not retrain_on:
        return {}
    candidates = sorted(set(health.loc[flag_mask(health, retrain_on), "series_id"]) & set(series))
    if not candidates:
        return {}
    champions = {s: champion_of(s) for s in candidates}
    newest = health[health["series_id"].isin(candidates)]
    return retrain_requests(newest, {k: v for k, v in champions.items() if v})


def summary(health: pd.DataFrame, worst: int = 5, arrived: pd.Timestamp | None = None) -> dict[str, Any]:
    """Counts, the newest actuals' date and the worst series by realized MASE relative to expectation
    (for the daily report)."""
    scored = health[health["scored_periods"] > 0].copy()
    scored["ratio"] = scored["mase"] / scored["expected_mase"]
    ranked = scored.sort_values(["ratio", "mase"], ascending=False, na_position="last").head(worst)

    def clean(value: Any) -> Any:
        return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else value

    return {
        "actuals_through": None if arrived is None else str(pd.Timestamp(arrived).date()),
        "series": int(len(health)),
        "scored": int(len(scored)),
        "degraded": sorted(health.loc[health["degraded"], "series_id"].tolist()),
        "drifted": sorted(health.loc[health["drifted"], "series_id"].tolist()),
        "mean_mase": clean(float(scored["mase"].mean())) if len(scored) else None,
        "mean_coverage": clean(float(scored["coverage"].mean())) if len(scored) else None,
        "worst": [
            {k: clean(getattr(r, k)) for k in ("series_id", "mase", "expected_mase", "naive_mase", "coverage", "bias")}
            for r in ranked.itertuples(index=False)
        ],
    }
