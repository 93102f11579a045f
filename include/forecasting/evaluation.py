"""Rolling-origin backtests and forecast accuracy metrics (MASE, RMSE, MAPE, sMAPE, coverage).

Every method (candidate, seasonal naive, champion) is scored on the same folds of the same series:
fold k trains on everything before its origin and forecasts the next `fold_days` calendar days.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from include.forecasting.config import BacktestConfig

log = logging.getLogger(__name__)

# A forecaster takes the training history (calendar-daily) and a horizon and returns a frame with
# yhat, yhat_lower, yhat_upper (the first interval level) for the next `horizon` days.
Forecaster = Callable[[pd.Series, int], pd.DataFrame]


@dataclass
class Metrics:
    """Backtest accuracy of one method on one series (averaged over folds)."""

    mase: float
    rmse: float
    mape: float
    smape: float
    coverage_80: float | None
    folds: int

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready form."""
        return asdict(self)


def mase_scale(train: np.ndarray, m: int) -> float:
    """In-sample MAE of the seasonal naive forecast (lag m): the MASE denominator."""
    if len(train) <= m:
        raise ValueError(f"need more than {m} training points for the MASE scale")
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    return scale if scale > 0 else float("nan")


def fold_metrics(actual: np.ndarray, pred: np.ndarray, train: np.ndarray, m: int) -> dict[str, float]:
    """Errors of one fold. MAPE skips zero actuals (undefined there); sMAPE counts 0/0 as 0."""
    err = actual - pred
    nonzero = actual != 0
    denom = np.abs(actual) + np.abs(pred)
    smape_terms = np.where(denom > 0, 2 * np.abs(err) / np.where(denom > 0, denom, 1), 0.0)
    return {
        "mase": float(np.mean(np.abs(err)) / mase_scale(train, m)),
        "sse": float(np.sum(err**2)),
        "n": float(len(actual)),
        "mape": float(np.mean(np.abs(err[nonzero] / actual[nonzero]))) if nonzero.any() else float("nan"),
        "smape": float(np.mean(smape_terms)),
    }


def fold_origins(n_obs: int, folds: int, fold_days: int) -> list[int]:
    """Positions where each fold's test window starts, oldest first."""
    origins = [n_obs - k * fold_days for k in range(folds, 0, -1)]
    if origins[0] <= fold_days * 2:
        raise ValueError(f"series of {n_obs} days is too short for {folds} folds of {fold_days} days")
    return origins


def backtest(y: pd.Series, forecaster: Forecaster, config: BacktestConfig) -> Metrics:
    """Score `forecaster` on rolling-origin folds of `y` and average the fold metrics."""
    values = y.to_numpy(dtype=float)
    rows = []
    covered: list[bool] = []
    for origin in fold_origins(len(values), config.folds, config.fold_days):
        train, actual = y.iloc[:origin], values[origin : origin + config.fold_days]
        frame = forecaster(train, config.fold_days)
        pred = frame["yhat"].to_numpy(dtype=float)[: len(actual)]
        rows.append(fold_metrics(actual, pred, train.to_numpy(dtype=float), config.season_length))
        if "yhat_lower" in frame:
            lower = frame["yhat_lower"].to_numpy(dtype=float)[: len(actual)]
            upper = frame["yhat_upper"].to_numpy(dtype=float)[: len(actual)]
            covered += list((actual >= lower - 1e-9) & (actual <= upper + 1e-9))
    table = pd.DataFrame(rows)
    return Metrics(
        mase=float(table["mase"].mean()),
        rmse=float(np.sqrt(table["sse"].sum() / table["n"].sum())),
        mape=float(table["mape"].mean()),
        smape=float(table["smape"].mean()),
        coverage_80=float(np.mean(covered)) if covered else None,
        folds=len(rows),
    )


def seasonal_naive(m: int) -> Forecaster:
    """The benchmark: tomorrow = the same weekday last week (repeated for longer horizons)."""

    def forecast(train: pd.Series, horizon: int) -> pd.DataFrame:
        last = train.to_numpy(dtype=float)[-m:]
        pred = np.resize(last, horizon)
        return pd.DataFrame({"yhat": pred})

    return forecast
