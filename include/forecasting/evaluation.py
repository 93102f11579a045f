"""Rolling-origin backtests and forecast accuracy metrics (MASE, RMSE, MAPE, sMAPE, coverage).

Every method (candidate, seasonal naive, champion) is scored on the same folds of the same series:
fold k trains on everything before its origin and forecasts the next `horizon` periods (days, weeks or
months: the panel's cadence). MASE is scaled by the in-sample seasonal-naive error at the cadence's lag,
leaving out the periods training leaves out as spikes (a x1,000 typo in the history would otherwise
inflate the scale twelvefold and make every method look excellent until it left the window).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

# A forecaster takes the training history (on its cadence's grid) and a horizon and returns a frame with
# yhat, yhat_lower, yhat_upper (the first interval level) for the next `horizon` days.
Forecaster = Callable[[pd.Series, int], pd.DataFrame]


def interval_suffix(level: float, levels: tuple[float, ...] | list[float]) -> str:
    """The column suffix of an interval level in a forecast frame: none for the first configured level
    (`yhat_lower`), else its percentage (`yhat_lower_95`), the names the warehouse table and the
    registered model's signature use."""
    return "" if level == levels[0] else f"_{round(level * 100)}"


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
        """JSON-ready form: an undefined metric (MAPE with only zero actuals, MASE of a series whose
        history never changed) is None, because XCom and Slack payloads must be strict JSON."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}


def mase_scale(train: np.ndarray, m: int, exclude: np.ndarray | None = None) -> float:
    """In-sample MAE of the seasonal naive forecast (lag m): the MASE denominator. `exclude` (a boolean
    mask over `train`) leaves out every lag-m difference with an excluded period at either end."""
    if len(train) <= m:
        raise ValueError(f"need more than {m} training points for the MASE scale")
    diffs = np.abs(train[m:] - train[:-m])
    if exclude is not None:
        diffs = diffs[~(exclude[m:] | exclude[:-m])]
    scale = float(np.mean(diffs)) if len(diffs) else 0.0
    return scale if scale > 0 else float("nan")


def fold_metrics(actual: np.ndarray, pred: np.ndarray, train: np.ndarray, m: int, exclude: np.ndarray | None = None) -> dict[str, float]:
    """Errors of one fold. MAPE skips zero actuals (undefined there); sMAPE counts 0/0 as 0; `exclude`:
    the training periods the MASE scale leaves out."""
    err = actual - pred
    nonzero = actual != 0
    denom = np.abs(actual) + np.abs(pred)
    smape_terms = np.where(denom > 0, 2 * np.abs(err) / np.where(denom > 0, denom, 1), 0.0)
    return {
        "mase": float(np.mean(np.abs(err)) / mase_scale(train, m, exclude)),
        "sse": float(np.sum(err**2)),
        "n": float(len(actual)),
        "mape": float(np.mean(np.abs(err[nonzero] / actual[nonzero]))) if nonzero.any() else float("nan"),
        "smape": float(np.mean(smape_terms)),
    }


def fold_origins(n_obs: int, folds: int, fold_len: int, min_train: int = 0) -> list[int]:
    """Positions where each fold's test window starts, oldest first."""
    if usable_folds(n_obs, folds, fold_len, min_train) < folds:
        raise ValueError(f"series of {n_obs} periods is too short for {folds} folds of {fold_len} periods")
    return [n_obs - k * fold_len for k in range(folds, 0, -1)]


def usable_folds(n_obs: int, folds: int, fold_len: int, min_train: int = 0) -> int:
    """The most folds, up to `folds`, that leave the oldest one enough training history (0 if not even one)."""
    return next((k for k in range(folds, 0, -1) if n_obs - k * fold_len > max(fold_len * 2, min_train)), 0)


