"""Forecast quality on one panel: the project's fit (exactly `training.fit_series`, the DAG's code) against
seasonal naive and statsforecast's AutoARIMA, AutoETS and AutoTheta, all on the same rolling-origin folds.

Every method's every forecast point is kept (series, fold, date, actual, forecast, 80 % interval), so the
summary, the per-fold figures and the figures without holiday days all come from the same numbers.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from include.forecasting import evaluation, holiday_effects, training
from include.forecasting.config import Config
from include.forecasting.extract import read_sales_csv
from include.forecasting.frequency import detect_cadence
from include.forecasting.pipeline import fallback_forecast

ROOT = Path(__file__).resolve().parents[1]
TRIO = ("AutoARIMA", "AutoETS", "AutoTheta")


@dataclasses.dataclass
class Panel:
    """A panel on its cadence's grid, ready to backtest."""

    name: str
    path: Path
    ys: dict[str, pd.Series]
    settings: training.ModelSettings
    folds: int

    @property
    def m(self) -> int:
        """Seasonal-naive lag and MASE scale lag."""
        return self.settings.cadence.naive_lag

    def origins(self, y: pd.Series) -> list[int]:
        """Fold origins of one series (oldest first)."""
        return evaluation.fold_origins(len(y), self.folds, self.settings.horizon, self.m + 1)


def load_panel(name: str, path: Path, columns: dict[str, str], config: Config, folds: int, max_series: int | None = None) -> Panel:
    """Read a CSV panel, detect its cadence, lay every series with enough history for the folds on its grid."""
    frame = read_sales_csv(path, columns)
    cadence = detect_cadence(frame, config.source.frequency)
    settings = training.settings_for(config.forecast, cadence, config.anomaly)
    end = cadence.period_end(frame["sales_date"].max())  # the newest period whole (a month dated on its first day too)
    ys = {}
    for series_id in sorted(frame["series_id"].unique())[: max_series or None]:
        y = training.period_series(frame, series_id, end, cadence)
        # A series must have data before its first fold (a late starter is trained by the DAG once it has).
        y = y.loc[y.ne(0).idxmax():] if (y > 0).any() else y
        if len(y) > folds * settings.horizon + max(2 * cadence.naive_lag, 4 * max(cadence.season, 7)):
            ys[series_id] = y
    return Panel(name, path, ys, settings, folds)


def project_forecaster(settings: training.ModelSettings) -> Callable[[pd.Series, int], pd.DataFrame]:
    """The DAG's training step as a forecaster; a series it cannot fit gets the DAG's fallback (seasonal
    naive with the spikes training leaves out left out, `pipeline.fallback_forecast`)."""

    def forecast(train: pd.Series, horizon: int) -> pd.DataFrame:
        try:
            return training.fit_series(train, settings).forecast(horizon, settings.interval_levels)
        except training.ModelFitError:
            return fallback_forecast(train, dataclasses.replace(settings, horizon=horizon)).drop(columns="forecast_date")

    return forecast


