"""The year-ago term of weekly models: last year's deviation from its year, where a series' history
shows that it comes back (README, Modelling: "Weekly: a year-ago term").

The weekly models follow the level and have no yearly season (three years of weeks are too short for a
52-week seasonal difference). `year_ago_effect` regresses each week's deviation from its year
(`year_ago_deviations`) on the mean of its deviations one and two years before and keeps a significant
coefficient; `year_ago_offsets` turns it into a log-scale term for the fit and the periods ahead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from include.forecasting.state_space import to_model_scale

# The year-ago term of weekly models (`year_ago_effect`): a period's deviation is its log sales minus the
# mean of the observed log periods of the year around it (`ModelSettings.year_ago_window` periods, centred;
# versions from before it: the median of those within `_YEAR_AGO_HALF` periods either side); the term pairs
# each deviation with the one `WEEKS_A_YEAR` periods before, is fitted on at least `_YEAR_AGO_MIN_PAIRS`
# such pairs (half a year of overlap) and is kept only where its coefficient is significant at the usual
# 5 % (t >= 2). Chosen before any measurement, not tuned.
WEEKS_A_YEAR = 52
_YEAR_AGO_HALF = 4
_YEAR_AGO_MIN_PAIRS = 26
_YEAR_AGO_T = 2.0


def year_ago_deviations(y: pd.Series, window: int = 0) -> np.ndarray:
    """How far each period stood from its year: log sales minus the mean of the observed log periods in the
    `window` periods centred on it (NaN for a period without a sale, or with fewer than half the window
    observed around it; near the end of the history the window is the part of it the history holds).
    `window` 0: from its local level instead, the median of the observed log periods within
    `_YEAR_AGO_HALF` either side (versions from before the yearly window).

    Why the year: a produce in season sells for months above its year's mean and a term on the local level
    sees nothing of it (each week is level with its neighbours), while the mean-reverting member pulls the
    in-season forecast down towards the year's mean. A peak week stands out from its year as it did from
    its neighbours, and a centred window leaves a steady trend at 0.
    """
    log_sales = pd.Series(to_model_scale(y))
    if window > 0:
        level = log_sales.rolling(window, center=True, min_periods=window // 2).mean()
    else:
        level = log_sales.rolling(2 * _YEAR_AGO_HALF + 1, center=True, min_periods=_YEAR_AGO_HALF + 1).median()
    return (log_sales - level).to_numpy()


def _years_before(deviation: np.ndarray, lag: int, length: int) -> np.ndarray:
    """For each of `length` periods counted from the first of `deviation` (past its end: the periods
    ahead): the mean of its known deviations one and two years (`lag` and 2 `lag` periods) before; NaN
    where neither is known. Two years, where there are, halve what a one-off week of one year brings back."""
    total, count = np.zeros(length), np.zeros(length)
    for back in (lag, 2 * lag):
        source = np.arange(length) - back
        inside = (source >= 0) & (source < len(deviation))
        value = np.full(length, np.nan)
        value[inside] = deviation[source[inside]]
        known = np.isfinite(value)
        total[known] += value[known]
        count[known] += 1
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def year_ago_effect(deviation: np.ndarray, lag: int) -> dict[str, float]:
    """The year-ago term of a weekly series, or {} where the history shows no yearly pattern.

    The weekly models follow the level and have no yearly season (three years of weeks are too short for a
    52-week seasonal difference), so a peak that comes back every year at the same week (Thanksgiving,
    Christmas, a season's start) is missed every year. Here each period's deviation from its year
    (`year_ago_deviations`) is regressed, through the origin, on the mean of its deviations one and two
    years before (`_years_before`: `lag` and 2 `lag` periods; the one known where only one is), over every
    period where both sides are known: the coefficient `beta` says how much of the past years' deviation
    comes back. It is kept only on at least `_YEAR_AGO_MIN_PAIRS` pairs and where it is significant
    (t >= 2), and capped at 1 (no more than all of it comes back); a series whose weeks move at random
    keeps no term. `deviation` is the series' `year_ago_deviations`. Returns {"beta", "lag", "t", "pairs"}.
    """
    now = deviation
    if lag <= 0 or len(now) <= lag:
        return {}
    before = _years_before(now, lag, len(now))
    known = np.isfinite(before) & np.isfinite(now)
    pairs = int(known.sum())
    if pairs < _YEAR_AGO_MIN_PAIRS:
        return {}
    x, z = before[known], now[known]
    sxx = float(x @ x)
    if sxx <= 0.0:
        return {}
    beta = float(x @ z) / sxx
    residual = z - beta * x
    se = float(np.sqrt(float(residual @ residual) / (pairs - 1) / sxx))
    t = beta / se if se > 0.0 else np.inf
    if not t >= _YEAR_AGO_T:
        return {}
    return {"beta": min(beta, 1.0), "lag": float(lag), "t": float(min(t, 1e6)), "pairs": float(pairs)}


def year_ago_offsets(deviation: np.ndarray, effect: dict[str, float], horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """The year-ago term on the log scale for every period of a series and for the `horizon` periods after
    it: `beta` x the mean of its deviations (`year_ago_deviations`) one and two years before
    (`_years_before`; 0 where neither is known: no sale, or before the history). All zeros when `effect`
    is empty."""
    n = len(deviation)
    if not effect:
        return np.zeros(n), np.zeros(horizon)
    term = effect["beta"] * np.nan_to_num(_years_before(deviation, int(effect["lag"]), n + horizon), nan=0.0)
    return term[:n], term[n:]


def plus_year_ago(moments: tuple[np.ndarray, np.ndarray], ahead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h-step log-scale moments with the year-ago term added to the mean (0 past the term's length)."""
    mean, se = moments
    shift = np.zeros(len(mean))
    k = min(len(mean), len(ahead))
    shift[:k] = ahead[:k]
    return mean + shift, se