def backtest(
    y: pd.Series,
    forecaster: Forecaster,
    folds: int,
    horizon: int,
    m: int,
    min_train: int = 0,
    min_selling: int = 0,
    scale_exclude: np.ndarray | None = None,
) -> Metrics:
    """Score `forecaster` on up to `folds` rolling-origin folds of `horizon` periods; average the fold metrics.

    A history too short for `folds` folds (three years of months with a 7-month horizon) is scored on as
    many as it holds, at least one; `Metrics.folds` says how many. `min_train`: the fewest periods a fold
    may train on (beyond the MASE scale's m + 1); `min_selling`: the fewest of them with a sale (a young,
    zero-heavy series has the periods but not the sales a fit needs in its oldest folds). Methods compared
    with each other must use the same two, so they score the same folds.
    `m` is the seasonal-naive lag of the MASE scale (7 daily, 1 weekly, 12 monthly); `scale_exclude`
    (a boolean mask over `y`) the periods the scale leaves out.
    """
    values = y.to_numpy(dtype=float)
    rows = []
    covered: list[bool] = []
    # Not even one fold: fold_origins raises naming the series length and the folds asked for.
    least = max(m + 1, min_train)
    fitting = usable_folds(len(values), folds, horizon, least)
    usable = fitting or folds
    if min_selling and fitting:
        # Drop the oldest folds while their training part has too few sales; the newest fold has the most.
        selling = np.cumsum(values > 0)  # selling[i - 1]: periods with a sale before position i
        while usable and selling[len(values) - usable * horizon - 1] < min_selling:
            usable -= 1
        if not usable:
            newest = len(values) - horizon
            raise ValueError(
                f"too few sales to backtest: {int(selling[newest - 1])} selling periods before the newest fold "
                f"(the last {horizon} periods), need {min_selling}"
            )
    for origin in fold_origins(len(values), usable, horizon, least):
        train, actual = y.iloc[:origin], values[origin : origin + horizon]
        frame = forecaster(train, horizon)
        pred = frame["yhat"].to_numpy(dtype=float)[: len(actual)]
        exclude = scale_exclude[:origin] if scale_exclude is not None else None
        rows.append(fold_metrics(actual, pred, train.to_numpy(dtype=float), m, exclude))
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


def seasonal_naive(m: int, levels: tuple[float, ...] = ()) -> Forecaster:
    """The benchmark (and the fallback forecast of a series with no usable model): each period = the same
    period one season earlier (lag m; repeated for longer horizons).

    With `levels`, empirical intervals: the quantiles of the history's own lag-m errors, widened with the
    number of seasons ahead like a random walk's (sqrt), floored at 0. With fewer than m periods of
    history, the mean of what there is. With fewer than 8 errors (a series of a few periods), from 0 to
    the largest value seen: the next period exceeds the largest of n values with chance 1 / (n + 1) and
    falls below the smallest with the same chance, so the observed range would cover (n - 1) / (n + 1)
    (nothing at all, zero width, after one period), from 0 n / (n + 1).
    """

    def forecast(train: pd.Series, horizon: int) -> pd.DataFrame:
        values = train.to_numpy(dtype=float)
        if len(values) == 0:
            pred = np.zeros(horizon)
        elif len(values) < m:
            pred = np.full(horizon, float(np.mean(values)))
        else:
            pred = np.resize(values[-m:], horizon)
        out = {"yhat": pred}
        errors = values[m:] - values[:-m] if len(values) > m else np.array([])
        errors = errors[-max(8 * m, 56):]
        steps = np.sqrt(np.arange(horizon) // max(m, 1) + 1.0)
        for level in levels:
            suffix = interval_suffix(level, levels)
            if len(errors) >= 8:
                low, high = np.quantile(errors, [0.5 - level / 2, 0.5 + level / 2])
                lower, upper = pred + low * steps, pred + high * steps
            else:
                lower = np.zeros(horizon)
                upper = np.full(horizon, float(values.max()) if len(values) else 0.0)
            out[f"yhat_lower{suffix}"] = np.clip(np.minimum(lower, pred), 0.0, None)
            out[f"yhat_upper{suffix}"] = np.maximum(upper, pred)
        return pd.DataFrame(out)

    return forecast