def points(panel: Panel, method: str, forecaster: Callable[[pd.Series, int], pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every forecast point of a method on every fold, and its mean seconds per fit (after one untimed
    warm-up call): {"wall": elapsed, "cpu": this process's CPU time}.

    Both clocks, because the host is shared: wall time also counts whatever else ran on the machine
    during the fit, CPU time only the fit's own work (the fit is single-threaded, BLAS included).
    """
    rows, clock, cpu = [], [], []
    h = panel.settings.horizon
    # One untimed call first (imports, first-use setup), like the statsforecast worker's warm-up fit.
    first = next(iter(panel.ys.values()))
    forecaster(first.iloc[: panel.origins(first)[0]], h)
    for series_id, y in panel.ys.items():
        for fold, origin in enumerate(panel.origins(y)):
            train = y.iloc[:origin]
            started, cpu_started = time.perf_counter(), time.process_time()
            frame = forecaster(train, h)
            clock.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
            rows.append(fold_rows(panel, series_id, fold, y, origin, frame, method))
    return pd.concat(rows, ignore_index=True), {"wall": float(np.mean(clock)), "cpu": float(np.mean(cpu))}


def fold_rows(panel: Panel, series_id: str, fold: int, y: pd.Series, origin: int, frame: pd.DataFrame, method: str) -> pd.DataFrame:
    """One fold's forecast points: per period the actual, `yhat`, the first level's bounds (`lo`, `hi`;
    NaN for a method without intervals) and the fold's MASE scale."""
    h = panel.settings.horizon
    actual = y.iloc[origin : origin + h]
    train = y.to_numpy(dtype=float)[:origin]
    scale = evaluation.mase_scale(train, panel.m)
    n = len(actual)
    return pd.DataFrame(
        {
            "method": method, "series_id": series_id, "fold": fold, "date": actual.index, "actual": actual.to_numpy(),
            "yhat": frame["yhat"].to_numpy(dtype=float)[:n],
            "lo": frame["yhat_lower"].to_numpy(dtype=float)[:n] if "yhat_lower" in frame else np.nan,
            "hi": frame["yhat_upper"].to_numpy(dtype=float)[:n] if "yhat_upper" in frame else np.nan,
            "scale": scale,
        }
    )


def statsforecast_points(
    panel: Panel, bench_python: Path, fixed_order: tuple[int, int, int]
) -> tuple[dict[str, pd.DataFrame], dict[str, dict[str, float]], dict[str, str]]:
    """AutoARIMA / AutoETS / AutoTheta / fixed-order ARIMA points from the bench venv's worker."""
    if not bench_python.exists():
        raise SystemExit(f"{bench_python} missing: run `make bench` (it builds .venv-bench with requirements-bench.txt)")
    tasks = [
        {"key": f"{s}|{origin}", "y": y.iloc[:origin].tolist()}
        for s, y in panel.ys.items()
        for origin in panel.origins(y)
    ]
    s = panel.settings
    spec = {
        "season_length": max(panel.settings.cadence.season, 1), "horizon": s.horizon, "level": 80,
        "models": [*TRIO, "ARIMA_fixed"], "fixed_order": list(fixed_order), "fixed_seasonal": list(s.seasonal_order[:3]), "tasks": tasks,
    }
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.json", Path(tmp) / "out.json"
        source.write_text(json.dumps(spec))
        subprocess.run([str(bench_python), str(ROOT / "bench" / "statsforecast_worker.py"), str(source), str(target)], check=True)
        payload = json.loads(target.read_text())
    out, seconds = {}, {}
    for model, fits in payload["results"].items():
        rows = []
        for series_id, y in panel.ys.items():
            for fold, origin in enumerate(panel.origins(y)):
                fit = fits[f"{series_id}|{origin}"]
                # Sales are never negative: a Gaussian model's forecast is floored at 0 like any user would.
                frame = pd.DataFrame({k: np.clip(fit[v], 0, None) for k, v in (("yhat", "mean"), ("yhat_lower", "lo"), ("yhat_upper", "hi"))})
                rows.append(fold_rows(panel, series_id, fold, y, origin, frame, model))
        out[model] = pd.concat(rows, ignore_index=True)
        seconds[model] = {"wall": float(np.mean([f["seconds"] for f in fits.values()])), "cpu": float(np.mean([f["cpu_seconds"] for f in fits.values()]))}
    return out, seconds, payload["versions"]


def summarise(p: pd.DataFrame, seconds: dict[str, float]) -> dict[str, Any]:
    """MASE (mean of per-series-fold MASE), RMSE, sMAPE, 80 % coverage, per-fold MASE, and the mean wall
    and CPU seconds per fit (`seconds` as `points` returns them)."""
    timing = {"fit_s_per_series": seconds.get("wall"), "fit_cpu_s_per_series": seconds.get("cpu")}
    if p.empty:
        return {"mase": None, "rmse": None, "smape": None, "coverage_80": None, **timing, "mase_by_fold": []}
    err = (p["actual"] - p["yhat"]).abs()
    per = p.assign(ae=err).groupby(["series_id", "fold"]).agg(ae=("ae", "mean"), scale=("scale", "first"))
    mase = per["ae"] / per["scale"]
    denom = p["actual"].abs() + p["yhat"].abs()
    smape = np.where(denom > 0, 2 * err / denom.where(denom > 0, 1), 0.0)
    covered = ((p["actual"] >= p["lo"] - 1e-9) & (p["actual"] <= p["hi"] + 1e-9)) if p["lo"].notna().any() else None
    return {
        "mase": float(mase.mean()),
        "rmse": float(np.sqrt(((p["actual"] - p["yhat"]) ** 2).mean())),
        "smape": float(np.mean(smape)),
        "coverage_80": float(covered.mean()) if covered is not None else None,
        **timing,
        "mase_by_fold": [round(float(v), 4) for v in mase.groupby(level="fold").mean().to_list()],
    }


def holiday_mask(panel: Panel, p: pd.DataFrame) -> pd.Series:
    """True for points on a holiday of the configured calendar (daily panels only)."""
    calendar = training._calendar_key(panel.settings)
    if not calendar or p.empty:
        return pd.Series(False, index=p.index)
    names = holiday_effects.holiday_names(calendar, p["date"].min(), p["date"].max())
    return p["date"].isin(names.index)
